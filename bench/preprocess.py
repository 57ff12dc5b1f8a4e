"""Benchmark: one can-train-and-test CSV to graphs ready for a DataLoader.

    .venv/bin/python bench/preprocess.py                 # 2 million frames
    .venv/bin/python bench/preprocess.py --frames 8000000

Compares OUR whole path (read_frames + vocabulary + build_graphs + the PyG
view) with ``pandas.read_csv(path)`` alone on the same file. Each side runs in
a fresh subprocess that first imports torch, torch_geometric, pandas and
kdgat, so imports are excluded from both time and memory; memory is the
growth of the peak resident set (VmHWM) above the peak after those imports.

"Ready for a DataLoader" is measured two ways:
  lazy  - ``GraphSet.as_dataset()``: a map-style dataset that makes each Data
          on demand (what training uses; PyG's DataLoader accepts it);
  eager - ``GraphSet.to_pyg()``: a list with one Data object per graph.
Targets: lazy time <= 3x read_csv, memory growth <= 300 MiB at 2M frames.
Time is the fastest of --repeat runs; memory is that of the first run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def vm_hwm_mib() -> float:
    """Peak resident set of this process so far (VmHWM), in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def make_file(frames: int, out: Path, seed: int = 0) -> Path:
    """A synthetic can-train-and-test CSV with attacks, made once and reused."""
    path = out / f"ctt_{frames}.csv"
    if path.exists():
        return path
    import numpy as np

    from kdgat.data.formats import write_frames
    from kdgat.data.synth.traffic import ATTACKS, generate_frames

    out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    data = generate_frames(frames, list(ATTACKS), np.random.default_rng(seed))
    write_frames(path, data, "can_train_and_test")
    print(f"generated {path} ({len(data):,} frames, {path.stat().st_size / 2**20:.0f} MiB) "
          f"in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    return path


def run_side(side: str, path: Path, window: int, repeat: int) -> dict:
    """Body of one measuring subprocess: imports first, then the timed work."""
    import pandas  # noqa: F401  (imported on both sides so neither pays for it)
    import torch  # noqa: F401
    import torch_geometric  # noqa: F401
    import torch_geometric.data  # noqa: F401

    from kdgat.data.formats import read_frames
    from kdgat.data.vocabulary import Vocabulary
    from kdgat.data.windows import build_graphs

    base = vm_hwm_mib()
    times, extra, peak = [], {}, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        if side == "pandas":
            df = pandas.read_csv(path)
            extra["rows"] = len(df)
            del df
        else:
            frames, _report = read_frames(path)
            t1 = time.perf_counter()
            vocab = Vocabulary.from_frames(frames)
            graphs = build_graphs(frames, vocab, window, window)
            t2 = time.perf_counter()
            ready = graphs.to_pyg() if side == "eager" else graphs.as_dataset()
            t3 = time.perf_counter()
            split = {"read_s": t1 - t0, "build_s": t2 - t1, "pyg_s": t3 - t2}
            if not times or t3 - t0 < min(times):  # report the parts of the fastest run
                extra = {"frames": len(frames), "graphs": len(graphs), "nodes": graphs.num_nodes,
                         "edges": graphs.num_edges, **split}
            del frames, vocab, graphs, ready
        times.append(time.perf_counter() - t0)
        if peak is None:  # memory of a first run in a fresh process; later runs only for time
            peak = vm_hwm_mib() - base
    return {"side": side, "seconds": min(times), "all_seconds": times, "peak_growth_mib": peak, **extra}


def measure(side: str, path: Path, window: int, repeat: int) -> dict:
    cmd = [sys.executable, __file__, "--side", side, "--path", str(path), "--window", str(window),
           "--repeat", str(repeat)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{side} side failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=2_000_000)
    ap.add_argument("--out", type=Path, default=HERE / "out", help="where the CSV is made and kept")
    ap.add_argument("--window", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=1, help="runs per side; the fastest counts")
    ap.add_argument("--side", choices=("ours", "eager", "pandas"), help=argparse.SUPPRESS)
    ap.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.side:  # inside a measuring subprocess
        print(json.dumps(run_side(args.side, args.path, args.window, args.repeat)))
        return

    path = make_file(args.frames, args.out)
    pandas_r = measure("pandas", path, args.window, args.repeat)
    ours = measure("ours", path, args.window, args.repeat)
    eager = measure("eager", path, args.window, args.repeat)
    n = ours["frames"]
    print(f"file: {path} ({n:,} frames, {path.stat().st_size / 2**20:.0f} MiB); window {args.window}; "
          f"{ours['graphs']:,} graphs, {ours['nodes']:,} nodes, {ours['edges']:,} edges")
    print(f"pandas.read_csv alone        {pandas_r['seconds']:7.2f} s  {n / pandas_r['seconds'] / 1e6:6.2f} M frames/s"
          f"  peak +{pandas_r['peak_growth_mib']:.0f} MiB")
    for name, r in (("ours, lazy (as_dataset)", ours), ("ours, eager (to_pyg list)", eager)):
        print(f"{name:28s} {r['seconds']:7.2f} s  {n / r['seconds'] / 1e6:6.2f} M frames/s"
              f"  peak +{r['peak_growth_mib']:.0f} MiB  ratio {r['seconds'] / pandas_r['seconds']:.2f}x read_csv"
              f"  [read {r['read_s']:.2f} s, graphs {r['build_s']:.2f} s, pyg {r['pyg_s']:.2f} s]")
    ok_time = ours["seconds"] <= 3 * pandas_r["seconds"]
    ok_mem = ours["peak_growth_mib"] <= 300 * max(1.0, n / 2_000_000)
    print(f"targets (lazy): time <= 3x read_csv: {'met' if ok_time else 'MISSED'}; "
          f"memory <= 300 MiB per 2M frames: {'met' if ok_mem else 'MISSED'}")


if __name__ == "__main__":
    main()
