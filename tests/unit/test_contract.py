"""The manifest and attempt files of the launcher↔app contract: what is written is what is read back."""

import json

import pytest

from hydra_plugins.kdgat_chain_launcher import (
    MANIFEST,
    Attempt,
    ChainRecord,
    Manifest,
    StageRecord,
    read_attempts,
    read_manifest,
    write_attempt,
    write_manifest,
    write_outcome,
)


def _manifest(sweep):
    stages = [StageRecord("autoencoder", "submitted", job_id="101", needs=[], walltime="08:00:00", mem="96G",
                          cpus=16, gpus=1, log="0/autoencoder/%j.out", marker="/m/autoencoder/done"),
              StageRecord("curriculum", "done", needs=["autoencoder"], depends_on=["101"], note="trained before")]
    return Manifest(str(sweep), "2026-12-07 22:00:00", "slurm", [ChainRecord(0, ["dataset=hcrl_sa"], stages, "99")],
                    submissions=2)


def test_a_manifest_reads_back_as_written(tmp_path):
    written = _manifest(tmp_path)
    write_manifest(written)
    read = read_manifest(tmp_path)
    assert read == written  # the guard job, each stage's every field, the version
    assert read.chains[0].guard == "99" and read.job_ids() == ["101"]


def test_a_version_1_manifest_is_read_and_a_newer_one_refused(tmp_path):
    (tmp_path / MANIFEST).write_text(json.dumps({"sweep_dir": str(tmp_path), "submitted": "", "cluster": "slurm",
                                                 "chains": [{"num": 0, "overrides": [], "stages": [
                                                     {"stage": "a", "status": "skipped (done)", "job_id": "-"},
                                                     {"stage": "b", "status": "submitted; retrains", "job_id": "7"}]}]}))
    old = read_manifest(tmp_path)
    assert old.version == 1
    assert [(s.stage, s.action, s.note) for s in old.chains[0].stages] == [("a", "done", ""),
                                                                          ("b", "submitted", "retrains")]
    (tmp_path / MANIFEST).write_text(json.dumps({"version": 99, "chains": []}))
    with pytest.raises(ValueError, match="manifest version 99; this launcher reads up to 2"):
        read_manifest(tmp_path)


def test_attempts_read_back_in_order_with_their_guards_outcome(tmp_path):
    first = Attempt(1, {"a": "101"}, {"a": "a.log"}, {"a": {"mem": "96G"}}, guard="102")
    second = Attempt(2, {"a": "103"}, {"a": "a2.log"}, {"a": {"mem": "144G"}}, {"a:oom": 1}, cause="OOM at 96G")
    for attempt in (second, first):
        write_attempt(tmp_path, attempt)
    write_outcome(tmp_path, 1, "stage a: retried with 144G")
    read = read_attempts(tmp_path)
    assert [a.number for a in read] == [1, 2]
    assert read[0].outcome == "stage a: retried with 144G" and read[0].guard == "102"
    assert read[1] == second


def test_a_key_a_newer_launcher_added_is_left_when_reading(tmp_path):
    write_attempt(tmp_path, Attempt(1, {"a": "101"}, {"a": "a.log"}, {"a": {"mem": "96G"}}))
    path = tmp_path / "retry" / "attempt-1.json"
    path.write_text(path.read_text().replace('"number": 1,', '"number": 1, "priority": "high",'))
    assert read_attempts(tmp_path)[0].jobs == {"a": "101"}
