"""Which heavy packages kdgat's commands load: sklearn only where metrics are computed, torch never outside
training (each checked in a fresh process, as a user's command starts)."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import run_train, synth

# a sitecustomize.py that makes a child process print, as it exits, which heavy packages it imported
_PROBE = """import atexit, sys
atexit.register(lambda: sys.stderr.write('HEAVY=%s\\n' % sorted(m for m in ('sklearn', 'torch') if m in sys.modules)))
"""


def test_sklearn_is_loaded_only_where_metrics_are_computed(tmp_path):
    """sklearn takes about a second to import: only code that computes metrics may load it."""
    (tmp_path / "sitecustomize.py").write_text(_PROBE)
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH", "")) if p),
           "KDGAT_DATA": str(tmp_path / "data")}
    synth(tmp_path / "data" / "hcrl_sa", like="hcrl_sa")
    for args in (["--cfg", "job", "--resolve"],
                 ["hydra/launcher=kdgat_chain", "hydra.launcher.dry_run=true", f"hydra.sweep.dir={tmp_path}/sweep"]):
        out = run_train("pipeline=teacher", "dataset=hcrl_sa", *args, cwd=tmp_path, env=env, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "HEAVY=[]" in out.stderr, args
    # what `kdgat report` loads, and a figure drawn the way it draws its own
    code = ("import pathlib, sys, kdgat.cli, kdgat.report, kdgat.status, kdgat.artifacts; from kdgat import plots; "
            "fig = plots.new_figure(3, 2); fig.add_subplot(1, 1, 1).bar([0, 1], [1, 2]); "
            f"plots.save_figure(fig, pathlib.Path({str(tmp_path)!r}) / 'f.png')")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "HEAVY=[]" in out.stderr
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    # the metrics and the calibration themselves load sklearn, never torch
    out = subprocess.run([sys.executable, "-c", "import kdgat.metrics, kdgat.calibration"],
                         env={**os.environ, **env}, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "HEAVY=['sklearn']" in out.stderr
