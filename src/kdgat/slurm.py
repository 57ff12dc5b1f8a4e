"""What SLURM says about jobs: sacct when accounting is on, squeue and scontrol when it is not.

The only module of kdgat that runs SLURM's commands (the launcher plugin
submits on its own). `scontrol` forgets a job MinJobAge after it ends, so
finished jobs are asked of sacct; without sacct, a job nobody knows any
more is reported as "gone" rather than guessed at.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from kdgat.errors import KdgatError

FIELDS = "JobID,State,ExitCode,Elapsed,Timelimit,ReqMem,MaxRSS,Reason"


@dataclass
class JobInfo:
    job_id: str
    state: str  # PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ... or GONE
    exit_code: str = ""
    elapsed: str = ""
    timelimit: str = ""
    req_mem: str = ""
    max_rss_mb: float | None = None
    reason: str = ""
    signal: int | None = None  # the signal that ended one of its steps (9: SIGKILL, what the OOM killer sends)


def _run(*cmd: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        return subprocess.CompletedProcess(cmd, 127, "", f"{cmd[0]}: not found")


def _mb(text: str) -> float | None:
    m = re.fullmatch(r"([\d.]+)([KMGT]?)", text.strip())
    if not m:
        return None
    return float(m[1]) * {"": 1 / 1024 / 1024, "K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}[m[2]]


def jobs(ids: list[str]) -> dict[str, JobInfo]:
    """The state of each job id, from sacct if it answers, else from squeue and scontrol."""
    if not ids:
        return {}
    found = _from_sacct(ids)
    if found is None:
        found = _from_squeue_scontrol(ids)
    else:  # sacct has no reason for a waiting job: squeue does
        pending = [i for i in ids if i in found and found[i].state == "PENDING"]
        for i, reason in _squeue_reasons(pending).items():
            if i in found:  # squeue may also list other tasks of an array asked for by its own id
                found[i].reason = reason
        # sacct lists a pending array as one record (123_[0-5]), not task by task: ask the queue
        unknown = [i for i in ids if i not in found]
        found.update(_from_squeue_scontrol(unknown))
    infos = {i: found.get(i, JobInfo(i, "GONE")) for i in ids}
    for info in infos.values():
        if info.reason == "None":  # SLURM's word for no reason
            info.reason = ""
    return infos


def _from_sacct(ids: list[str]) -> dict[str, JobInfo] | None:
    arrays = sorted({i.split("_")[0] for i in ids if "_" in i})  # see below: an array's own record
    out = _run("sacct", "-n", "-P", "-o", FIELDS, "-j", ",".join(list(ids) + arrays))
    if out.returncode != 0:
        return None
    found: dict[str, JobInfo] = {}
    for line in out.stdout.splitlines():
        parts = line.split("|")
        if len(parts) != 8:
            continue
        job, state, code, elapsed, limit, req_mem, rss, reason = parts
        base = job.split(".")[0]
        for task in array_tasks(job):  # 123_[0-5%2]: the array's tasks that have no record of their own yet
            found.setdefault(task, JobInfo(task, state.split()[0], code, elapsed, limit, req_mem, None, reason))
        if job == base:
            found[job] = JobInfo(job, state.split()[0], code, elapsed, limit, req_mem, None, reason)
        elif base in found:  # a step: the job's peak memory is its largest step's; a step may die of a signal
            if _mb(rss) is not None:
                found[base].max_rss_mb = max(found[base].max_rss_mb or 0.0, _mb(rss))
            signal = code.partition(":")[2]
            if signal.isdigit() and int(signal):
                found[base].signal = int(signal)
    for job in ids:  # tasks of an array cancelled while pending leave only the array's record (123)
        array = job.split("_")[0]
        if job not in found and array != job and array in found:
            found[job] = JobInfo(job, found[array].state, found[array].exit_code, found[array].elapsed,
                                 found[array].timelimit, found[array].req_mem, None, found[array].reason)
    return found


def array_tasks(job: str) -> list[str]:
    """`123_[0-2,5%2]` -> [123_0, 123_1, 123_2, 123_5]; any other id -> []."""
    m = re.fullmatch(r"(\d+)_\[([\d,\-]+)(?:%\d+)?\]", job)
    if not m:
        return []
    tasks = []
    for part in m[2].split(","):
        lo, _, hi = part.partition("-")
        tasks += [f"{m[1]}_{i}" for i in range(int(lo), int(hi or lo) + 1)]
    return tasks


def _squeue_reasons(ids: list[str]) -> dict[str, str]:
    if not ids:
        return {}
    out = _run("squeue", "-h", "-r", "-o", "%i|%r", "-j", ",".join(ids))  # -r: array tasks one by one
    return dict(line.split("|", 1) for line in out.stdout.splitlines() if "|" in line)


def _from_squeue_scontrol(ids: list[str]) -> dict[str, JobInfo]:
    found = {}
    for job in ids:
        out = _run("scontrol", "show", "job", "-o", job)
        if out.returncode != 0:
            continue
        info = dict(re.findall(r"(\w+)=(\S*)", out.stdout))
        found[job] = JobInfo(job, info.get("JobState", "GONE"), info.get("ExitCode", ""), info.get("RunTime", ""),
                             info.get("TimeLimit", ""), info.get("MinMemoryNode", ""), None, info.get("Reason", ""))
    return found


def cancel(ids: list[str]) -> None:
    """scancel exits 0 for jobs that already ended, so a non-zero exit means nothing may have been cancelled."""
    done = _run("scancel", *ids) if ids else None
    if done is not None and done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or [f"exit {done.returncode}"]
        raise KdgatError(f"scancel failed, jobs may still be queued: {lines[-1]}")
