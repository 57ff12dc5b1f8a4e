"""The machinery of the reliability catalogue (bench/reliability_cases.py): the folder every case runs in
(`Sandbox`), what a case is (`Case`) and returns (`Result`), `run_case`, and the checks cases share.

Every case runs in a fresh folder (`Sandbox`) and returns a `Result`. How its columns are measured:

- jobs submitted: kdgat runs `sbatch` through a spy first on PATH, which runs the real one and records the
  job ids SLURM hands out, so other people's jobs on a shared cluster are never counted;
- jobs left queued: this case's jobs (the spied ids, or squeue's working directory inside the case's folder)
  still pending or running when the case ends; the runner cancels them afterwards;
- files lost: files of finished stages (sha256 of everything a finished stage wrote under paths.artifacts,
  or under the chain app's `out`) that are missing or changed later, after the fault and the recovery.

Bad input must end in one line (warnings aside) naming the bad value and what is allowed, a non-zero exit,
no sbatch and no file but Hydra's own `multirun.yaml`, which Hydra writes before any launcher runs (`refused`).
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from cluster import HAS_SLURM, run_app, run_train, squeue


LAUNCH = "hydra/launcher=kdgat_chain"
LIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "SUSPENDED", "RESIZING"}


@dataclass
class Result:
    did: str = ""  # what kdgat did, in a few words
    submitted: int = 0
    left_queued: int = 0
    files_lost: int = 0
    problems: list[str] = field(default_factory=list)  # none: the case passes

    @property
    def passed(self) -> bool:
        return not self.problems

    def check(self, ok: bool, problem: str) -> bool:
        if not ok:
            self.problems.append(problem)
        return ok


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # "bad input" or "fault"
    needs: str  # "nothing" (fast), "time" (trains: slow) or "cluster" (real jobs: slurm, slow)
    run: Callable[["Sandbox"], Result]


SPY = """#!/bin/sh
# sbatch spy of the reliability catalogue: the real sbatch, with every job id it hands out recorded
out=$({real} "$@")
rc=$?
[ -n "$out" ] && printf '%s\\n' "$out"
printf '%s\\n' "$out" | sed -n 's/^Submitted batch job \\([0-9][0-9]*\\).*/\\1/p' >>{log}
exit $rc
"""


class Sandbox:
    """A case's folders: `work` (the commands' cwd, where paths.artifacts and multirun/ land), `data`
    (KDGAT_DATA) and `spy` (the sbatch spy and its record), kept apart so that `work` shows what kdgat wrote."""

    def __init__(self, root: Path):
        self.root = root
        self.work, self.data, self.spy = root / "work", root / "data", root / "spy"
        for folder in (self.work, self.data, self.spy):
            folder.mkdir(parents=True, exist_ok=True)
        self.record = self.spy / "submitted"
        self.record.touch()
        real = shutil.which("sbatch")
        if real:  # without SLURM, kdgat must find no sbatch at all, as on such a machine
            sbatch = self.spy / "sbatch"
            sbatch.write_text(SPY.format(real=shlex.quote(real), log=shlex.quote(str(self.record))))
            sbatch.chmod(0o755)
        self.env = {"PATH": f"{self.spy}{os.pathsep}{os.environ['PATH']}", "KDGAT_DATA": str(self.data)}
        self.apps = 0

    def train(self, *args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        return run_train(*args, cwd=self.work, env={**self.env, **(env or {})}, timeout=timeout)

    def app(self, *args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        """The small non-kdgat app of tests/chain_app, writing its stages' files to `work/out`, each submission
        in a sweep directory of its own (the app's default is only unique to the second)."""
        (self.work / "out").mkdir(exist_ok=True)
        self.apps += 1
        sweep = self.work / "multirun" / "app" / str(self.apps)
        return run_app(LAUNCH, f"out={self.work / 'out'}", f"hydra.sweep.dir={sweep}", *args, cwd=self.work,
                       env={**self.env, **(env or {})}, timeout=timeout)

    def kdgat(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "kdgat.cli", *args], cwd=self.work, capture_output=True,
                              text=True, timeout=120, env={**os.environ, **self.env, **(env or {})})

    def submitted(self) -> list[str]:
        return self.record.read_text().split()

    def queued(self) -> list[str]:
        """This case's jobs that SLURM still has pending or running."""
        if not HAS_SLURM:
            return []
        out = squeue("-o", "%i|%T|%Z")
        mine = set(self.submitted())
        rows = (line.split("|", 2) for line in out.splitlines() if line.count("|") >= 2)
        return [job for job, state, workdir in rows
                if state in LIVE and (job in mine or Path(workdir) == self.root or self.root in Path(workdir).parents)]

    def files(self) -> set[str]:
        return {str(p.relative_to(self.work)) for p in self.work.rglob("*") if p.is_file()}

    def sweep(self) -> Path:
        """The newest sweep directory a submission made under work/multirun."""
        sweeps = sorted(self.work.glob("multirun/*/*"), key=lambda p: p.stat().st_mtime)
        assert sweeps, f"no sweep directory under {self.work / 'multirun'}"
        return sweeps[-1]


