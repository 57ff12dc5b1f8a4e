"""The stage job's side of tracking: a StageTracker that hands events to the tracking process and never fails.

Tracking never costs a model: whatever goes wrong here (MLflow missing, a
server down, a store locked or on a network filesystem) the stage trains and
writes its files as without tracking, the process logs one warning, and the
stage's pointer (kdgat.tracking.record) keeps what `kdgat track sync` needs to
complete the run later. Events go through a queue and a writer thread, so a
stuck tracking process can never block training; only the stage's end waits
for it, at most `tracking.wait_s`.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from typing import Any

from kdgat.tracking.record import PENDING, epoch_row, stage_pointer, write_pointer
from kdgat.tracking.settings import Target, client_environment, target, ui_command, unsafe_store

log = logging.getLogger(__name__)
_warned = False
_process: "TrackingProcess | None" = None
_stopped = False  # a tracking process did not answer: the rest of this process tracks nothing


def _warn_once(message: str) -> None:
    """One warning per process; later problems (every later stage of an in-process pipeline) are info."""
    global _warned
    (log.info if _warned else log.warning)(message)
    _warned = True


class TrackingProcess:
    """`python -m kdgat.tracking.worker`, fed through a queue by a writer thread, answered through a reader."""

    def __init__(self, target: Target) -> None:
        self.env = client_environment(target)  # where it sends: a run for elsewhere needs another process
        self.proc = subprocess.Popen([sys.executable, "-m", "kdgat.tracking.worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env={**os.environ, **self.env})
        self.outbox: queue.Queue = queue.Queue()
        self.replies: queue.Queue = queue.Queue()
        threading.Thread(target=self._write, daemon=True, name="kdgat-tracking-writer").start()
        threading.Thread(target=self._read, daemon=True, name="kdgat-tracking-reader").start()

    def _write(self) -> None:
        try:
            while (line := self.outbox.get()) is not None:
                self.proc.stdin.write(line + "\n")
                self.proc.stdin.flush()
            self.proc.stdin.close()
        except (OSError, ValueError):  # the process is gone
            pass

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self.replies.put(json.loads(line))
            except ValueError:
                continue
        self.replies.put(None)  # it exited

    def send(self, **msg: Any) -> None:
        self.outbox.put(json.dumps(msg))

    def answer(self, key: str, wait_s: float) -> dict[str, Any] | None:
        """The reply to `finish` for `key`; None when the process exited or did not answer in time."""
        deadline = time.monotonic() + wait_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                reply = self.replies.get(timeout=left)
            except queue.Empty:
                break
            if reply is None:
                return None
            if reply.get("key") == key:
                return reply
        return None

    def close(self, wait_s: float = 5.0) -> None:
        self.outbox.put(None)
        try:
            self.proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _tracking_process(target: Target) -> TrackingProcess:
    """One per stage job (or in-process pipeline), started by the first stage that trains."""
    global _process
    if _process is not None and _process.proc.poll() is None and _process.env != client_environment(target):
        _process.close()  # a later pipeline of this process (the Python API) tracks elsewhere
    if _process is None or _process.proc.poll() is not None:
        _process = TrackingProcess(target)
        atexit.register(_process.close)
    return _process


def begin_pipeline() -> None:
    """A pipeline run in this process starts tracking afresh: one whose tracking failed earlier in the same
    process (a notebook's earlier call) does not silence it."""
    global _stopped
    _stopped = False


def _stop_tracking() -> None:
    global _process, _stopped
    if _process is not None:
        _process.proc.kill()
    _process, _stopped = None, True


class StageTracker:
    """One stage's run. `on_epoch` is None when tracking is off, so the epoch loop skips it."""

    def __init__(self, cfg: Any, name: str, art: Any, target: Target | None = None,
                 process: TrackingProcess | None = None, sweep: str = "") -> None:
        self.cfg, self.name, self.art, self.target, self.process, self.sweep = cfg, name, art, target, process, sweep
        self.on_epoch = self._epoch if process is not None else None

    def _epoch(self, epoch: int, row: dict[str, float]) -> None:
        self.process.send(op="epoch", key=str(self.art.dir), step=epoch + 1, values=epoch_row(row),
                          ts=int(time.time() * 1000))

    def finish(self, ok: bool) -> None:
        """Send what is left (metrics, figures, the end) and wait, at most `tracking.wait_s`, for the answer."""
        if self.process is None:
            return
        key = str(self.art.dir)
        self.process.send(op="finish", key=key, ok=ok, chain_done=ok and self._chain_done())
        reply = self.process.answer(key, self.target.wait_s)
        if reply is not None and reply.get("ok"):
            log.info(f"stage {self.name} is MLflow run {reply['run_id']} in {self.target.uri} "
                     f"(to see it: {ui_command(self.target.uri)})")
            return
        if reply is None:
            why = ("its tracking process exited (its error is above)" if self.process.proc.poll() is not None
                   else f"its tracking process did not answer in {self.target.wait_s:g} s (tracking.wait_s)")
            _stop_tracking()
        else:
            why = reply.get("error") or "unknown error"
        _warn_once(f"MLflow tracking to {self.target.uri} failed: {why}. The stage's files are complete; "
                   f"send its run later with: kdgat track sync {self.sweep or self.art.dir}")

    def _chain_done(self) -> bool:
        """Whether every other stage of the chain is trained: then this stage ends the chain's parent run."""
        from kdgat.artifacts import stage_artifacts

        try:
            return all(stage_artifacts(self.cfg, s).done() for s in self.cfg.pipeline.stages if s != self.name)
        except Exception:  # a stage's inputs not found: the chain is not done
            return False


def start_stage(cfg: Any, name: str, art: Any, inputs: dict[str, Any]) -> StageTracker:
    """The tracker of a stage about to train: its pointer written, its run being opened by the tracking process."""
    try:
        where = target(cfg)
        if where is None:
            return StageTracker(cfg, name, art)
        pointer = stage_pointer(cfg, name, art, inputs, where)
        sweep = pointer["tags"].get("sweep_dir") or str(art.dir.parents[2])  # a sweep, else paths.artifacts
        unsafe = unsafe_store(where.uri) or (_stopped and "tracking stopped after an earlier stage's failure")
        if unsafe:
            write_pointer(art.dir, {**pointer, "state": PENDING, "error": unsafe})
            _warn_once(f"stage {name} is not tracked: {unsafe}")
            return StageTracker(cfg, name, art)
        write_pointer(art.dir, pointer)
        process = _tracking_process(where)
        process.send(op="start", key=str(art.dir))
        return StageTracker(cfg, name, art, where, process, sweep)
    except Exception as err:  # tracking never costs a model
        _warn_once(f"stage {name} is not tracked: {type(err).__name__}: {err}")
        return StageTracker(cfg, name, art)
