"""The reliability catalogue (issue 7): bad input is refused before it costs anything, and a fault loses no
finished work. One function per case, in one list, `CASES`; tests/cluster/test_reliability.py runs each as a test
and bench/reliability.py prints them as a table.

Every case runs in a fresh folder (`Sandbox`) and returns a `Result`. How its columns are measured:

- jobs submitted: kdgat runs `sbatch` through a spy first on PATH, which runs the real one and records the
  job ids SLURM hands out, so other people's jobs on a shared cluster are never counted;
- jobs left queued: this case's jobs (the spied ids, or squeue's working directory inside the case's folder)
  still pending or running when the case ends; the runner cancels them afterwards;
- files lost: files of finished stages (sha256 of everything a finished stage wrote under paths.artifacts,
  or under the chain app's `out`) that are missing or changed later, after the fault and the recovery.

Bad input must end in one line (warnings aside) naming the bad value and what is allowed, a non-zero exit,
no sbatch and no file but Hydra's own `multirun.yaml`, which Hydra writes before any launcher runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from cluster import (
    HAS_SLURM,
    ROOT,
    cancel,
    guards,
    job_ids,
    run_app,
    run_train,
    squeue,
    states,
    statuses,
)

from hydra_plugins.kdgat_chain_launcher import read_attempts

LOCAL_SLURM = ROOT / "scripts" / "local-slurm.sh"
TINY = ("dataset.synthetic.frames=20000", "train.max_epochs=1", "progress=false")  # a stage in seconds
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


# ------------------------------------------------------------------ the sandbox every case runs in

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


# ------------------------------------------------------------------ checks shared by cases

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


# ------------------------------------------------------------------ bad input

def bad_request(*args: str, names: list[str], app: bool = False, data: Callable[[Path], None] | None = None,
                env: dict | None = None) -> Callable[[Sandbox], Result]:
    """A case: `train.py ARGS hydra/launcher=kdgat_chain` (or the chain app) must be refused."""
    def case(box: Sandbox) -> Result:
        if data:
            data(box.data)
        return refused(box, *args, *(() if app else (LAUNCH,)), names=names, app=app, env=env)
    return case


def unusable_dataset(data: Path) -> None:
    """hcrl_sa laid out right, but no file holds one usable frame."""
    (data / "hcrl_sa" / "train_01_attack_free").mkdir(parents=True)
    (data / "hcrl_sa" / "test_01_flooding").mkdir(parents=True)
    (data / "hcrl_sa" / "train_01_attack_free" / "normal.csv").write_text("hello,world\nnot,a,can,frame\n" * 50)
    (data / "hcrl_sa" / "test_01_flooding" / "dos.csv").write_text(
        "timestamp,arbitration_id,data_field,attack\n" + "yesterday,XYZ,00112233,maybe\n" * 50)


def shell_values_in_a_dataset_name(box: Sandbox) -> Result:
    """Each spelling of a dataset name holding shell characters, spaces or a newline: one line, nothing run."""
    result = Result()
    said = []
    for value in ("x;touch PWNED1", "$(touch PWNED2)", "'a b `touch PWNED3`'", "a\nb", "'a\nb;touch PWNED4'"):
        one = refused(box, f"dataset={value}", LAUNCH, names=["dataset", "hcrl_sa|quote"])
        result.problems += [f"dataset={value!r}: {p}" for p in one.problems]
        said.append(one.did.split(": ", 1)[0])
    pwned = [str(p) for p in box.root.rglob("PWNED*")]
    result.check(not pwned, f"a value was executed: {pwned}")
    result.did = f"5 spellings refused ({', '.join(sorted(set(said)))}); " + \
        ("nothing executed" if not pwned else f"{len(pwned)} executed")
    return result


def gpus_zero_is_valid(box: Sandbox) -> Result:
    """The one boundary value that must pass: a CPU-only stage, previewed (nothing submitted)."""
    out = box.train("pipeline.stages.fusion.resources.gpus=0", LAUNCH, "hydra.launcher.dry_run=true")
    result = Result()
    result.check(out.returncode == 0, f"refused: {error_lines(out.stderr)[-3:]}")
    scripts = out.stdout.split("--- sbatch script for stage ")[1:]
    fusion = [s for s in scripts if s.startswith("fusion")]
    result.did = (f"dry run exit {out.returncode}; fusion's script "
                  f"{'has no --gres' if fusion and '--gres' not in fusion[0] else 'asks for a GPU or is missing'}")
    result.check(len(fusion) == 1 and "--gres" not in fusion[0], "the fusion script is missing or asks for a GPU")
    result.check(all("--gres=gpu:1" in s for s in scripts if not s.startswith("fusion")),
                 "the other stages lost their GPU")
    result.check(not box.submitted(), "a dry run submitted jobs")
    return result


def cluster_limit(override: str, bad: str, limit: str) -> Callable[[Sandbox], Result]:
    """A request no node or partition of the cluster can satisfy, on the chain's last stage, so that a chain
    checked only by sbatch would be half submitted before the refusal."""
    def case(box: Sandbox) -> Result:
        return refused(box, f"pipeline.stages.fusion.{override}", LAUNCH, names=["fusion", bad, limit])
    return case


def shell_values_in_names_and_paths(box: Sandbox) -> Result:
    """Shell metacharacters, spaces and newlines in a path, a job name and a value reach the jobs as data: the
    chain runs, nothing is executed, and kdgat's own scripts pass `sbatch --test-only`."""
    odd = box.work / "a dir; with $(touch PWNED1) & `touch PWNED2`"
    odd.mkdir()
    out = run_app(LAUNCH, f"out='{odd}'", f"hydra.sweep.dir='{odd}/sweep'",
                  "hydra.launcher.job_name='{stage};touch PWNED3'",
                  f"+evil='x\ntouch {box.root}/PWNED4 $(touch {box.root}/PWNED5)'", cwd=box.work, env=box.env)
    result = Result(did=f"chain app exit {out.returncode}")
    if not result.check(out.returncode == 0, f"submit failed: {error_lines(out.stderr)[-3:]}"):
        return result
    ids = list(job_ids(odd / "sweep").values())
    final = states(ids, deadline_s=120)
    result.check(set(final.values()) == {"COMPLETED"}, f"jobs did not complete: {final}")
    result.check((odd / "x-third.done").is_file(), "the last stage wrote nothing")
    # kdgat itself: a data folder, an artifacts path and a job name full of shell characters, previewed
    data = box.root / "data $(touch PWNED6);x"
    preview = box.train("pipeline=teacher", LAUNCH, "hydra.launcher.dry_run=true", f"paths.artifacts='{odd}/runs'",
                        "hydra.launcher.job_name='{stage}`touch PWNED7`'", env={"KDGAT_DATA": str(data)})
    verdicts = re.findall(r"sbatch --test-only: (\w+)", preview.stdout)
    result.check(preview.returncode == 0 and verdicts == ["ok"] * 3,
                 f"kdgat's dry run: exit {preview.returncode}, test-only verdicts {verdicts}")
    pwned = [str(p) for p in box.root.rglob("PWNED*")]
    result.check(not pwned, f"a value was executed: {pwned}")
    result.did = (f"chain {'/'.join(sorted(set(final.values())))}, 3 kdgat scripts {'/'.join(set(verdicts))}; "
                  + ("nothing executed" if not pwned else f"{len(pwned)} executed"))
    return result


