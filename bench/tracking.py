#!/usr/bin/env python
"""What MLflow tracking costs a stage: its wall time and its start-up, with and without tracking.

Each run is a fresh `python train.py` process training one stage (default: the
VGAE at the synthetic defaults) in the same artifacts folder, so the graphs are
cached once for all runs; the stage's own folder is removed before each run so
that it trains again. Tracked runs use the embedded store: the first one finds
it fresh (tables made under the lock), the later ones set up. Start-up is the
time from starting the process to the stage's first line ("stage ... on cpu"),
just before its first epoch; the budget for tracking's share of it is what the
stage's own `import torch` costs, measured here too.

    .venv/bin/python bench/tracking.py                 # one run of each
    .venv/bin/python bench/tracking.py --repeat 3 --preset curriculum
"""

from __future__ import annotations

import argparse
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from cluster import ROOT

STARTED = re.compile(r"^\[([\d\-: ,]+)\]\[kdgat\.stages\.common\]\[INFO\] - stage \S+ \(\S+\) on ", re.M)


def import_seconds(module: str, repeat: int = 3) -> float:
    """Median seconds a fresh interpreter takes to import `module` (minus starting itself)."""
    def timed(code: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        return time.perf_counter() - t0

    bare = statistics.median(timed("pass") for _ in range(repeat))
    return statistics.median(timed(f"import {module}") for _ in range(repeat)) - bare


def stage_run(art: Path, preset: str, tracking: bool, extra: list[str]) -> dict[str, float]:
    """One stage trained in a fresh process: wall seconds, CPU seconds (the process's and its tracking
    process's: steadier than wall time on a shared machine), and seconds until the stage starts training."""
    shutil.rmtree(art / "synthetic" / preset, ignore_errors=True)
    args = [sys.executable, str(ROOT / "train.py"), "pipeline=custom", f"pipeline.presets=[{preset}]",
            "progress=false", f"paths.artifacts={art}", *([] if tracking else ["tracking=none"]), *extra]
    t0_wall = time.time()
    t0 = time.perf_counter()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(args, cwd=art.parent, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    if out.returncode != 0:
        raise SystemExit(f"stage failed:\n{out.stderr[-3000:]}")
    if tracking and "is MLflow run" not in out.stdout:
        raise SystemExit(f"tracking did not record the stage:\n{out.stdout[-3000:]}")
    started = STARTED.search(out.stdout)
    begun = datetime.strptime(started[1], "%Y-%m-%d %H:%M:%S,%f").timestamp() - t0_wall
    return {"wall": wall, "cpu": cpu, "startup": begun}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="autoencoder", help="the stage to train (a preset)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each kind")
    parser.add_argument("--frames", type=int, help="synthetic frames (default: the dataset's default)")
    args = parser.parse_args()
    extra = [f"dataset.synthetic.frames={args.frames}"] if args.frames else []

    torch_s, mlflow_s = import_seconds("torch"), import_seconds("mlflow")
    print(f"import torch in a fresh interpreter:  {torch_s:.2f} s")
    print(f"import mlflow in a fresh interpreter: {mlflow_s:.2f} s (in the tracking process, beside the stage)")
    with tempfile.TemporaryDirectory(prefix="kdgat-bench-tracking-") as tmp:
        art = Path(tmp) / "experimentruns"
        print("making the synthetic data and its graphs once ...", flush=True)
        stage_run(art, args.preset, False, extra + ["train.max_epochs=1"])
        results: dict[str, list[dict[str, float]]] = {"tracking=none": [], "tracking (fresh store)": [],
                                                      "tracking (store set up)": []}
        for i in range(args.repeat):
            results["tracking=none"].append(stage_run(art, args.preset, False, extra))
            kind = "tracking (fresh store)" if i == 0 else "tracking (store set up)"
            results[kind].append(stage_run(art, args.preset, True, extra))
            print(f"round {i + 1}: " + ", ".join(f"{k} {v[-1]['wall']:.1f} s ({v[-1]['cpu']:.1f} s CPU)"
                                                 for k, v in results.items() if v), flush=True)
    print(f"\n{args.preset} at the synthetic defaults, {args.repeat} run(s) of each, medians:")
    print(f"{'':26} {'wall':>8} {'CPU':>8} {'start-up':>9}")
    base = {k: statistics.median(r[k] for r in results["tracking=none"]) for k in ("wall", "cpu", "startup")}
    for kind, runs in results.items():
        if not runs:
            continue
        wall, cpu, startup = (statistics.median(r[k] for r in runs) for k in ("wall", "cpu", "startup"))
        versus = "" if kind == "tracking=none" else \
            (f"   wall {100 * (wall / base['wall'] - 1):+.1f} %, CPU {cpu - base['cpu']:+.1f} s "
             f"({100 * (cpu / base['cpu'] - 1):+.1f} %), start-up {startup - base['startup']:+.2f} s "
             f"(budget: import torch, {torch_s:.2f} s)")
        print(f"{kind:26} {wall:7.1f}s {cpu:7.1f}s {startup:8.2f}s{versus}")


if __name__ == "__main__":
    main()
