"""kdgat.plots writes valid PNGs, atomically, and leaks no figures."""

from __future__ import annotations

import numpy as np
import pytest

from kdgat import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert len(data) > 2000, f"{path} is only {len(data)} bytes"
    # nothing but the finished file: no temporary left beside it
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}")) == []


def _open_figures():
    import matplotlib.pyplot as plt

    return plt.get_fignums()


def test_new_figure_and_save_figure_as_report_uses_them(tmp_path):
    fig = plots.new_figure(4.0, 3.0)
    fig.add_subplot(1, 1, 1).bar([0, 1], [3, 5])
    out = tmp_path / "bars.png"
    plots.save_figure(fig, out)
    _assert_png(out)
    assert fig.axes == []  # released once written
    assert _open_figures() == []  # never registered with pyplot


def test_training_curves(tmp_path):
    history = {
        "train_loss": [1.0, 0.6, 0.4, 0.3],
        "val_loss": [1.1, 0.7, float("nan"), 0.5],
        "val_f1": [0.5, 0.8, 0.9, 0.95],
        "empty": [],
    }
    out = tmp_path / "sub" / "curves.png"  # missing folders are made
    plots.training_curves(history, out, "gat_normal")
    _assert_png(out)
    plots.training_curves({}, tmp_path / "none.png", "no history")
    _assert_png(tmp_path / "none.png")
    plots.training_curves({"val_f1": [0.9]}, tmp_path / "one.png", "")
    _assert_png(tmp_path / "one.png")
    assert _open_figures() == []


def test_confusion_matrix(tmp_path):
    out = tmp_path / "cm.png"
    plots.confusion_matrix([[90, 10], [3, 97]], out, "validation")
    _assert_png(out)
    plots.confusion_matrix(np.zeros((2, 2), dtype=int), tmp_path / "zero.png", "empty")
    _assert_png(tmp_path / "zero.png")
    with pytest.raises(ValueError, match="2x2"):
        plots.confusion_matrix([[1, 2, 3]], tmp_path / "bad.png", "bad")
    assert not (tmp_path / "bad.png").exists()
    assert _open_figures() == []


def test_alpha_histogram(tmp_path):
    rng = np.random.default_rng(0)
    alphas = rng.choice(plots.ALPHA_GRID, size=300)
    out = tmp_path / "alpha.png"
    plots.alpha_histogram(alphas, out, "fusion")
    _assert_png(out)
    plots.alpha_histogram([], tmp_path / "empty.png", "")
    _assert_png(tmp_path / "empty.png")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        plots.alpha_histogram([0.5, 1.5], tmp_path / "bad.png", "")
    assert len(plots.ALPHA_GRID) == 21 and plots.ALPHA_GRID[1] == 0.05
    assert _open_figures() == []


def test_roc(tmp_path):
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(60), np.ones(40)].astype(int)
    scores = {
        "gat": labels + rng.normal(scale=0.5, size=100),
        "vgae": labels * 0.5 + rng.normal(size=100),
        "fused": np.full(100, 0.5),
    }
    out = tmp_path / "roc.png"
    plots.roc(labels, scores, out, "test scenario")
    _assert_png(out)
    plots.roc(np.zeros(5, dtype=int), {"gat": np.arange(5.0)}, tmp_path / "one_class.png", "")
    _assert_png(tmp_path / "one_class.png")
    assert _open_figures() == []


def test_overwrite_and_many_calls_leave_nothing_open(tmp_path):
    out = tmp_path / "cm.png"
    for i in range(6):
        plots.confusion_matrix([[i, 1], [2, 3]], out, f"epoch {i}")
    _assert_png(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cm.png"]
    assert _open_figures() == []
