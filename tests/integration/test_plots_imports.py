"""kdgat.plots draws a PNG without a display and loads neither torch nor matplotlib.pyplot (checked in a fresh
process)."""

from __future__ import annotations

import subprocess
import sys


def test_plots_needs_no_display_or_torch():
    code = (
        "import os, sys; os.environ.pop('DISPLAY', None); import tempfile, pathlib;"
        "from kdgat import plots;"
        "d = pathlib.Path(tempfile.mkdtemp()); plots.alpha_histogram([0, 0.5, 1], d / 'a.png', 't');"
        "assert (d / 'a.png').read_bytes()[:4] == b'\\x89PNG';"
        "assert 'torch' not in sys.modules; assert 'matplotlib.pyplot' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