# ------------------------------------------------------------------ faults on the cluster

def _finish(box: Sandbox, sweep: Path, deadline_s: float = 120) -> dict[str, str]:
    """{stage: final state} of every job the sweep submitted (chain 0), once they and the retry guards
    watching them have ended."""
    ids = {stage: job for (_, stage), job in job_ids(sweep).items() if job != "-"}
    final = states(list(ids.values()), deadline_s=deadline_s)
    states(guards(sweep), deadline_s=deadline_s)
    return {stage: final[job] for stage, job in ids.items()}


def _recover(box: Sandbox, result: Result, before: dict[str, str], *args: str) -> None:
    """The same chain again without the fault: finished stages are kept, the rest completes, nothing is lost."""
    again = box.app(*args)
    if not result.check(again.returncode == 0, f"resubmitting failed: {error_lines(again.stderr)[-3:]}"):
        return
    table = statuses(again.stdout)
    result.check(table.get("first") == "skipped (done)", f"resubmitted, first was not reused: {table}")
    final = _finish(box, box.sweep())
    result.check(final == {"second": "COMPLETED", "third": "COMPLETED"}, f"the resubmitted chain: {final}")
    gone = lost(before, checksums(box.work / "out", app_done))
    result.files_lost = len(gone)
    result.check(not gone, f"finished files lost or changed: {gone}")
    result.did += f"; again: first {table.get('first')}, " + ", ".join(f"{s} {v}" for s, v in final.items())


