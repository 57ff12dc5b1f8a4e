#!/usr/bin/env bash
# Creates .venv/ with kdgat and everything it needs. Safe to run again.
# torch==2.13.0 first and explicitly: its CPU build lies on this kind of
# machine's disk, and a bare `torch` would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check torch==2.13.0
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
