"""What a user sees before anything runs: `--cfg job --resolve` shows the planner's requests and refuses
what the planner refuses; a dry run on this machine says what would run there, not sbatch scripts."""

from conftest import run_train


def test_cfg_job_resolve_shows_the_planners_request_and_refuses_a_bad_global_value(tmp_path):
    shown = run_train("pipeline=teacher", "dataset=synthetic", "resources.walltime='90'", "--cfg", "job", "--resolve",
                      cwd=tmp_path, timeout=120)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert shown.stdout.count("walltime: 01:30:00") == 3  # every stage's effective_resources, as sbatch gets it
    bad = run_train("pipeline=teacher", "dataset=synthetic", "resources.walltime=10:00", "--cfg", "job", "--resolve",
                    cwd=tmp_path, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == ("kdgat: error: resources.walltime='10:00' is not a walltime; use MM, HH:MM:SS "
                                  "or D-HH:MM:SS")


def test_a_typo_in_a_resource_key_is_refused_not_dropped(tmp_path):
    out = run_train("pipeline=teacher", "dataset=synthetic", "+pipeline.stages.fusion.pipeline_resources.memm=1G",
                    "hydra/launcher=kdgat_chain", "hydra.launcher.dry_run=true", cwd=tmp_path, timeout=120)
    assert out.returncode == 1
    assert out.stderr.strip() == ("kdgat_chain: error: pipeline.stages.fusion.pipeline_resources.memm is not a "
                                  "resource; use walltime, mem, cpus, gpus, partition, sbatch, retry")


def test_a_local_dry_run_lists_what_would_run_here_and_writes_nothing(tmp_path):
    out = run_train("pipeline=teacher", "dataset=synthetic", "hydra/launcher=kdgat_chain",
                    "hydra.launcher.cluster=local", "hydra.launcher.dry_run=true", f"hydra.sweep.dir={tmp_path}/sweep",
                    cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "sbatch" not in out.stdout and "retry guard" not in out.stdout
    assert "<curriculum:0>   <autoencoder:0>" in out.stdout  # curriculum waits on autoencoder
    assert "would run 3 jobs on this machine, one at a time" in out.stdout
    assert not (tmp_path / "sweep").exists()
