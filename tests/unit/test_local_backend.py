"""The local backend's records across launches: a second launch attaches to a job the first one runs."""

import dataclasses

from hydra_plugins.kdgat_chain_launcher import QueuedRecord, Resources, Stage
from hydra_plugins.kdgat_chain_launcher._backend import Submission, Task
from hydra_plugins.kdgat_chain_launcher._local import LocalBackend


def _queue(backend, tmp_path, name, after=()):
    stage = Stage(name=name, needs=(), resources=Resources.of())
    task = Task(chain=0, job=lambda: None, name=name, after=list(after), comments=[])
    (queued,) = backend.submit(Submission(stage, [task], array=False, folder=tmp_path / name))
    return queued.job_id


def test_a_second_launch_waits_on_reads_and_cancels_an_attached_job(tmp_path):
    first = LocalBackend({}, tmp_path / "sweep1")
    running = _queue(first, tmp_path, "autoencoder")
    second = LocalBackend({}, tmp_path / "sweep2")
    assert second.alive(QueuedRecord(running, "autoencoder", str(tmp_path / "sweep1"), "local"))

    waiting = {"after": [running]}
    assert second.states([running])[running].state == "PENDING"  # not GONE: read where it runs
    assert second._ready(waiting) is None  # still running elsewhere: wait

    second.cancel([running])  # a request that the first launch, which runs it, acts on
    assert first._requested_cancel(running)

    first._end(first.queue[0], "COMPLETED", exit_code="0:0")
    assert second.states([running])[running].state == "COMPLETED"
    assert second._ready(waiting) is True


def test_a_failed_attached_job_cancels_what_waits_on_it_and_an_ended_one_is_not_attached(tmp_path):
    first = LocalBackend({}, tmp_path / "sweep1")
    running = _queue(first, tmp_path, "autoencoder")
    second = LocalBackend({}, tmp_path / "sweep2")
    queued = QueuedRecord(running, "autoencoder", str(tmp_path / "sweep1"), "local")
    assert second.alive(queued)
    first._end(first.queue[0], "FAILED", exit_code="1:0")
    assert second._ready({"after": [running]}) is False
    assert not LocalBackend({}, tmp_path / "sweep3").alive(queued)
    assert not second.alive(dataclasses.replace(queued, cluster="slurm"))
