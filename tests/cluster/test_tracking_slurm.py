"""MLflow tracking of real SLURM stage jobs, against a real `mlflow server` this test starts (CI starts
scripts/local-slurm.sh): every job's run with its SLURM ids, and a requeued stage continuing its own run."""

import time

from conftest import (
    PARENT,
    assert_run_holds_its_stage,
    attempt_states,
    cancel,
    client_of,
    job_ids,
    kdgat,
    on_slurm,
    run_train,
    runs_of,
    states,
    synth,
)

SMALL = ("resources.cpus=2", "resources.gpus=0", "resources.mem=4G", "progress=false")


def slurm_id(run) -> str:
    """The job id a run's tags name, as the launcher's manifest writes it (an array task as <array>_<task>)."""
    tags = run.data.tags
    if "slurm.array_job_id" in tags:
        return f"{tags['slurm.array_job_id']}_{tags['slurm.array_task_id']}"
    return tags["slurm.job_id"]


@on_slurm
def test_a_two_dataset_sweeps_six_stage_jobs_are_six_runs_with_their_slurm_job_ids(tmp_path, mlflow_server):
    for name in ("hcrl_sa", "set_01"):
        synth(tmp_path / "data" / name, like=name)
    env = {"KDGAT_DATA": str(tmp_path / "data")}
    out = run_train("-m", "pipeline=teacher", "dataset=hcrl_sa,set_01", "train.max_epochs=1", *SMALL,
                    f"tracking.uri={mlflow_server.uri}", "hydra/launcher=kdgat_chain",
                    f"hydra.sweep.dir={tmp_path}/sweep", cwd=tmp_path, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    ids = job_ids(tmp_path / "sweep")
    try:
        assert set(states(list(ids.values()), deadline_s=900).values()) == {"COMPLETED"}
    finally:
        cancel(sorted({i.split("_")[0] for i in ids.values()}))
    client = client_of(mlflow_server.uri)
    runs = runs_of(client, "teacher")
    parents = {r.data.tags["dataset"]: r for r in runs if PARENT not in r.data.tags}
    children = [r for r in runs if PARENT in r.data.tags]
    assert sorted(parents) == ["hcrl_sa", "set_01"] and len(children) == 6
    by_job = {slurm_id(r): r for r in children}
    assert sorted(by_job) == sorted(ids.values())
    for (num, stage), job in ids.items():
        run = by_job[job]
        dataset = ("hcrl_sa", "set_01")[num]
        assert (run.data.tags["stage"], run.data.tags["dataset"]) == (stage, dataset)
        assert run.data.tags[PARENT] == parents[dataset].info.run_id
        assert run.data.tags["sweep_dir"] == str(tmp_path / "sweep")
        assert_run_holds_its_stage(client, run)
    assert {p.info.status for p in parents.values()} == {"FINISHED"}

    report = kdgat("report", str(tmp_path / "sweep"), cwd=tmp_path, env=env)
    assert report.returncode == 0, report.stderr
    for parent in parents.values():
        assert f"{mlflow_server.uri}/#/experiments/{parent.info.experiment_id}/runs/{parent.info.run_id}" \
            in report.stdout
    assert all(run.info.run_id in report.stdout for run in children)


@on_slurm
def test_a_stage_requeued_at_its_walltime_continues_its_own_run(tmp_path, mlflow_server):
    """As tests/cluster/test_launcher_slurm.py's requeue test, with longer attempts (walltime 2 min, signalled
    60 s before, 30 s of sleep per epoch: about two epochs each), long enough for `kdgat status` to see the
    stage running: all attempts write one run, every epoch in it."""
    out = run_train("pipeline=custom", "pipeline.presets=[autoencoder]", "dataset.synthetic.frames=20000",
                    "train.max_epochs=3", "train.slow_epoch_s=30", "resources.walltime='2'", *SMALL,
                    f"tracking.uri={mlflow_server.uri}", "hydra/launcher=kdgat_chain",
                    "hydra.launcher.signal_delay_s=60", f"hydra.sweep.dir={tmp_path}/sweep", cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    (job,) = job_ids(tmp_path / "sweep").values()
    client = client_of(mlflow_server.uri)
    try:
        seen, deadline = "", time.monotonic() + 600
        while time.monotonic() < deadline:  # until status names the running stage's run (or it has ended)
            seen = kdgat("status", str(tmp_path / "sweep"), cwd=tmp_path).stdout
            if "MLflow run" in seen or "COMPLETED" in seen:
                break
            time.sleep(1)
        assert "RUNNING" in seen and "MLflow run" in seen, seen
        assert states([job], deadline_s=900) == {job: "COMPLETED"}
    finally:
        cancel([job])
    assert attempt_states(job).count("REQUEUED") >= 1
    (run,) = [r for r in runs_of(client, "custom") if PARENT in r.data.tags]
    assert f"MLflow run {run.info.run_id}" in seen
    assert run.data.tags["slurm.job_id"] == job
    metrics = assert_run_holds_its_stage(client, run)  # epochs 1, 2, 3: each there, its last value the file's
    assert metrics["training"]["epochs_run"] == 3 and metrics["training"]["resumed_from_epoch"] >= 1
