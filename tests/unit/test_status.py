"""`kdgat status` and `cancel` rules on a made-up manifest (no SLURM)."""

import pytest

from hydra_plugins.kdgat_chain_launcher import Attempt, ChainRecord, JobInfo, Manifest, StageRecord
from kdgat.errors import KdgatError
from kdgat.status import describe, log_path, suggestion, to_cancel


def record(stage, job_id, needs, mem, walltime, action="submitted"):
    return StageRecord(stage=stage, action=action, job_id=job_id, job_name=stage, needs=needs, depends_on=[],
                       walltime=walltime, mem=mem, cpus=16, gpus=1, log=f"/l/{job_id}.out")


MANIFEST = Manifest(sweep_dir="/s", submitted="", cluster="slurm", chains=[ChainRecord(num=0, overrides=[], stages=[
    record("vgae", "1", [], "96G", "08:00:00"),
    record("gat", "2", ["vgae"], "128G", "12:00:00"),
    record("fusion", "3", ["vgae", "gat"], "96G", "10:00:00"),
])])


def test_cancelled_stage_names_the_stage_that_failed():
    infos = {"1": JobInfo("1", "COMPLETED", "0:0", "01:10:00", max_rss_mb=20 * 1024),
             "2": JobInfo("2", "FAILED", "1:0", "00:03:00"), "3": JobInfo("3", "CANCELLED", "0:0")}
    rows = {r.stage: r for r in describe(MANIFEST, infos)}
    assert rows["fusion"].note == "cancelled because gat failed (exit 1, see /l/2.out)"
    assert rows["gat"].note == "failed (exit 1, see /l/2.out)"
    assert rows["vgae"].memory == "20.0G of 96G"
    assert rows["vgae"].note == "used 01:10:00 of 08:00:00; next time walltime=02:00:00 mem=30G"


def test_waiting_stage_says_what_it_waits_for():
    infos = {"1": JobInfo("1", "RUNNING"), "2": JobInfo("2", "PENDING", reason="Dependency"),
             "3": JobInfo("3", "PENDING", reason="Dependency")}
    rows = {r.stage: r for r in describe(MANIFEST, infos)}
    assert rows["gat"].note == "waiting for vgae" and rows["fusion"].note == "waiting for vgae, gat"


def test_a_running_stage_shows_its_mlflow_run(tmp_path):
    """From the pointer its tracking writes beside the stage's completion marker (kdgat.tracking.record)."""
    from kdgat.tracking.record import write_pointer

    write_pointer(tmp_path, {"run_id": "abc123", "state": "running"})
    stages = [StageRecord(stage="vgae", action="submitted", job_id="1", marker=str(tmp_path / "done.json")),
              StageRecord(stage="gat", action="submitted", job_id="2", marker=str(tmp_path / "other" / "done.json"))]
    manifest = Manifest(sweep_dir="/s", submitted="", cluster="slurm", chains=[ChainRecord(0, [], stages)])
    rows = {r.stage: r for r in describe(manifest, {"1": JobInfo("1", "RUNNING"), "2": JobInfo("2", "RUNNING")})}
    assert rows["vgae"].note == "MLflow run abc123"
    assert rows["gat"].note == ""  # not tracked (or its run not opened yet)


def test_suggestion_rounds_up_with_margin():
    assert suggestion("1-00:00:00", None) == "next time walltime=1-12:00:00"  # as --suggest writes it
    assert suggestion("", 1000.0) == "next time mem=2G"


def test_cancel_a_stage_takes_its_dependents():
    assert to_cancel(MANIFEST, "gat") == ([], ["2", "3"])
    assert to_cancel(MANIFEST, None) == ([], ["1", "2", "3"])
    with pytest.raises(KdgatError, match="no stage 'x'"):
        to_cancel(MANIFEST, "x")



@pytest.fixture
def unreachable_scancel(tmp_path, monkeypatch):
    """A `scancel` that fails the way it does when the controller is down."""
    (tmp_path / "scancel").write_text("#!/bin/sh\necho 'scancel: error: Unable to contact slurm controller' >&2\n"
                                      "exit 1\n")
    (tmp_path / "scancel").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")


