"""Benchmark: `kdgat data import` of generated downloads whose big file has a real file's size.

    .venv/bin/python bench/import.py                    # 3.6 M-row files, as the Car-Hacking CSVs
    .venv/bin/python bench/import.py --rows 1000000     # quicker

Cases (bench/downloads.py makes the downloads once, in bench/out/import/):
  link v1.5      a can-train-and-test v1.5 dataset whose training file has ROWS rows: linked, counted, hashed;
  link survival  the Survival download of one vehicle (Soul) whose FreeDriving file (bytes space-separated in
                 one field, no flag) has ROWS rows: linked, counted, hashed (its small attack files split);
  split          a Car-Hacking download with a DoS_dataset.csv of ROWS rows (CRLF): cut in two, written;
  extract        the Car-Hacking normal_run_data.7z holding the real file's 988,987 lines: extracted, counted;
  read           the training path: read_frames of that DoS_dataset.csv (what kdgat read before this
                 benchmark existed: 0.45-0.77 M rows/s, +420 MiB).
Each case runs in a fresh subprocess that imports everything first (kdgat, numpy, pandas, pyarrow,
py7zr), so that imports count neither in time nor in memory; memory is the growth of the peak resident set
(VmHWM) over the peak after those imports. rows/s is the big file's rows over the whole import (the case's
small files included). Targets (issue 13): memory growth <= 200 MiB; >= 1 M rows/s where the file is
linked, >= 300 k rows/s where it is split or extracted. Time is the fastest of --repeat runs into an empty
folder; memory is that of the first.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

NORMAL_RUN_LINES = 988_987
TARGET_MIB = 200
CASES = {  # name: (rows per second wanted, what it imports)
    "link v1.5": 1_000_000,
    "link survival": 1_000_000,
    "split": 300_000,
    "extract": 300_000,
    "read": None,
}


def vm_hwm_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def make(case: str, rows: int, out: Path) -> tuple[Path, list[str] | None, int, Path]:
    """(download folder, --dataset names, the big file's rows, the big file), made once and kept."""
    import downloads

    folder = out / f"{case.replace(' ', '_')}_{rows}"
    done = folder / ".made"
    if case == "link v1.5":
        big = "set_01_train_01_attack_free_0.csv"
        where, names, count = folder / "set_01" / "train_01_attack_free" / big, None, rows
        if not done.exists():
            downloads.ctt_v15(folder, datasets=("set_01",), rows=2000, quirks=False, sizes={big: rows})
    elif case == "link survival":
        big = "FreeDrivingData_20180112_Soul.txt"
        where, names, count = folder / "Soul" / big, ["hcrl_sa_soul"], rows
        if not done.exists():
            downloads.survival(folder, rows=2000, vehicles=("Soul",), sizes={big: rows}, quirks=False)
    elif case in ("split", "read"):
        folder = out / f"car_hacking_dos_{rows}"
        done = folder / ".made"
        where, names, count = folder / "DoS_dataset.csv", None, rows
        if not done.exists():
            downloads.car_hacking(folder, files=("DoS_dataset.csv",), sizes={"DoS_dataset.csv": rows}, quirks=False)
    else:
        folder = out / "car_hacking_normal"
        done = folder / ".made"
        where, names, count = folder / "normal_run_data.7z", None, NORMAL_RUN_LINES
        if not done.exists():
            # with a small attack file: the archive alone is no Car-Hacking download
            downloads.car_hacking(folder, rows=2000, files=("DoS_dataset.csv", "normal_run_data.txt"),
                                  sizes={"normal_run_data.txt": NORMAL_RUN_LINES})
    if not done.exists():
        done.write_text("")
    return folder, names, count, where


def run_case(case: str, folder: Path, names: list[str] | None, big: Path, repeat: int) -> dict:
    """Body of one measuring subprocess."""
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import py7zr  # noqa: F401
    import pyarrow  # noqa: F401

    from kdgat.data.formats import read_frames
    from kdgat.data.formats.table import read_table
    from kdgat.data.importer import import_download

    read_table(b"1,2\n", [0, 1])  # pandas' parser loads its own modules on first use
    base = vm_hwm_mib()
    times, peak, made = [], None, {}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(dir=HERE / "out") as out:
            start = time.perf_counter()
            if case == "read":
                frames, _ = read_frames(big)
                made = {"frames": len(frames)}
                del frames
            else:
                results = import_download(folder, Path(out), names)
                made = {"files": sum(len(r.files) for r in results),
                        "frames": sum(e["frames"] for r in results for e in r.files.values())}
            times.append(time.perf_counter() - start)
        if peak is None:
            peak = vm_hwm_mib() - base
    return {"seconds": min(times), "all_seconds": times, "growth_mib": peak, **made}


def measure(case: str, folder: Path, names, big: Path, repeat: int) -> dict:
    cmd = [sys.executable, __file__, "--case", case, "--folder", str(folder), "--big", str(big),
           "--repeat", str(repeat)] + (["--names", ",".join(names)] if names else [])
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{case} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=3_600_000, help="rows of the big file of each case")
    ap.add_argument("--repeat", type=int, default=1, help="imports per case; the fastest counts")
    ap.add_argument("--cases", default=",".join(CASES), help="which cases, comma-separated")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--big", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--names", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.case:  # inside a measuring subprocess
        names = args.names.split(",") if args.names else None
        print(json.dumps(run_case(args.case, args.folder, names, args.big, args.repeat)))
        return

    out = HERE / "out" / "import"
    out.mkdir(parents=True, exist_ok=True)
    print(f"{'case':14s} {'big file':>10s} {'seconds':>8s} {'rows/s':>12s} {'memory':>9s}  target")
    for case in args.cases.split(","):
        start = time.perf_counter()
        folder, names, count, big = make(case, args.rows, out)
        made = time.perf_counter() - start
        r = measure(case, folder, names, big, args.repeat)
        rate = count / r["seconds"]
        wanted = CASES[case]
        ok = r["growth_mib"] <= TARGET_MIB and (wanted is None or rate >= wanted)
        target = (f">= {wanted / 1e6:g} M rows/s, <= {TARGET_MIB} MiB: {'met' if ok else 'MISSED'}" if wanted else
                  "(the training path; no target)")
        print(f"{case:14s} {count:>10,d} {r['seconds']:8.2f} {rate / 1e6:10.2f} M {r['growth_mib']:+7.0f} MiB  "
              f"{target}   [{big.name}, {big.stat().st_size / 2**20:.0f} MiB; {r.get('files', 1)} files, "
              f"{r['frames']:,} frames{'' if made < 1 else f'; made in {made:.0f} s'}]")


if __name__ == "__main__":
    main()