def in_every_step(box: Sandbox, code: str) -> dict:
    """An environment whose Python runs `code` (with os, signal and time imported) first thing in every job
    step, that is in every stage job of the chain app (sbatch passes the submitting environment on)."""
    hook = box.root / "step-hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text("import os, signal, time\nif 'SLURM_STEP_ID' in os.environ:\n"
                                           + "".join(f"    {line}\n" for line in code.splitlines()))
    return {"PYTHONPATH": os.pathsep.join(filter(None, (str(hook), os.environ.get("PYTHONPATH"))))}


def fault_in_a_stage(fault: str) -> Callable[[Sandbox], Result]:
    """Stage `second` of the chain app fails: it raises, is killed with SIGKILL (as the out-of-memory killer
    would), or a set-up line of its job fails. `first` must stay done, `third` must be cancelled, the user must
    learn which stage failed and why, and resubmitting must finish the chain without redoing `first`."""
    def case(box: Sandbox) -> Result:
        args, env = [], None
        if fault == "raise":
            args = ["fail=second"]
        elif fault == "sigkill":
            env = in_every_step(box, "if os.environ.get('SLURM_JOB_NAME') == 'second':\n"
                                     "    os.kill(os.getpid(), signal.SIGKILL)")
        elif fault == "setup":
            args = ["hydra.launcher.setup=['test \"$SLURM_JOB_NAME\" != second']"]
        out = box.app(*args, env=env)
        result = Result()
        if not result.check(out.returncode == 0, f"submitting failed: {error_lines(out.stderr)[-3:]}"):
            return result
        sweep = box.sweep()
        final = _finish(box, sweep)
        result.did = ", ".join(f"{s} {state}" for s, state in final.items())
        result.check(final == {"first": "COMPLETED", "second": "FAILED", "third": "CANCELLED"},
                     f"states: {final}")
        result.check(not (box.work / "out" / "x-second.done").exists(), "the failed stage left a marker")
        before = checksums(box.work / "out", app_done)
        result.check("x-first.done" in before, "the finished stage's file is missing")
        told, rows = status_rows(box, sweep)
        second = rows.get("second", "")
        result.check("FAILED" in second and "see " in second, f"status does not say second failed: {second!r}")
        result.check("cancelled because second" in rows.get("third", ""), f"status row of third: {rows.get('third')!r}")
        logs = box.kdgat("logs", str(sweep), "second").stdout
        if fault == "raise":
            result.check("stage second was asked to fail" in logs, "the log does not hold the exception")
        if fault == "setup":
            result.check('"$SLURM_JOB_NAME" != second' in logs,
                         f"the log does not name the set-up line that failed: {logs[-300:]!r}")
        if fault == "sigkill":
            result.check(re.search(r"signal 9|SIGKILL|killed", second, re.IGNORECASE) is not None,
                         f"status does not say second was killed: {second!r}")
        ending = re.search(r"\((exit \d+|killed by signal \d+)", second)
        result.did += f" (status: {ending.group(1) if ending else '?'})"
        _recover(box, result, before)
        return result
    return case