def test_a_failing_scancel_is_an_error_not_a_claim(unreachable_scancel, tmp_path):
    """scancel exits 0 for jobs that have ended; non-zero (controller down) must not say "cancelled"."""
    from hydra_plugins.kdgat_chain_launcher import make_backend

    slurm = make_backend({}, tmp_path, "slurm")
    with pytest.raises(RuntimeError, match=r"scancel failed \(scancel: error: Unable to contact slurm controller\), "
                                           r"so these may still be queued: 7 8"):
        slurm.cancel(["7", "8"])
    slurm.cancel([])  # nothing to cancel: scancel is not called


def test_logs_of_an_unknown_stage_lists_the_stages():
    with pytest.raises(KdgatError, match="no stage 'fusionx' in this sweep; its stages are vgae, gat, fusion"):
        log_path(MANIFEST, "fusionx", None)


def retried(number, jobs, cause, guard, outcome=""):
    return Attempt(number=number, jobs=jobs, logs={}, requests={}, guard=guard, cause=cause, outcome=outcome)


ATTEMPTS = {0: [retried(1, {"vgae": "1", "gat": "2", "fusion": "3"}, "submitted", "9"),
                retried(2, {"vgae": "1", "gat": "12", "fusion": "13"}, "stage gat: 192G after OUT_OF_MEMORY at "
                        "128G (job 2)", "19", "not retried: stage gat FAILED (exit 1:0, job 12): not out of memory "
                        "or out of time")]}


def test_status_follows_a_retried_stage_to_its_latest_job_and_says_why():
    infos = {"1": JobInfo("1", "COMPLETED", "0:0", "00:10:00"), "12": JobInfo("12", "FAILED", "1:0", "00:03:00"),
             "13": JobInfo("13", "CANCELLED", "0:0")}
    rows = {r.stage: r for r in describe(MANIFEST, infos, ATTEMPTS)}
    assert rows["gat"].job_id == "12" and rows["fusion"].job_id == "13"
    assert rows["gat"].note.startswith("attempt 2: stage gat: 192G after OUT_OF_MEMORY at 128G (job 2); not retried: "
                                       "stage gat FAILED")
    assert "cancelled because gat failed" in rows["fusion"].note
    assert rows["vgae"].note.startswith("used 00:10:00")  # never retried: no attempt note


def test_cancel_takes_the_guards_first_and_every_attempts_jobs():
    assert to_cancel(MANIFEST, None, ATTEMPTS) == (["9", "19"], ["1", "2", "12", "3", "13"])
    assert to_cancel(MANIFEST, "fusion", ATTEMPTS) == (["9", "19"], ["3", "13"])


def test_a_running_stage_without_a_recorded_marker_is_found_from_its_chains_frozen_config(tmp_path, compose_cfg,
                                                                                            monkeypatch):
    """A synthetic dataset is made by the chain's first stage: at submit nothing knew its stages' folders yet."""
    from omegaconf import OmegaConf

    import kdgat.artifacts as artifacts
    from kdgat.tracking.record import write_pointer

    monkeypatch.setattr(artifacts, "data_key", lambda cfg: "d" * 16)
    cfg = compose_cfg("pipeline=teacher", f"paths.artifacts={tmp_path / 'art'}")
    (tmp_path / "0").mkdir()
    OmegaConf.save(cfg, tmp_path / "0" / "config.yaml")
    folder = artifacts.stage_artifacts(cfg, "curriculum").dir
    folder.mkdir(parents=True)
    write_pointer(folder, {"run_id": "r9", "state": "running"})
    manifest = Manifest(sweep_dir=str(tmp_path), submitted="", cluster="slurm", chains=[ChainRecord(0, [], [
        StageRecord(stage="curriculum", action="submitted", job_id="1")])])
    (row,) = describe(manifest, {"1": JobInfo("1", "RUNNING")})
    assert row.note == "MLflow run r9"
