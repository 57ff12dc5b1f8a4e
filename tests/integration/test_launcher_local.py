"""The kdgat_chain launcher where no job reaches SLURM: dry runs (every script printed, nothing written or
queued), the one-line advice on a machine without sbatch, and the local backend running a chain here.

Where sbatch is on PATH, the dry run also checks its scripts with `sbatch --test-only` and leaves the queue
as it was; everything else runs the same with or without a cluster.
"""

import os
from pathlib import Path

import pytest

from conftest import HAS_SLURM, run_app, run_train, squeue, synth


def test_dry_run_never_imports_torch_and_prints_every_script(tmp_path, torch_probe):
    data = synth(tmp_path / "data" / "hcrl_sa", like="hcrl_sa").parent
    queue_before = squeue("-o", "%i") if HAS_SLURM else ""
    out = run_train("pipeline=teacher", "dataset=hcrl_sa", "hydra/launcher=kdgat_chain", "hydra.launcher.dry_run=true",
                    f"hydra.sweep.dir={tmp_path}/sweep", cwd=tmp_path,
                    env={**torch_probe, "KDGAT_DATA": str(data)}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "TORCH_IMPORTED=False" in out.stderr
    assert out.stdout.count("#!/bin/bash") == 3
    for line in ("#SBATCH --time=480", "#SBATCH --mem=128G", "#SBATCH --cpus-per-task=16", "#SBATCH --gres=gpu:1",
                 "#SBATCH --job-name=fusion_hcrl_sa", "#SBATCH --kill-on-invalid-dep=yes",
                 "stage=curriculum"):
        assert line in out.stdout, line
    # nothing written: not even the sweep folder Hydra made for its multirun.yaml
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    if HAS_SLURM:
        assert "sbatch --test-only: ok" in out.stdout
        assert squeue("-o", "%i") == queue_before


def test_a_dry_run_of_a_sweep_says_which_stages_would_be_arrays(tmp_path):
    out = run_app("-m", "hydra/launcher=kdgat_chain", f"out={tmp_path}", "tag=a,b,c", "hydra.launcher.dry_run=true",
                  f"hydra.sweep.dir={tmp_path}/s", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert ("would submit 9 jobs in 3 submissions (3 arrays: first of jobs 0,1,2; second of jobs 0,1,2; "
            "third of jobs 0,1,2)") in out.stdout
    off = run_app("-m", "hydra/launcher=kdgat_chain", f"out={tmp_path}", "tag=a,b,c", "hydra.launcher.dry_run=true",
                  "hydra.launcher.array=false", f"hydra.sweep.dir={tmp_path}/s2", cwd=tmp_path)
    assert "would submit 9 jobs in 9 submissions\n" in off.stdout


def test_without_sbatch_the_launcher_says_what_to_do_in_one_line(tmp_path):
    env = {"PATH": os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                                   if not (Path(p) / "sbatch").exists())}
    out = run_app("hydra/launcher=kdgat_chain", f"out={tmp_path}", cwd=tmp_path, env=env)
    assert out.returncode == 1
    (line,) = out.stderr.strip().splitlines()
    assert "sbatch is not on PATH" in line and "cluster=local" in line and "dry_run=true" in line


@pytest.mark.slow
def test_local_backend_runs_the_plan_here_and_stops_at_a_failure(tmp_path):
    out = run_app("hydra/launcher=kdgat_chain", "hydra.launcher.cluster=local", f"out={tmp_path}", cwd=tmp_path,
                  timeout=300)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "x-third.done").read_text().split() == ["x-first.done", "x-second.done"]
    failing = run_app("hydra/launcher=kdgat_chain", "hydra.launcher.cluster=local", f"out={tmp_path}", "tag=y",
                      "fail=second", cwd=tmp_path, timeout=300)
    assert failing.returncode == 1
    (line,) = failing.stderr.strip().splitlines()
    assert line.startswith("kdgat_chain: error: failed: job 0 stage second (see ") and "1 stages that need it" in line
    assert (tmp_path / "y-first.done").exists() and not (tmp_path / "y-third.done").exists()
    assert "job 0: stage third cancelled: DependencyNeverSatisfied" in failing.stdout