def _queue_state(job: str) -> str:
    """The controller's own view of a job (squeue: no accounting lag), "" once it has left the queue."""
    return squeue("-j", job, "-o", "%T").strip()


def daemon_restart(which: str) -> Callable[[Sandbox], Result]:
    """slurmctld restarted, or slurmd killed (SIGKILL) and restarted, while the chain's second stage runs, its
    first is finished and its third is queued: the chain completes, in order, and the finished stage is not lost."""
    def case(box: Sandbox) -> Result:
        out = box.app(env=in_every_step(box, "time.sleep(10)"))  # the stage itself runs, not only its job
        result = Result()
        if not result.check(out.returncode == 0, f"submitting failed: {error_lines(out.stderr)[-3:]}"):
            return result
        second = job_ids(box.sweep())[(0, "second")]
        first_done = box.work / "out" / "x-first.done"
        deadline = time.monotonic() + 120
        while not (first_done.is_file() and _queue_state(second) == "RUNNING") and time.monotonic() < deadline:
            time.sleep(0.5)
        if not result.check(first_done.is_file() and _queue_state(second) == "RUNNING",
                            f"first not done with second running after 120 s (second: {_queue_state(second)!r})"):
            return result
        time.sleep(2)  # into the stage's own step (srun), past the job's start
        before = checksums(box.work / "out", app_done)
        result.check(bool(before), "no finished file to guard: first's output is missing")
        restart = subprocess.run([str(LOCAL_SLURM), f"restart-{which}", "2"], capture_output=True, text=True,
                                 timeout=180)
        result.check(restart.returncode == 0, f"local-slurm.sh restart-{which}: {restart.stderr.strip()[-300:]}")
        final = _finish(box, box.sweep(), deadline_s=180)
        result.did = f"{which} restarted while second ran; " + ", ".join(f"{s} {state}" for s, state in final.items())
        result.check(set(final.values()) == {"COMPLETED"}, f"the chain did not complete: {final}")
        third = box.work / "out" / "x-third.done"
        result.check(third.is_file() and third.read_text().split() == ["x-first.done", "x-second.done"],
                     "third did not run after the other two")
        gone = lost(before, checksums(box.work / "out", app_done))
        result.files_lost = len(gone)
        result.check(not gone, f"finished files lost or changed: {gone}")
        return result
    return case


def sacct_unavailable(box: Sandbox) -> Result:
    """No sacct on PATH: submitting works, and `kdgat status` still reports every stage (from squeue/scontrol)."""
    bare = box.root / "bin-without-sacct"  # everything of SLURM's folder (srun, squeue, ...) but sacct
    bare.mkdir()
    slurm_bin = Path(shutil.which("squeue") or "/usr/bin/squeue").parent
    for tool in slurm_bin.iterdir():
        if tool.name not in ("sacct", "sbatch"):
            (bare / tool.name).symlink_to(tool)
    (bare / "sbatch").symlink_to(box.spy / "sbatch")  # cluster cases run only where the spy exists
    env = {"PATH": os.pathsep.join([str(Path(sys.executable).parent), str(bare)])}
    out = box.app("hydra.launcher.setup=['sleep 3']", env=env)
    result = Result()
    if not result.check(out.returncode == 0, f"submitting without sacct failed: {error_lines(out.stderr)[-3:]}"):
        return result
    sweep = box.sweep()
    told, rows = status_rows(box, sweep, env=env)
    result.check(told.returncode == 0 and set(rows) == {"first", "second", "third"},
                 f"status while queued: exit {told.returncode}, {error_lines(told.stderr)[-2:]}")
    final = _finish(box, sweep)
    told, rows = status_rows(box, sweep, env=env)
    result.check(told.returncode == 0, f"status after: exit {told.returncode}, {error_lines(told.stderr)[-2:]}")
    result.check(all("COMPLETED" in rows.get(s, "") for s in ("first", "second", "third")),
                 f"status without sacct: {rows}")
    said = "/".join(sorted({row.split()[3] for row in rows.values()}))
    result.did = f"submitted and reported without sacct; status says {said}"
    result.check(set(final.values()) == {"COMPLETED"}, f"states: {final}")
    return result


