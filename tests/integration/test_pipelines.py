"""Every pipeline end to end, in this process, on a tiny synthetic dataset (train.max_epochs=2)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, run_train

pytestmark = pytest.mark.slow
TINY = ("dataset.synthetic.frames=20000", "train.max_epochs=2", "progress=false")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """One folder whose data and teacher artifacts the tests below share, as a user's would be."""
    return tmp_path_factory.mktemp("kdgat")


def stage_dirs(workdir, stage):
    return sorted(p for p in (workdir / "experimentruns" / "synthetic" / stage).glob("*") if p.name != "latest"
                  and p.is_dir())


def test_teacher_pipeline_trains_three_stages_and_leaves_their_artifacts(workdir):
    out = run_train("pipeline=teacher", *TINY, cwd=workdir)
    assert out.returncode == 0, out.stderr[-3000:]
    for stage in ("autoencoder", "curriculum", "fusion"):
        assert f"stage {stage} trained" in out.stdout
        (d,) = stage_dirs(workdir, stage)
        for name in ("model.pt", "config.yaml", "metrics.json", "done.json", "confusion_val.png"):
            assert (d / name).is_file(), f"{stage}: {name} missing"
        assert not (d / "checkpoint.pt").exists()
        assert (d.parent / "latest").resolve() == d
        metrics = json.loads((d / "metrics.json").read_text())
        assert set(metrics["splits"]) == {"val", "test_dos", "test_fuzzing", "test_spoofing", "test_masquerade"}
        for m in metrics["splits"].values():
            assert {"accuracy", "precision", "recall", "f1", "roc_auc", "confusion_matrix"} <= set(m)
        marker = json.loads((d / "done.json").read_text())
        assert marker["fingerprint"] == d.name and marker["code"]["commit"]
    fusion = json.loads((stage_dirs(workdir, "fusion")[0] / "metrics.json").read_text())
    assert set(fusion["components"]) == {"vgae", "gat"}
    assert (stage_dirs(workdir, "fusion")[0] / "alpha_histogram.png").is_file()
    import numpy as np

    with np.load(stage_dirs(workdir, "fusion")[0] / "scores.npz") as scores:  # every window's inputs and output
        assert scores["test_dos_gat"].shape == scores["test_dos_vgae"].shape == scores["test_dos_label"].shape
        assert len(scores["val_fused"]) == fusion["splits"]["val"]["n"]
    curriculum = json.loads((stage_dirs(workdir, "curriculum")[0] / "done.json").read_text())
    assert curriculum["inputs"]["vgae"]["fingerprint"] == stage_dirs(workdir, "autoencoder")[0].name


def test_running_it_again_skips_every_stage(workdir):
    out = run_train("pipeline=teacher", *TINY, cwd=workdir)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("already trained") == 3 and "epoch 1/2" not in out.stdout


def test_student_distils_the_teacher_pipelines_gat(workdir):
    out = run_train("pipeline=student", *TINY, cwd=workdir)
    assert out.returncode == 0, out.stderr[-3000:]
    (d,) = stage_dirs(workdir, "distillation")
    metrics = json.loads((d / "metrics.json").read_text())
    assert metrics["parameters"] * 6 <= metrics["teacher_parameters"]
    marker = json.loads((d / "done.json").read_text())
    assert marker["inputs"]["teacher"]["fingerprint"] == stage_dirs(workdir, "curriculum")[0].name
    assert len(stage_dirs(workdir, "autoencoder")) == 2  # the student-sized VGAE beside the teacher's


def test_student_without_a_teacher_stops_before_any_work(tmp_path):
    out = run_train("pipeline=student", *TINY, cwd=tmp_path)
    assert out.returncode == 1
    assert "run the teacher pipeline first" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "experimentruns" / "synthetic").exists()


@pytest.mark.parametrize("args", [
    ("pipeline=supervised_only",),
    ("pipeline=curriculum_only",),
    ("pipeline=custom", "pipeline.presets=[fusion,autoencoder_synthetic,gat_normal]"),
])
def test_other_pipelines_run_end_to_end(workdir, args):
    out = run_train(*args, *TINY, cwd=workdir)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Traceback" not in out.stderr


def test_a_stage_whose_input_is_missing_exits_before_training(tmp_path):
    out = run_train("stage=curriculum", *TINY, cwd=tmp_path)
    assert out.returncode == 1
    assert "model.pt (vgae), which stage autoencoder makes" in out.stderr
    assert not list((tmp_path / "experimentruns" / "synthetic").glob("curriculum/*/done.json"))


def test_a_failing_stage_exits_nonzero_and_leaves_no_marker(workdir):
    out = run_train("pipeline=teacher", "pipeline.stages.curriculum.end_ratio=0", *TINY, cwd=workdir)
    assert out.returncode != 0
    failed = [d for d in stage_dirs(workdir, "curriculum") if not (d / "done.json").exists()]
    assert failed, "the failed curriculum run has a directory without a marker"
    assert "stage fusion" not in out.stdout


def test_same_seed_same_metrics(tmp_path, workdir):
    """A second, independent run (its own artifacts folder) gives identical metrics."""
    out = run_train("pipeline=teacher", *TINY, f"paths.data={workdir}/data", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    for stage in ("autoencoder", "curriculum", "fusion"):
        (b,) = stage_dirs(tmp_path, stage)
        a = workdir / "experimentruns" / "synthetic" / stage / b.name  # same fingerprint, trained earlier
        assert (a / "done.json").is_file()
        ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
        assert ma["splits"] == mb["splits"], stage


def test_an_interrupted_stage_resumes_from_its_last_checkpoint(tmp_path, workdir):
    """Kill the VGAE after its first epoch's checkpoint; the rerun starts at epoch 2, not 1."""
    args = [sys.executable, str(ROOT / "train.py"), "stage=autoencoder", f"paths.data={workdir}/data",
            "dataset.synthetic.frames=20000", "train.max_epochs=3", "progress=false"]
    proc = subprocess.Popen(args + ["train.slow_epoch_s=30"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.time() + 120
    checkpoints = []
    while time.time() < deadline and not checkpoints:
        checkpoints = list((tmp_path / "experimentruns").glob("synthetic/autoencoder/*/checkpoint.pt"))
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert checkpoints, "no checkpoint within two minutes"
    assert not list(checkpoints[0].parent.glob("done.json"))
    out = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "resuming after epoch 1 of 3" in out.stdout
    assert "autoencoder epoch 1/3" not in out.stdout and "autoencoder epoch 2/3" in out.stdout
    metrics = json.loads((checkpoints[0].parent / "metrics.json").read_text())
    assert metrics["training"]["epochs_run"] == 3 and metrics["training"]["resumed_from_epoch"] == 1
