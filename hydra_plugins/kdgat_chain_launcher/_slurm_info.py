"""What SLURM says: the state of jobs (sacct when accounting is on, squeue and scontrol when it is not),
what is still queued, and what the cluster allows (sinfo, scontrol show config).

`scontrol` forgets a job MinJobAge after it ends, so finished jobs are asked of
sacct; without sacct, a job nobody knows any more is reported as GONE rather
than guessed at. Nothing here submits or cancels.
"""

import re
import shutil
import subprocess
from typing import Dict, List, Optional, Sequence, Set

from hydra_plugins.kdgat_chain_launcher._backend import JobInfo
from hydra_plugins.kdgat_chain_launcher._plan import Partition
from hydra_plugins.kdgat_chain_launcher._units import slurm_megabytes, slurm_seconds

LIVE_STATES = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
               "RESIZING", "SUSPENDED"}
SACCT_FIELDS = "JobID,State,ExitCode,Elapsed,Timelimit,ReqMem,MaxRSS,Reason"
TOOLS = ("sacct", "squeue", "scontrol")


class SlurmToolsMissing(RuntimeError):
    """None of SLURM's query commands is on this machine's PATH."""


def run(*cmd: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """A SLURM command's result; a command that is missing or hangs is a failed result, never an exception."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        return subprocess.CompletedProcess(cmd, 127, "", f"{cmd[0]}: not found")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(cmd, 124, "", f"{cmd[0]}: no answer in {timeout:g} s")


def live_jobs() -> Set[str]:
    """Ids of the jobs SLURM still has queued or running (a finished or forgotten id is never depended on)."""
    out = run("squeue", "-h", "-r", "-o", "%i %T")  # -r: array tasks one by one
    return {i for i, state in (line.split() for line in out.stdout.splitlines() if line.strip())
            if state in LIVE_STATES}


def partitions() -> List[Partition]:
    """The most one job can get in each partition (`sinfo`); [] when sinfo cannot be asked."""
    return parse_sinfo(run("sinfo", "-h", "-o", "%P|%l|%c|%m|%G", timeout=30).stdout)


def parse_sinfo(text: str) -> List[Partition]:
    """Partitions from `sinfo -h -o '%P|%l|%c|%m|%G'` (one line per partition and kind of node)."""
    found: Dict[str, Partition] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 5:
            continue
        name, limit, cpus, mem, gres = parts
        default = name.endswith("*")
        name = name.rstrip("*")
        gpus = sum(int(n) for n in re.findall(r"gpu(?::[^:,(]+)?:(\d+)", gres))
        new = Partition(name, default, slurm_seconds(limit), int(cpus.rstrip("+") or 0),
                        int(slurm_megabytes(mem) or 0), gpus)
        old = found.get(name)
        if old:  # nodes of several kinds: the largest of each
            new = Partition(name, old.default or default, old.max_time_s if old.max_time_s is not None else
                            new.max_time_s, max(old.cpus, new.cpus), max(old.mem_mb, new.mem_mb),
                            max(old.gpus, new.gpus))
        found[name] = new
    return list(found.values())


def max_array_size() -> int:
    """The cluster's MaxArraySize (an array's task indices stay below it); SLURM's default when unknown."""
    for line in run("scontrol", "show", "config", timeout=30).stdout.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "MaxArraySize" and value.strip().isdigit():
            return int(value.strip())
    return 1001


def job_states(ids: Sequence[str]) -> Dict[str, JobInfo]:
    """The state of each job id, from sacct if it answers, else from squeue and scontrol."""
    if not ids:
        return {}
    if not any(shutil.which(tool) for tool in TOOLS):
        raise SlurmToolsMissing(f"none of SLURM's commands ({', '.join(TOOLS)}) is on this machine's PATH: ask on "
                                "a machine of the cluster that ran the jobs (a login node)")
    found = _from_sacct(ids)
    if found is None:
        found = _from_scontrol(ids)
    else:  # sacct has no reason for a waiting job: squeue does
        pending = [i for i in ids if i in found and found[i].state == "PENDING"]
        for i, reason in _squeue_reasons(pending).items():
            if i in found:  # squeue may also list other tasks of an array asked for by its own id
                found[i].reason = reason
        # sacct lists a pending array as one record (123_[0-5]), not task by task: ask the queue
        found.update(_from_scontrol([i for i in ids if i not in found]))
    infos = {i: found.get(i, JobInfo(i, "GONE")) for i in ids}
    for info in infos.values():
        if info.reason == "None":  # SLURM's word for no reason
            info.reason = ""
    return infos


def _from_sacct(ids: Sequence[str]) -> Optional[Dict[str, JobInfo]]:
    arrays = sorted({i.split("_")[0] for i in ids if "_" in i})  # see below: an array's own record
    out = run("sacct", "-n", "-P", "-o", SACCT_FIELDS, "-j", ",".join(list(ids) + arrays))
    if out.returncode != 0:
        return None
    found: Dict[str, JobInfo] = {}
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
            used = slurm_megabytes(rss, bare_unit="")
            if used is not None:
                found[base].max_rss_mb = max(found[base].max_rss_mb or 0.0, used)
            signal = code.partition(":")[2]
            if signal.isdigit() and int(signal):
                found[base].signal = int(signal)
    for job in ids:  # tasks of an array cancelled while pending leave only the array's record (123)
        array = job.split("_")[0]
        if job not in found and array != job and array in found:
            a = found[array]
            found[job] = JobInfo(job, a.state, a.exit_code, a.elapsed, a.timelimit, a.req_mem, None, a.reason)
    return found


def array_tasks(job: str) -> List[str]:
    """`123_[0-2,5%2]` -> [123_0, 123_1, 123_2, 123_5]; any other id -> []."""
    m = re.fullmatch(r"(\d+)_\[([\d,\-]+)(?:%\d+)?\]", job)
    if not m:
        return []
    tasks = []
    for part in m[2].split(","):
        lo, _, hi = part.partition("-")
        tasks += [f"{m[1]}_{i}" for i in range(int(lo), int(hi or lo) + 1)]
    return tasks


def _squeue_reasons(ids: Sequence[str]) -> Dict[str, str]:
    if not ids:
        return {}
    out = run("squeue", "-h", "-r", "-o", "%i|%r", "-j", ",".join(ids))  # -r: array tasks one by one
    return dict(line.split("|", 1) for line in out.stdout.splitlines() if "|" in line)


def _from_scontrol(ids: Sequence[str]) -> Dict[str, JobInfo]:
    found = {}
    for job in ids:
        out = run("scontrol", "show", "job", "-o", job)
        if out.returncode != 0:
            continue
        info = dict(re.findall(r"(\w+)=(\S*)", out.stdout))
        found[job] = JobInfo(job, info.get("JobState", "GONE"), info.get("ExitCode", ""), info.get("RunTime", ""),
                             info.get("TimeLimit", ""), info.get("MinMemoryNode", ""), None, info.get("Reason", ""))
    return found