def identical_submissions(box: Sandbox) -> Result:
    """Two identical submissions at the same moment (held, so nothing trains): each stage is submitted once and
    the other submission attaches to it; each has its own sweep directory and manifest."""
    made = box.kdgat("synth", "--like", "synthetic", "--out", str(box.data / "synthetic"), "--frames", "20000",
                     "--quiet")  # so that the stages' completion markers are known at submit
    result = Result()
    if not result.check(made.returncode == 0, f"kdgat synth failed: {made.stderr[-300:]}"):
        return result
    command = [sys.executable, str(ROOT / "train.py"), "pipeline=teacher", *TINY, LAUNCH,
               "+hydra.launcher.additional_parameters.hold=true"]
    env = {**os.environ, **box.env}
    procs = [subprocess.Popen(command, cwd=box.work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    result.check(all(rc == 0 for _, _, rc in outs), f"exit statuses {[rc for *_, rc in outs]}: "
                                                    f"{[error_lines(err)[-2:] for _, err, _ in outs]}")
    sweeps = sorted(box.work.glob("multirun/*/*/manifest.json"))
    result.check(len(sweeps) == 2, f"{len(sweeps)} manifests for two submissions (one overwrote the other?)")
    per_stage: dict[str, set[str]] = {}
    for manifest in sweeps:
        for (_, stage), job in job_ids(manifest.parent).items():
            per_stage.setdefault(stage, set()).add(job)
    twice = {stage: sorted(jobs) for stage, jobs in per_stage.items() if len(jobs) > 1}
    result.check(not twice, f"stages submitted twice: {twice}")
    guarding = {job for manifest in sweeps for job in guards(manifest.parent)}
    stage_jobs = [job for job in box.submitted() if job not in guarding]
    result.check(len(stage_jobs) == 3, f"{len(stage_jobs)} jobs submitted for 3 stages")
    result.check(len(guarding) == 1, f"{len(guarding)} retry guards for one chain submitted once")
    result.did = f"{len(sweeps)} sweeps, {len(stage_jobs)} jobs for 3 stages and {len(guarding)} guard"
    cancel(box.submitted())
    return result


# ------------------------------------------------------------------ damaged files (no cluster)

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


def out_of_memory(extra: tuple, hold_mb: int, expect_retried: bool) -> Callable[[Sandbox], Result]:
    """The VGAE of a tiny curriculum_only chain holds `hold_mb` beyond what its 2G (or less) allows and is killed
    by the cluster's memory accounting. Retried with more memory, it completes with the stage after it, the
    attempts visible in sacct and status; or, when no retry can give it enough, the chain stops, status says
    why, and nothing is left queued."""
    def case(box: Sandbox) -> Result:
        out = box.train("pipeline=curriculum_only", *TINY, f"train.test_hold_mem_mb={hold_mb}", "resources.cpus=2",
                        "resources.gpus=0", *extra, LAUNCH, timeout=300)
        result = Result()
        if not result.check(out.returncode == 0, f"submitting failed: {error_lines(out.stderr)[-3:]}"):
            return result
        sweep = box.sweep()
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:  # until every guard has ended without making another attempt
            known = guards(sweep)
            states(known, deadline_s=600)
            if guards(sweep) == known:
                break
        told, rows = status_rows(box, sweep)
        vgae = rows.get("autoencoder", "")
        tried = read_attempts(sweep / "0")
        history = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "JobName,State", "--name",
                                  "autoencoder_synthetic", "-j", ",".join(a.jobs["autoencoder"] for a in tried)],
                                 capture_output=True, text=True).stdout.split()
        if expect_retried:
            final = {line.split()[1]: line.split()[3] for line in told.stdout.splitlines()[2:] if len(line.split()) > 3}
            result.did = f"attempts {len(tried)}; " + ", ".join(f"{s} {v}" for s, v in final.items())
            result.check(final == {"autoencoder": "COMPLETED", "curriculum": "COMPLETED"}, f"status: {final}")
            result.check(re.search(r"attempt 2: stage autoencoder: 4G after OUT_OF_MEMORY at 2G", vgae) is not None,
                         f"status does not tell the attempts: {vgae!r}")
            result.check(history[:1] == ["autoencoder_synthetic|FAILED"] and history[-1:] == [
                "autoencoder_synthetic|COMPLETED"], f"sacct's attempts of the VGAE: {history}")
        else:
            result.did = f"attempts {len(tried)}; status: " + (vgae.split("not retried: ")[-1][:70] if vgae else "?")
            result.check(len(tried) == 2 and "no oom retry left" in vgae, f"status of the VGAE: {vgae!r}")
        return result
    return case


