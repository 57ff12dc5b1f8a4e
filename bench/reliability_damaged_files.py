"""The "fault" cases of the reliability catalogue (bench/reliability_cases.py) that need no cluster, only time to
train: a damaged checkpoint, data cache or finished model is noticed, reported and rebuilt, never loaded."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from cluster import ROOT
from reliability_sandbox import LAUNCH, Result, Sandbox, checksums, error_lines, kdgat_done, lost


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    else:  # "flip" a run of bytes in the middle, keeping the size
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 64]) + data[middle + 64:])


# One small stage, trained here (no cluster); two epochs where a run must be killed between them.
AUTOENCODER = ("pipeline=custom", "pipeline.presets=[autoencoder]", "dataset.synthetic.frames=20000", "progress=false")


def damaged_checkpoint_and_cache(box: Sandbox) -> Result:
    """A stage killed (SIGKILL) after its first epoch leaves its checkpoint and no model or marker. With bytes
    of that checkpoint flipped (same size: torch.load does not notice) and the data cache's files corrupted and
    truncated, the next run reports both, rebuilds the cache, starts the stage over, never loads the damage."""
    runs = box.work / "experimentruns"
    result = Result()
    slow = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *AUTOENCODER, "train.max_epochs=2",
                             "train.slow_epoch_s=60"],
                            cwd=box.work, env={**os.environ, **box.env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while not list(runs.glob("synthetic/autoencoder/*/checkpoint.pt")) and slow.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.5)
    os.killpg(slow.pid, signal.SIGKILL)
    slow.wait()
    checkpoints = list(runs.glob("synthetic/autoencoder/*/checkpoint.pt"))
    caches = list(runs.glob("cache/synthetic/*/manifest.json"))
    if not result.check(len(checkpoints) == 1 and len(caches) == 1, "no checkpoint or data cache after epoch 1"):
        return result
    stage_dir, cache = checkpoints[0].parent, caches[0].parent
    result.check(not (stage_dir / "model.pt").exists() and not (stage_dir / "done.json").exists(),
                 "the killed stage left a model or a marker")
    before = checksums(runs, kdgat_done)
    _damage(checkpoints[0], "flip")
    _damage(cache / "train.npz", "flip")
    _damage(cache / "val.npz", "truncate")
    again = box.train(*AUTOENCODER, "train.max_epochs=2", timeout=300)
    said = again.stdout + again.stderr
    result.check(again.returncode == 0, f"the run after the damage failed: {error_lines(again.stderr)[-3:]}")
    result.check("resuming after epoch" not in said, "the damaged checkpoint was loaded (resumed from it)")
    result.check(re.search(r"checkpoint.*(epoch 1|start)", said) is not None, "the damaged checkpoint was not reported")
    result.check(re.search(r"cache .*rebuilding", said) is not None, "the damaged cache was not reported")
    result.check((stage_dir / "done.json").is_file(), "the stage did not finish")
    gone = lost(before, checksums(runs, kdgat_done))  # the rebuilt cache must be the same data again
    result.files_lost = len(gone)
    result.check(not gone, f"finished files lost or changed: {gone}")
    result.did = (f"killed after epoch 1; checkpoint {'loaded' if 'resuming after' in said else 'not loaded'}, "
                  f"cache {'rebuilt' if 'rebuilding' in said else 'not rebuilt'}; exit {again.returncode}")
    return result


def damaged_model(box: Sandbox) -> Result:
    """A finished stage whose model.pt is then damaged (bytes flipped, same size) is planned for resubmission
    with the reason, and run again it is trained again rather than skipped as done, leaving a model that
    matches its new marker. (Readers refusing a damaged input: require_finished, tests/unit/test_artifacts.py.)"""
    result = Result()
    first = box.train(*AUTOENCODER, "train.max_epochs=1", timeout=300)
    model = [p for p in (box.work / "experimentruns").glob("synthetic/autoencoder/*/model.pt")
             if p.parent.name != "latest"]
    if not result.check(first.returncode == 0 and len(model) == 1,
                        f"training failed: {error_lines(first.stderr)[-3:]}"):
        return result
    _damage(model[0], "flip")
    preview = box.train(*AUTOENCODER, "train.max_epochs=1", LAUNCH, "hydra.launcher.dry_run=true")
    result.check(re.search(r"autoencoder\s+(would )?submit", preview.stdout) is not None and "sha256" in preview.stdout,
                 f"the launcher's plan does not resubmit the damaged stage and say why: {preview.stdout[-400:]}")
    again = box.train(*AUTOENCODER, "train.max_epochs=1", timeout=300)
    result.check(again.returncode == 0, f"the run after the damage failed: {error_lines(again.stderr)[-3:]}")
    result.check("already trained" not in again.stdout, "the damaged stage was skipped as done")
    record = json.loads((model[0].parent / "done.json").read_text()).get("files", {})
    result.check(record.get("model.pt") == hashlib.sha256(model[0].read_bytes()).hexdigest(),
                 "model.pt does not match its marker after the run")
    result.did = (f"plan: {'resubmit' if 'sha256' in preview.stdout else 'skip'}; run: exit {again.returncode}, "
                  f"{'skipped as done' if 'already trained' in again.stdout else 'trained again'}")
    return result
