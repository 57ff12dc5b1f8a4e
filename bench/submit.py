"""How fast kdgat_chain queues a sweep, beside the floor and beside hydra-submitit-launcher.

Needs a running SLURM cluster (scripts/local-slurm.sh start). Every job is
submitted held (`--hold`) and cancelled right after, so nothing runs.

    .venv/bin/python bench/submit.py [--repeat 3]

Prints, best of the repeats:
- kdgat_chain: the teacher pipeline on all six real datasets (18 chained
  jobs; the data present as small synthetic copies), from the command's start
  until it returns with every job queued, as job arrays (the default) and one
  job per stage (`hydra.launcher.array=false`); and the same for a 24-chain
  sweep (6 datasets x 4 seeds = 72 jobs); with the number of sbatch calls
  each made (counted by a wrapper in front of sbatch; `--test-only` checks included);
- the floor: the same 18 chained `sbatch --parsable` calls from a shell loop;
- hydra-submitit-launcher queueing a 6-job sweep of a minimal app, from the
  command's start until its job array (all 6 jobs) is in squeue (it then waits for the jobs,
  so it is stopped there); and the same for kdgat's own app over the six datasets (one job
  each): Hydra composes every job's config before any launcher runs, so this row is the
  time a launcher cannot go below with kdgat's config;
- `--cfg job --resolve` and a dry run of kdgat, and `--cfg job` of a minimal app.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cluster import APP, ROOT, cancel, synth

PY = sys.executable
DATASETS = ["hcrl_sa", "hcrl_ch", "set_01", "set_02", "set_03", "set_04"]


def timed(cmd, **kw) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    return time.perf_counter() - t0, out



SBATCH_CALLS: dict = {}  # row label -> sbatch calls of its last run


def counting_sbatch(work: Path) -> dict:
    """An environment whose `sbatch` is a wrapper that counts its calls in <work>/sbatch-calls."""
    shim = work / "bin" / "sbatch"
    shim.parent.mkdir(exist_ok=True)
    shim.write_text(f"#!/bin/sh\necho x >> {work}/sbatch-calls\nexec {shutil.which('sbatch')} \"$@\"\n")
    shim.chmod(0o755)
    return {"PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}"}


def kdgat_sweep(work: Path, env: dict, label: str, jobs: int, *extra: str) -> float:
    sweep = work / f"sweep-{time.monotonic_ns()}"
    cmd = [PY, str(ROOT / "train.py"), "-m", "pipeline=teacher", f"dataset={','.join(DATASETS)}",
           "hydra/launcher=kdgat_chain", f"hydra.sweep.dir={sweep}", "+hydra.launcher.additional_parameters.hold=true",
           *extra]
    calls = work / "sbatch-calls"
    calls.unlink(missing_ok=True)
    seconds, out = timed(cmd, cwd=work, env={**env, **counting_sbatch(work)})
    SBATCH_CALLS[label] = len(calls.read_text().split()) if calls.exists() else 0
    ids = re.findall(r"scancel ([\d ]+)", out.stdout)
    ids = ids[-1].split() if ids else []
    cancel(ids)
    queued = re.search(r"(\d+) jobs submitted", out.stdout)
    if out.returncode != 0 or not queued or int(queued[1]) != jobs:
        raise SystemExit(f"kdgat_chain sweep failed ({queued and queued[1]} jobs):\n{out.stderr[-2000:]}")
    return seconds


def shell_floor(work: Path) -> float:
    script = """
ids=()
for d in 1 2 3 4 5 6; do
  a=$(sbatch --parsable --hold -o /dev/null --wrap true)
  b=$(sbatch --parsable --hold -o /dev/null --dependency=afterok:$a --kill-on-invalid-dep=yes --wrap true)
  c=$(sbatch --parsable --hold -o /dev/null --dependency=afterok:$a:$b --kill-on-invalid-dep=yes --wrap true)
  ids+=($a $b $c)