def out_of_time(box: Sandbox) -> Result:
    """A stage out of time on its last allowed run (max_num_timeout=0: its first) is submitted again with 1.5x
    its walltime (4.5 min, rounded up to 5) by the chain's guard, and resumes from the checkpoint of its last
    finished epoch. (The job is signalled 90 s before its end: 3 minutes leave it 90 s to start and finish an
    epoch on a busy machine.)"""
    out = box.train("pipeline=custom", "pipeline.presets=[autoencoder]", "dataset.synthetic.frames=20000",
                    "train.max_epochs=5", "train.slow_epoch_s=20", "progress=false", "resources.walltime='3'",
                    "resources.cpus=2", "resources.gpus=0", "hydra.launcher.max_num_timeout=0",
                    "hydra.launcher.signal_delay_s=90", LAUNCH, timeout=120)
    result = Result()
    if not result.check(out.returncode == 0, f"submitting failed: {error_lines(out.stderr)[-3:]}"):
        return result
    sweep = box.sweep()
    first = job_ids(sweep)[(0, "autoencoder")]
    ended = states([first], deadline_s=300)
    deadline = time.monotonic() + 600
    tried = []
    while time.monotonic() < deadline and len(tried) < 2:
        time.sleep(5)
        tried = read_attempts(sweep / "0")
    if not result.check(len(tried) == 2, f"no retry after {ended}: {[a.outcome for a in tried]}"):
        return result
    second = tried[1].jobs["autoencoder"]
    final = states([second], deadline_s=600)[second]
    states([tried[1].guard], deadline_s=120)
    log = (box.work / "experimentruns" / "slurm_runs" / "synthetic" / "autoencoder.log").read_text()
    resumed = re.findall(r"resuming after epoch (\d+) of 5", log)
    result.did = f"first {ended[first]}; retried with {tried[1].requests['autoencoder']['walltime']}, {final}; " \
                 f"resumed after epoch {', '.join(resumed) or '-'}"
    result.check(ended[first] == "FAILED" and final == "COMPLETED", f"states: {ended[first]}, then {final}")
    result.check(tried[1].requests["autoencoder"]["walltime"] == "00:05:00", f"request: {tried[1].requests}")
    result.check(bool(resumed), "the retried stage did not resume from its checkpoint")
    return result


# ------------------------------------------------------------------ the catalogue

WALLTIME_FORMS = "HH:MM:SS"  # named by every walltime error, with MM and D-HH:MM:SS


def refuse(name: str, *args: str, names: list[str], needs: str = "nothing", **kw) -> Case:
    """A bad-input case: `train.py ARGS` must be refused with one line matching each of `names`."""
    return Case(name, "bad input", needs, bad_request(*args, names=names, **kw))


def too_big(name: str, override: str, bad: str, limit: str) -> Case:
    return Case(name, "bad input", "cluster", cluster_limit(override, bad, limit))


