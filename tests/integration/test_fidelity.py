"""One small run's curriculum GAT detects what it has to generalise to.

At 200k frames the training capture holds one burst of each attack, and the
test captures' bursts come at other times and, for the masquerade, with
another held value, while the normal signals drift outside the training
capture's range in 5-15 % of the test nodes. Memorising the training burst
is not enough: before the GAT's evidence path (kdgat.models.gat) this run's
masquerade F1 was 0.0, and with the training drift it needs its default
epochs (0.60 after 6, 0.98 after the 8 early stopping allows). The bars are below bench/fidelity.py's (0.99 and 0.92
at full size), which prints the whole table at two scales.
"""

import json

import pytest

from conftest import run_train

pytestmark = pytest.mark.slow


def test_a_small_runs_curriculum_gat_detects_spoofing_and_the_masquerade(tmp_path):
    out = run_train("pipeline=curriculum_only", "dataset.synthetic.frames=200000", "progress=false",
                    "tracking=none", cwd=tmp_path)  # default epochs: early stopping ends it after 8, in ~45 s
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = tmp_path / "experimentruns" / "synthetic" / "curriculum" / "latest" / "metrics.json"
    f1 = {split: m["f1"] for split, m in json.loads(metrics.read_text())["splits"].items()}
    assert f1["test_spoofing"] >= 0.95, f1
    assert f1["test_masquerade"] >= 0.8, f1
    assert min(f1["test_dos"], f1["test_fuzzing"]) >= 0.95, f1  # and the evidence path costs the others nothing
