#!/usr/bin/env python
"""The reliability catalogue (issue 7) against the local SLURM cluster, as a table: one row per case with what
kdgat did, the jobs it submitted, the jobs it left queued, the finished files it lost, and pass or fail.

The cases live in bench/reliability_cases.py (CI runs them as tests/cluster/test_reliability.py). Start the cluster
first (scripts/local-slurm.sh start); without sbatch the cluster cases are skipped. Exit status 1 when any
row fails.

    .venv/bin/python bench/reliability.py                   # every case (about 5 minutes on 2 cores)
    .venv/bin/python bench/reliability.py --only walltime   # the cases whose name holds a word
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from reliability_cases import CASES, run_case

HEADER = ("case", "kind", "what kdgat did", "submitted", "left queued", "files lost", "result", "seconds")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], help="run the cases whose name holds this word")
    parser.add_argument("--keep", action="store_true", help="keep each case's folder (printed) for a look")
    parser.add_argument("--verbose", "-v", action="store_true", help="print why each failed row failed")
    args = parser.parse_args()
    cases = [c for c in CASES if not args.only or any(w.lower() in c.name.lower() for w in args.only)]
    has_cluster = shutil.which("sbatch") is not None
    rows, failures = [], []
    for case in cases:
        if case.needs == "cluster" and not has_cluster:
            rows.append((case.name, case.kind, "skipped: sbatch is not on PATH", "-", "-", "-", "skip", "-"))
            continue
        root = Path(tempfile.mkdtemp(prefix="kdgat-reliability-"))
        start = time.monotonic()
        result = run_case(case, root)
        seconds = time.monotonic() - start
        rows.append((case.name, case.kind, result.did, str(result.submitted), str(result.left_queued),
                     str(result.files_lost), "pass" if result.passed else "FAIL", f"{seconds:.0f}"))
        print(f"{'pass' if result.passed else 'FAIL'}  {case.name} ({seconds:.0f} s)", file=sys.stderr, flush=True)
        if not result.passed:
            failures.append((case.name, result.problems))
        if args.keep:
            print(f"      kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print_table(rows)
    print(f"\n{len(rows) - len(failures)} of {len(rows)} cases pass")
    if args.verbose:
        for name, problems in failures:
            print(f"\n{name}:\n  " + "\n  ".join(problems))
    return 1 if failures else 0


def print_table(rows) -> None:
    """A Markdown table, so that it can be pasted into the README as it is."""
    cells = [HEADER, *rows]
    widths = [max(len(str(r[i])) for r in cells) for i in range(len(HEADER))]
    for i, row in enumerate(cells):
        print("| " + " | ".join(str(v).replace("|", "\\|").ljust(w) for v, w in zip(row, widths)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


if __name__ == "__main__":
    sys.exit(main())