CASES: list[Case] = [
    refuse("unknown pipeline", "pipeline=nope", names=["'nope'", "teacher"]),
    refuse("unknown dataset", "dataset=nope", names=["'nope'", "hcrl_sa"]),
    refuse("unknown preset", "pipeline=custom", "pipeline.presets=[autoencoder,nope]", names=["'nope'", "gat_normal"]),
    refuse("empty custom pipeline", "pipeline=custom", "pipeline.presets=[]", names=["presets", "autoencoder"]),
    refuse("cyclic custom pipeline", "pipeline=custom", "pipeline.presets=[autoencoder,curriculum]",
           "pipeline.stages.autoencoder.needs=[curriculum]", names=["cycle", "autoencoder -> curriculum"]),
    refuse("walltime 25:61:00", "resources.walltime=25:61:00", names=["25:61:00", WALLTIME_FORMS]),
    refuse("walltime abc", "resources.walltime=abc", names=["'abc'", WALLTIME_FORMS]),
    refuse("walltime -1", "resources.walltime=-1", names=["=-1", WALLTIME_FORMS]),
    refuse("memory lots", "resources.mem=lots", names=["'lots'", "96G"]),
    refuse("memory 0G", "resources.mem=0G", names=["'0G'", "at least"]),
    *(refuse(f"cpus {n}", f"resources.cpus={n}", names=[f"cpus={re.escape(n)}", ">= 1"]) for n in ("0", "-1", "2.5")),
    *(refuse(f"gpus {n}", f"resources.gpus={n}", names=[f"gpus={re.escape(n)}", ">= 0"]) for n in ("-1", "2.5")),
    Case("gpus 0 (valid)", "bad input", "nothing", gpus_zero_is_valid),
    too_big("more GPUs than any node", "resources.gpus=3", r"\b3\b", r"\b2\b"),
    too_big("more memory than any node", "resources.mem=400G", r"400G|409600", r"192G|196608"),
    too_big("more CPUs than any node", "resources.cpus=64", r"\b64\b", r"\b48\b"),
    too_big("unknown partition", "resources.partition=nosuch", "nosuch", r"\bmain\b"),
    too_big("walltime over the partition limit", "resources.walltime=8-00:00:00", r"8-00:00:00",
            r"7-00:00:00|7 days|10080"),
    refuse("missing dataset folder", "dataset=hcrl_sa", names=["hcrl_sa", "not found", "kdgat synth"]),
    refuse("dataset without a usable frame", "dataset=hcrl_sa", names=[r"normal\.csv|dos\.csv", "format|frame"],
           data=unusable_dataset),
    refuse("student pipeline without a teacher", "pipeline=student", names=["distillation", "pipeline=teacher"]),
    Case("shell characters in a dataset name", "bad input", "nothing", shell_values_in_a_dataset_name),
    Case("shell characters in paths and job names", "bad input", "cluster", shell_values_in_names_and_paths),
    Case("stage raises", "fault", "cluster", fault_in_a_stage("raise")),
    Case("stage killed with SIGKILL", "fault", "cluster", fault_in_a_stage("sigkill")),
    Case("failing setup line", "fault", "cluster", fault_in_a_stage("setup")),
    Case("slurmctld restarted mid-chain", "fault", "cluster", daemon_restart("ctld")),
    Case("slurmd killed and restarted mid-stage", "fault", "cluster", daemon_restart("slurmd")),
    Case("sacct unavailable", "fault", "cluster", sacct_unavailable),
    Case("two identical submissions at once", "fault", "cluster", identical_submissions),
    Case("stage killed for memory", "fault", "cluster",
         out_of_memory(("pipeline.stages.autoencoder.resources.mem=2G", "hydra.launcher.retry.mem_factor=2"),
                       2048, expect_retried=True)),
    Case("memory beyond every retry", "fault", "cluster",
         out_of_memory(("pipeline.stages.autoencoder.resources.mem=1G", "hydra.launcher.retry.oom=1"),
                       3072, expect_retried=False)),
    Case("out of time after its requeues", "fault", "cluster", out_of_time),
    Case("damaged checkpoint and data cache", "fault", "time", damaged_checkpoint_and_cache),
    Case("damaged model of a finished stage", "fault", "time", damaged_model),
]
