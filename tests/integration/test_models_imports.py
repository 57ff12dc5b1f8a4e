"""`import kdgat.models` stays light: torch is loaded only when a model is built (checked in a fresh process)."""

from __future__ import annotations

import subprocess
import sys


def test_package_import_does_not_import_torch():
    code = "import sys, kdgat.models as m; assert 'torch' not in sys.modules, 'torch imported'; m.count_parameters"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
