"""kdgat's data modules stay light: windowing, vocabularies and graph sets load no torch or torch_geometric
(checked in a fresh process)."""

from __future__ import annotations

import subprocess
import sys


def test_data_modules_do_not_import_torch():
    code = (
        "import sys, kdgat.atomic, kdgat.data.features, kdgat.data.vocabulary, kdgat.data.graphset, "
        "kdgat.data.windows, kdgat.data.batching, kdgat.data.dataset; "
        "bad = [m for m in ('torch', 'torch_geometric') if m in sys.modules]; "
        "sys.exit(f'imported {bad}' if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
