"""The "fault" cases of the reliability catalogue (bench/reliability_cases.py) that need a SLURM cluster: a stage
that fails, daemons restarted mid-chain, no sacct, identical submissions at once, a stage out of memory or out
of time. Each must lose no finished work, leave nothing queued and tell the user what happened."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from cluster import ROOT, cancel, guards, job_ids, squeue, states, statuses
from reliability_sandbox import LAUNCH, Result, Sandbox, app_done, checksums, error_lines, lost, status_rows

from hydra_plugins.kdgat_chain_launcher import read_attempts


LOCAL_SLURM = ROOT / "scripts" / "local-slurm.sh"
TINY = ("dataset.synthetic.frames=20000", "train.max_epochs=1", "progress=false")  # a stage in seconds


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
