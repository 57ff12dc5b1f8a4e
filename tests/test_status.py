"""`kdgat status` and `cancel` rules on a made-up manifest (no SLURM)."""

import pytest

from kdgat.errors import KdgatError
from kdgat.slurm import JobInfo
from kdgat.status import describe, suggestion, to_cancel

MANIFEST = {"chains": [{"num": 0, "stages": [
    {"stage": "vgae", "status": "submitted", "job_id": "1", "needs": [], "log": "/l/1.out", "mem": "96G",
     "walltime": "08:00:00"},
    {"stage": "gat", "status": "submitted", "job_id": "2", "needs": ["vgae"], "log": "/l/2.out", "mem": "128G",
     "walltime": "12:00:00"},
    {"stage": "fusion", "status": "submitted", "job_id": "3", "needs": ["vgae", "gat"], "log": "/l/3.out",
     "mem": "96G", "walltime": "10:00:00"},
]}]}


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


def test_suggestion_rounds_up_with_margin():
    assert suggestion("1-00:00:00", None) == "next time walltime=36:00:00"
    assert suggestion("", 1000.0) == "next time mem=2G"


def test_cancel_a_stage_takes_its_dependents():
    assert to_cancel(MANIFEST, "gat") == ["2", "3"]
    assert to_cancel(MANIFEST, None) == ["1", "2", "3"]
    with pytest.raises(KdgatError, match="no stage 'x'"):
        to_cancel(MANIFEST, "x")



@pytest.fixture
def unreachable_scancel(tmp_path, monkeypatch):
    """A `scancel` that fails the way it does when the controller is down."""
    (tmp_path / "scancel").write_text("#!/bin/sh\necho 'scancel: error: Unable to contact slurm controller' >&2\n"
                                      "exit 1\n")
    (tmp_path / "scancel").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")


def test_a_failing_scancel_is_an_error_not_a_claim(unreachable_scancel):
    """scancel exits 0 for jobs that have ended; non-zero (controller down) must not print "cancelled"."""
    from kdgat import slurm

    with pytest.raises(KdgatError, match="scancel failed, jobs may still be queued: .*Unable to contact"):
        slurm.cancel(["1", "2"])
    slurm.cancel([])  # nothing to cancel: scancel is not called


def test_the_launchers_all_or_nothing_cancel_says_when_scancel_failed(unreachable_scancel):
    from hydra_plugins.kdgat_chain_launcher import _slurm

    said = _slurm.cancel(["7", "8"])
    assert said == "scancel failed (scancel: error: Unable to contact slurm controller), so these may still be " \
                   "queued: 7 8"
    assert _slurm.cancel([]) == "nothing was queued"