def run_case(case: Case, root: Path) -> Result:
    """Run one case in `root`; count its jobs; cancel what it left queued (and say so)."""
    box = Sandbox(root)
    try:
        result = case.run(box)
    except Exception as err:  # a case that crashes fails, with the reason in its row
        result = Result(did=f"the case itself broke: {type(err).__name__}", problems=[f"{type(err).__name__}: {err}"])
    result.submitted = len(box.submitted())
    left = box.queued()
    result.left_queued = len(left)
    if left:
        result.problems.append(f"jobs left queued: {' '.join(left)}")
        subprocess.run(["scancel", *left], capture_output=True)
    return result


def error_lines(stderr: str) -> list[str]:
    """What a command said on stderr, warnings aside."""
    return [line for line in stderr.splitlines() if line.strip() and ": warning:" not in line]


def refused(box: Sandbox, *args: str, names: list[str], app: bool = False, env: dict | None = None) -> Result:
    """A bad request: one line naming the bad value and what is allowed (each of `names`, a regular expression),
    a non-zero exit, nothing submitted, nothing written but Hydra's own multirun.yaml."""
    before = box.files()
    out = (box.app if app else box.train)(*args, env=env)
    lines = error_lines(out.stderr)
    result = Result(did=_said(lines, out.returncode))
    result.check(out.returncode != 0, f"exit status 0 for a bad request; stdout: {out.stdout[-300:]!r}")
    if result.check(len(lines) == 1, f"{len(lines)} lines of error, not one: {lines[-8:]}") and lines:
        for name in names:
            result.check(re.search(name, lines[0], re.IGNORECASE) is not None,
                         f"the error does not name {name!r}: {lines[0]}")
    result.check(not box.submitted(), f"sbatch submitted {box.submitted()}")
    written = sorted(f for f in box.files() - before if not re.fullmatch(r"multirun/[^/]+/[^/]+/multirun\.yaml", f))
    result.check(not written, f"files written: {written[:6]}")
    return result


def _said(lines: list[str], rc: int) -> str:
    """The command's last error line, short enough for a table row."""
    text = re.sub(r"^kdgat(_chain)?: error: (job \d+: )?", "", lines[-1]) if lines else "(nothing on stderr)"
    return f"exit {rc}: {text if len(text) <= 100 else text[:97] + '...'}"


def checksums(folder: Path, finished: Callable[[Path], bool]) -> dict[str, str]:
    """sha256 of every file under `folder` that `finished` says belongs to a finished stage."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and finished(p)}


def lost(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return [name for name, digest in before.items() if after.get(name) != digest]


def app_done(path: Path) -> bool:
    """A chain app stage's output: `<tag>-<stage>.done` (its completion marker too)."""
    return path.suffix == ".done"


def kdgat_done(path: Path) -> bool:
    """A file of a finished kdgat stage (its folder holds done.json) or of a complete data cache (manifest.json)."""
    return (path.parent / "done.json").is_file() or (path.parent / "manifest.json").is_file()


def status_rows(box: Sandbox, sweep: Path, env: dict | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    """`kdgat status SWEEP` and its rows by stage."""
    out = box.kdgat("status", str(sweep), env=env)
    rows = {line.split()[1]: line for line in out.stdout.splitlines()[2:] if len(line.split()) > 1}
    return out, rows
