"""What `--cfg job --resolve` and a dry run cost, in instructions and in time, beside another checkout.

This VM's speed drifts by 10-15 % within minutes, so wall times alone cannot
tell two trees a few percent apart. Instructions executed (valgrind's
callgrind, the command's own process) repeat to within about 0.2 %. The dry run
needs a running SLURM cluster (scripts/local-slurm.sh start) for its
`sbatch --test-only`.

    .venv/bin/python bench/command_cost.py [--against ../other-checkout] [--repeat 21] [--no-valgrind]

The other checkout runs with this checkout's interpreter and packages, its
own code first on PYTHONPATH. Every command runs once first, so that both
trees have their `.pyc` files, as on a user's machine.
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

from cluster import ROOT, synth

PY = sys.executable
COMMANDS = {
    "--cfg job --resolve": ["--cfg", "job", "--resolve"],
    "dry run": ["hydra/launcher=kdgat_chain", "hydra.launcher.dry_run=true"],
}


def command(tree: Path, what: str, work: Path) -> list:
    extra = COMMANDS[what] + ([f"hydra.sweep.dir={work}/dry-{time.monotonic_ns()}"] if what == "dry run" else [])
    return [PY, str(tree / "train.py"), "pipeline=teacher", "dataset=hcrl_sa", *extra]


def environment(tree: Path, work: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # .pyc files, as users have
    return {**env, "KDGAT_DATA": str(work / "data"), "PYTHONPATH": f"{tree / 'src'}{os.pathsep}{tree}"}


def run(tree: Path, what: str, work: Path, prefix: tuple = ()) -> subprocess.CompletedProcess:
    out = subprocess.run([*prefix, *command(tree, what, work)], cwd=work, env=environment(tree, work),
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{tree}: {what} failed:\n{out.stderr[-2000:]}")
    return out


def instructions(tree: Path, what: str, work: Path) -> int:
    out = run(tree, what, work, ("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"))
    return int(re.search(r"Collected : (\d+)", out.stderr)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="another kdgat checkout to measure beside this one")
    parser.add_argument("--repeat", type=int, default=21, help="interleaved timed runs of each command")
    parser.add_argument("--no-valgrind", action="store_true", help="wall times only")
    args = parser.parse_args()
    trees = {"this checkout": ROOT, **({f"{args.against}": args.against.resolve()} if args.against else {})}
    with tempfile.TemporaryDirectory(prefix="kdgat-cost-") as tmp:
        work = Path(tmp)
        synth(work / "data" / "hcrl_sa", like="hcrl_sa")
        times = {(t, w): [] for t in trees for w in COMMANDS}
        for tree in trees.values():
            for what in COMMANDS:
                run(tree, what, work)  # .pyc files written, the preset cache filled
        for _ in range(args.repeat):
            for name, tree in trees.items():
                for what in COMMANDS:
                    t0 = time.perf_counter()
                    run(tree, what, work)
                    times[(name, what)].append(time.perf_counter() - t0)
        counted = not args.no_valgrind and shutil.which("valgrind")
        for (name, what), seconds in times.items():
            seconds.sort()
            ir = f"   {instructions(trees[name], what, work) / 1e6:,.1f} M instructions" if counted else ""
            print(f"{name:>20}  {what:<20}  best {seconds[0]:.3f} s  median {seconds[len(seconds) // 2]:.3f} s{ir}",
                  flush=True)


if __name__ == "__main__":
    main()