done
echo "${ids[@]}"
"""
    seconds, out = timed(["bash", "-c", script], cwd=work)
    cancel(out.stdout.split())
    return seconds


def submitit_sweep(work: Path, env: dict | None = None, app: tuple = ()) -> float:
    name = f"benchsubmitit{time.monotonic_ns()}"
    script, *overrides = app or (str(APP), "tag=a,b,c,d,e,f", f"out={work}")
    cmd = [PY, script, "-m", *overrides, "hydra/launcher=submitit_slurm",
           f"hydra.launcher.name={name}", f"hydra.sweep.dir={work}/submitit-{time.monotonic_ns()}",
           "+hydra.launcher.additional_parameters.hold=true", "hydra.launcher.timeout_min=5"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    ids: list[str] = []
    try:
        while time.perf_counter() - t0 < 60:
            ids = subprocess.run(["squeue", "-h", "-t", "PD", "-n", name, "-o", "%i"], capture_output=True,
                                 text=True).stdout.split()
            if ids:  # it submits the 6 jobs as one array, so one line means all six are queued
                break
            time.sleep(0.005)
        seconds = time.perf_counter() - t0
    finally:
        proc.kill()
        proc.wait()
        subprocess.run(["scancel", "-n", name], capture_output=True)
    if not ids:
        raise SystemExit(f"hydra-submitit-launcher queued nothing within 60 s: {' '.join(cmd)}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kdgat-bench-") as tmp:
        work = Path(tmp)
        for name in DATASETS:
            synth(work / "data" / name, like=name)
        env = {**os.environ, "KDGAT_DATA": str(work / "data")}
        six, arrays_off = "kdgat_chain, 6 datasets x teacher = 18 jobs queued", "hydra.launcher.array=false"
        many = "kdgat_chain, 6 datasets x 4 seeds x teacher = 72 jobs queued"
        rows = {
            f"{six}, as arrays": lambda: kdgat_sweep(work, env, f"{six}, as arrays", 18),
            f"{six}, one job per stage": lambda: kdgat_sweep(work, env, f"{six}, one job per stage", 18, arrays_off),
            f"{many}, as arrays": lambda: kdgat_sweep(work, env, f"{many}, as arrays", 72, "seed=0,1,2,3"),
            f"{many}, one job per stage": lambda: kdgat_sweep(work, env, f"{many}, one job per stage", 72,
                                                              "seed=0,1,2,3", arrays_off),
            "floor: the same 18 chained sbatch calls from a shell loop": lambda: shell_floor(work),
            "hydra-submitit-launcher, 6-job sweep of a minimal app, queued": lambda: submitit_sweep(work),
            "hydra-submitit-launcher, kdgat's own app, 6 datasets x 1 job, queued": lambda: submitit_sweep(
                work, env, (str(ROOT / "train.py"), "pipeline=teacher", "stage=autoencoder",
                            f"dataset={','.join(DATASETS)}")),
            "kdgat --cfg job --resolve (pipeline=teacher dataset=hcrl_sa)": lambda: timed(
                [PY, str(ROOT / "train.py"), "pipeline=teacher", "dataset=hcrl_sa", "--cfg", "job", "--resolve"],
                cwd=work, env=env)[0],
            "kdgat dry run (pipeline=teacher dataset=hcrl_sa, with sbatch --test-only)": lambda: timed(
                [PY, str(ROOT / "train.py"), "pipeline=teacher", "dataset=hcrl_sa", "hydra/launcher=kdgat_chain",
                 "hydra.launcher.dry_run=true", f"hydra.sweep.dir={work}/dry-{time.monotonic_ns()}"],
                cwd=work, env=env)[0],
            "minimal Hydra app --cfg job": lambda: timed([PY, str(APP), "out=x", "--cfg", "job"], cwd=work)[0],
        }
        width = max(map(len, rows))
        for label, fn in rows.items():
            times = [fn() for _ in range(args.repeat)]
            calls = f"   {SBATCH_CALLS[label]} sbatch calls" if label in SBATCH_CALLS else ""
            print(f"{label.ljust(width)}  best {min(times):6.3f} s   (all: {', '.join(f'{t:.3f}' for t in times)})"
                  f"{calls}", flush=True)


if __name__ == "__main__":
    main()
