"""Running kdgat as a user would, and asking SLURM what became of the jobs: shared by the benchmarks
(reliability, submit speed) and the tests (tests/conftest.py imports this module).

SLURM is asked directly (sacct, squeue, scontrol), not through kdgat's own readers, so that a test of
kdgat's status never checks kdgat against itself.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from hydra_plugins.kdgat_chain_launcher import ENDED_STATES

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "tests" / "chain_app" / "app.py"  # a small Hydra app that is not kdgat, on the same launcher
HAS_SLURM = shutil.which("sbatch") is not None
# Job states after which a job never runs again: the launcher's own, less its GONE (a job SLURM no longer
# knows), which SLURM itself never reports.
FINAL = ENDED_STATES - {"GONE"}


def _run(argv, cwd, env=None, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def run_train(*args: str, cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python train.py ARGS` in a fresh process."""
    return _run([sys.executable, str(ROOT / "train.py"), *args], cwd, env, timeout)


def run_app(*args: str, cwd: Path, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """The chain app (tests/chain_app) with ARGS."""
    return _run([sys.executable, str(APP), *args], cwd, env, timeout)


def kdgat(*args: str, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """The `kdgat` command."""
    return _run([sys.executable, "-m", "kdgat.cli", *args], cwd, env, timeout)


def synth(out: Path, like: str, frames: int = 6000, env: dict | None = None) -> Path:
    """`kdgat synth --like LIKE --out OUT --frames FRAMES --quiet`: a synthetic dataset folder like LIKE's."""
    out = Path(out).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    made = kdgat("synth", "--like", like, "--out", str(out), "--frames", str(frames), "--quiet", cwd=out.parent,
                 env=env)
    assert made.returncode == 0, f"kdgat synth --like {like} failed: {made.stderr}"
    return out


def job_ids(sweep: Path) -> dict:
    """{(chain num, stage): job id} of a launched sweep, from its manifest."""
    from hydra_plugins.kdgat_chain_launcher import read_manifest

    return {(c.num, s.stage): s.job_id for c in read_manifest(sweep).chains for s in c.stages}


def guards(sweep: Path) -> list:
    """The retry guard jobs of a launched sweep: the launcher's, and any a guard submitted."""
    from hydra_plugins.kdgat_chain_launcher import read_attempts, read_manifest

    found = []
    for chain in read_manifest(sweep).chains:
        found += [chain.guard] if chain.guard else []
        found += [a.guard for a in read_attempts(sweep / str(chain.num)) if a.guard and a.guard not in found]
    return found


def states(ids, deadline_s: float = 240, until=FINAL) -> dict:
    """sacct's state of each job, polled until every one is in `until` or the deadline passes."""
    deadline = time.monotonic() + deadline_s
    while True:
        arrays = [i.split("_")[0] for i in ids if "_" in i]
        out = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(list(ids) + arrays)],
                             capture_output=True, text=True).stdout
        found = {j: s.split()[0] for j, s in (line.split("|") for line in out.splitlines() if "|" in line)}
        for job, state in list(found.items()):  # an array whose pending tasks share one record: 123_[0-1%4]
            grouped = re.fullmatch(r"(\d+)_\[([\d,\-]+)(?:%\d+)?\]", job)
            for part in grouped[2].split(",") if grouped else []:
                lo, _, hi = part.partition("-")
                for task in range(int(lo), int(hi or lo) + 1):
                    found.setdefault(f"{grouped[1]}_{task}", state)
        for i in ids:  # an array task cancelled while pending may leave only its array's record (123)
            if i not in found and "_" in i and i.split("_")[0] in found:
                found[i] = found[i.split("_")[0]]
            elif i not in found:  # or none in sacct yet (slurmdbd lags under load): scontrol knows it for a while
                shown = subprocess.run(["scontrol", "show", "job", "-o", i], capture_output=True, text=True).stdout
                state = re.search(r"JobState=(\w+)", shown)
                found[i] = state[1] if state else None
        if all(found.get(i) in until for i in ids) or time.monotonic() > deadline:
            return {i: found.get(i) for i in ids}
        time.sleep(1)


def attempt_states(job: str) -> list:
    """sacct's state of every run of a job, oldest first, a requeued one's earlier runs (REQUEUED) included."""
    out = subprocess.run(["sacct", "-D", "-X", "-n", "-P", "-o", "State", "-j", job], capture_output=True, text=True)
    return out.stdout.split()


def queued_ids() -> set:
    """Every job id in the queue, task by task."""
    return set(squeue("-r", "-o", "%i").split())


def scontrol(job_id: str) -> dict:
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, check=True)
    return dict(re.findall(r"(\w+)=(\S*)", out.stdout))


def cancel(ids) -> None:
    """scancel, tried again while the controller is too busy to answer (a loaded CI machine)."""
    for _ in range(5):
        if not ids or subprocess.run(["scancel", *ids], capture_output=True).returncode == 0:
            return
        time.sleep(2)
    raise AssertionError(f"scancel could not cancel {ids}: they may still be queued")


def squeue(*args: str) -> str:
    """squeue's output, asked again while the controller is too busy to answer; a failing squeue is an
    error, never read as an empty queue."""
    for _ in range(3):
        out = subprocess.run(["squeue", "-h", *args], capture_output=True, text=True)
        if out.returncode == 0:
            return out.stdout
        time.sleep(2)
    raise AssertionError(f"squeue failed: {out.stderr.strip()}")


def statuses(out: str) -> dict:
    """{stage: status} from the launcher's table(s) in `out`."""
    rows = [line.split() for line in out.splitlines() if line.split()[:1] and line.split()[0] in
            ("first", "second", "third", "autoencoder", "curriculum", "fusion")]
    return {r[0]: " ".join(r[1:3]) if r[1] in ("skipped", "attached", "shared") else r[1] for r in rows}
