"""The SLURM commands the launcher runs besides submitit's sbatch: what is queued, what the cluster
allows, whether a job could ever run, and cancelling. No Hydra and no app code here."""

import shutil
import subprocess
from typing import List

LIVE_STATES = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
               "RESIZING", "SUSPENDED"}


def live_jobs() -> set:
    """Ids of the jobs SLURM still has queued or running (a finished or forgotten id is never depended on)."""
    out = subprocess.run(["squeue", "-h", "-r", "-o", "%i %T"], capture_output=True, text=True)  # -r: task by task
    return {i for i, state in (line.split() for line in out.stdout.splitlines() if line.strip())
            if state in LIVE_STATES}


def output(cmd: List[str]) -> str:
    """A SLURM command's stdout, or "" when it cannot be run."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def max_array_size() -> int:
    """The cluster's MaxArraySize (an array's task indices stay below it); SLURM's default when unknown."""
    for line in output(["scontrol", "show", "config"]).splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "MaxArraySize" and value.strip().isdigit():
            return int(value.strip())
    return 1001


def test_only(scripts: List[str]) -> List[str]:
    """SLURM's own verdict on whether each job could ever run (partition limits, QOS), without
    submitting it; the questions go out together, not one after the other."""
    if shutil.which("sbatch") is None:
        return ["not checked (no sbatch here)"] * len(scripts)
    procs = []
    for script in scripts:
        lines = [line for line in script.splitlines()
                 if not line.startswith(("#SBATCH --dependency", "#SBATCH --kill-on-invalid-dep"))]
        proc = subprocess.Popen(["sbatch", "--test-only"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        proc.stdin.write("\n".join(lines))  # a script is far below a pipe's buffer: this never blocks
        proc.stdin.close()
        procs.append(proc)
    verdicts = []
    for proc in procs:
        out, err = proc.stdout.read(), proc.stderr.read()  # a line or two each
        proc.wait()
        last = (err or out).strip().splitlines()
        verdicts.append("ok" if proc.returncode == 0 else "REFUSED: " + (last[-1] if last else "?"))
    return verdicts


def reason(err: Exception) -> str:
    text = str(err).strip().splitlines()
    errors = [line for line in text if "error" in line.lower()]
    return (errors[-1] if errors else text[-1] if text else repr(err)).strip()


def cancel(job_ids: List[str]) -> str:
    """What was done, in words. scancel exits 0 for jobs that already ended, so non-zero means it failed."""
    if not job_ids:
        return "nothing was queued"
    try:
        done = subprocess.run(["scancel", *job_ids], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"scancel failed ({err}), so these may still be queued: {' '.join(job_ids)}"
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()
        return f"scancel failed ({last[-1] if last else f'exit {done.returncode}'}), so these may still be queued: " \
               f"{' '.join(job_ids)}"
    return f"cancelled what this submission had queued: {' '.join(job_ids)}"
