"""A data-parallel stage on the cluster: a stage asking for two GPUs runs as one job step of two tasks, one rank
each (gloo on the local cluster's fake GPUs), and writes one set of artifacts and one MLflow run."""

import json
import subprocess

from conftest import client_of, embedded, job_ids, on_slurm, run_train, states


@on_slurm
def test_a_stage_asking_for_two_gpus_runs_as_two_tasks_and_completes(tmp_path):
    out = run_train("pipeline=custom", "pipeline.presets=[autoencoder]", "dataset.synthetic.frames=20000",
                    "train.max_epochs=2", "progress=false", "resources.cpus=2", "resources.gpus=2",
                    "hydra/launcher=kdgat_chain", f"hydra.sweep.dir={tmp_path}/sweep", cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "asks for 2 GPUs" not in out.stdout + out.stderr  # it uses them: no warning
    (job,) = job_ids(tmp_path / "sweep").values()
    assert states([job], deadline_s=600) == {job: "COMPLETED"}
    rows = subprocess.run(["sacct", "-j", job, "-n", "-P", "-o", "JobID,NTasks"], capture_output=True,
                          text=True).stdout.split()
    steps = [row.split("|") for row in rows if row.split("|")[0].partition(".")[2].isdigit()]  # "<job>.<n>"
    assert steps == [[f"{job}.0", "2"]], rows  # one step with two tasks, not two steps

    folder = tmp_path / "experimentruns" / "synthetic" / "autoencoder" / "latest"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["training"]["epochs_run"] == 2
    log = (tmp_path / "experimentruns" / "slurm_runs" / "synthetic" / "autoencoder.log").read_text()
    assert log.count("autoencoder epoch 1/2") == 1 and "rank 0 of 2 on cpu (gloo)" in log
    client = client_of(embedded(tmp_path))
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.data.tags.get("stage") for r in runs if r.data.tags.get("stage")] == ["autoencoder"]
