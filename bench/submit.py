"""How fast kdgat_chain queues a sweep, beside the floor and beside hydra-submitit-launcher.

Needs a running SLURM cluster (scripts/local-slurm.sh start). Every job is
submitted held (`--hold`) and cancelled right after, so nothing runs.

    .venv/bin/python bench/submit.py [--repeat 3]

Prints, best of the repeats:
- kdgat_chain: the teacher pipeline on all six real datasets (18 chained
  jobs; the data present as small synthetic copies), from the command's start
  until it returns with every job queued;
- the floor: the same 18 chained `sbatch --parsable` calls from a shell loop;
- hydra-submitit-launcher queueing a 6-job sweep of a minimal app, from the
  command's start until its job array (all 6 jobs) is in squeue (it then waits for the jobs,
  so it is stopped there);
- `--cfg job --resolve` and a dry run of kdgat, and `--cfg job` of a minimal app.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
DATASETS = ["hcrl_sa", "hcrl_ch", "set_01", "set_02", "set_03", "set_04"]
APP = ROOT / "tests" / "chain_app" / "app.py"


def timed(cmd, **kw) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    return time.perf_counter() - t0, out


def cancel_all(ids):
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True)


def kdgat_sweep(work: Path, env: dict) -> float:
    sweep = work / f"sweep-{time.monotonic_ns()}"
    cmd = [PY, str(ROOT / "train.py"), "-m", "pipeline=teacher", f"dataset={','.join(DATASETS)}",
           "hydra/launcher=kdgat_chain", f"hydra.sweep.dir={sweep}", "+hydra.launcher.additional_parameters.hold=true"]
    seconds, out = timed(cmd, cwd=work, env=env)
    ids = re.findall(r"scancel ([\d ]+)", out.stdout)
    ids = ids[-1].split() if ids else []
    cancel_all(ids)
    if out.returncode != 0 or len(ids) != 18:
        raise SystemExit(f"kdgat_chain sweep failed ({len(ids)} jobs):\n{out.stderr[-2000:]}")
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
    cancel_all(out.stdout.split())
    return seconds


def submitit_sweep(work: Path) -> float:
    name = f"benchsubmitit{time.monotonic_ns()}"
    cmd = [PY, str(APP), "-m", "tag=a,b,c,d,e,f", f"out={work}", "hydra/launcher=submitit_slurm",
           f"hydra.launcher.name={name}", f"hydra.sweep.dir={work}/submitit-{time.monotonic_ns()}",
           "+hydra.launcher.additional_parameters.hold=true", "hydra.launcher.timeout_min=5"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
        cancel_all(subprocess.run(["squeue", "-h", "-n", name, "-o", "%i"], capture_output=True,
                                  text=True).stdout.split())
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kdgat-bench-") as tmp:
        work = Path(tmp)
        for name in DATASETS:
            subprocess.run([PY, "-m", "kdgat.cli", "synth", "--like", name, "--out", str(work / "data" / name),
                            "--frames", "6000", "--quiet"], check=True, capture_output=True)
        env = {**os.environ, "KDGAT_DATA": str(work / "data")}
        rows = {
            "kdgat_chain, 6 datasets x teacher = 18 jobs queued": lambda: kdgat_sweep(work, env),
            "floor: the same 18 chained sbatch calls from a shell loop": lambda: shell_floor(work),
            "hydra-submitit-launcher, 6-job sweep of a minimal app, queued": lambda: submitit_sweep(work),
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
            print(f"{label.ljust(width)}  best {min(times):6.3f} s   (all: {', '.join(f'{t:.3f}' for t in times)})",
                  flush=True)


if __name__ == "__main__":
    main()
