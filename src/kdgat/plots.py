"""PNG figures for a stage's run directory (training curves, confusion matrix,
fusion weights, ROC) and for `kdgat report`. Never imports torch; sklearn only within roc().

Figures are built with matplotlib's object-oriented API on the non-interactive
Agg canvas -- pyplot is never used, so no display is needed, the global
backend is left alone, and no figure is registered anywhere that could leak
over many calls. Each PNG is written atomically (a temporary file in the same
folder, then ``os.replace``) via :func:`kdgat.atomic.atomic_write`, so a killed
job never leaves a truncated image.
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence

import numpy as np

from kdgat.atomic import atomic_write

__all__ = ["training_curves", "confusion_matrix", "alpha_histogram", "roc", "new_figure", "save_figure",
           "ALPHA_GRID"]

#: The fusion agent's 21 actions: alpha = 0, 0.05, ..., 1, as ALPHAS in kdgat.models.fusion.
ALPHA_GRID = np.round(np.linspace(0.0, 1.0, 21), 2)

_DPI = 110
_CLASS_NAMES = ("normal", "attack")


def new_figure(width: float, height: float):
    """A figure on its own Agg canvas: drawn without a display, registered nowhere (so nothing leaks)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path: str | os.PathLike) -> None:
    """Write ``fig`` as PNG to ``path`` atomically, then release it."""
    try:
        with atomic_write(path, "wb") as f:
            fig.savefig(f, format="png", dpi=_DPI)
    finally:
        fig.clear()


def _is_loss(name: str) -> bool:
    return "loss" in name.lower()


def training_curves(history: Mapping[str, Sequence[float]], path: str | os.PathLike, title: str = "") -> None:
    """One line per series against epoch (1, 2, ...).

    Series whose name contains "loss" are drawn in the left panel, the rest
    (F1, accuracy, reward, ...) in a right panel, so that values on different
    scales stay readable; with only one kind there is one panel. Non-finite
    values leave gaps; empty series are skipped.
    """
    series = {}
    for name, values in history.items():
        v = np.asarray(list(values), dtype=np.float64).reshape(-1)
        if v.size:
            series[str(name)] = np.where(np.isfinite(v), v, np.nan)
    losses = {k: v for k, v in series.items() if _is_loss(k)}
    others = {k: v for k, v in series.items() if not _is_loss(k)}
    groups = [(g, lbl) for g, lbl in ((losses, "loss"), (others, "value")) if g] or [({}, "value")]

    fig = new_figure(5.5 * len(groups), 4.0)
    for i, (group, ylabel) in enumerate(groups):
        ax = fig.add_subplot(1, len(groups), i + 1)
        for name, v in group.items():
            epochs = np.arange(1, v.size + 1)
            ax.plot(epochs, v, marker="o" if v.size <= 30 else None, markersize=3, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if group:
            ax.legend(fontsize="small")
            longest = max(v.size for v in group.values())
            if longest <= 20:
                ax.set_xticks(np.arange(1, longest + 1))
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    if title:
        fig.suptitle(title)
    save_figure(fig, path)


def confusion_matrix(cm: Any, path: str | os.PathLike, title: str = "") -> None:
    """2x2 annotated heatmap of ``cm`` = [[tn, fp], [fn, tp]] (rows: true
    normal/attack; columns: predicted normal/attack). Cells show the count and
    the share of their row; colour is the row share."""
    m = np.asarray(cm, dtype=np.float64)
    if m.shape != (2, 2):
        raise ValueError(f"confusion matrix must be 2x2 [[tn, fp], [fn, tp]], got shape {m.shape}")
    if not np.isfinite(m).all() or (m < 0).any():
        raise ValueError(f"confusion matrix must hold non-negative counts, got {m.tolist()}")
    row = m.sum(axis=1, keepdims=True)
    share = np.divide(m, row, out=np.zeros_like(m), where=row > 0)

    fig = new_figure(4.6, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    for r in range(2):
        for c in range(2):
            count = int(m[r, c]) if float(m[r, c]).is_integer() else m[r, c]
            ax.text(c, r, f"{count}\n{share[r, c]:.2%}", ha="center", va="center",
                    color="white" if share[r, c] > 0.5 else "black", fontsize=11)
    ax.set_xticks([0, 1], labels=list(_CLASS_NAMES))
    ax.set_yticks([0, 1], labels=list(_CLASS_NAMES))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix")
    save_figure(fig, path)


def alpha_histogram(alphas: Any, path: str | os.PathLike, title: str = "") -> None:
    """Bar chart of how often each of the 21 fusion weights 0, 0.05, ..., 1 was
    chosen. Values are snapped to the nearest grid point; values outside
    [0, 1] (beyond rounding) or NaN raise ``ValueError``."""
    a = np.asarray(alphas, dtype=np.float64).reshape(-1)
    if np.isnan(a).any():
        raise ValueError("alphas contain NaN")
    if a.size and (a.min() < -1e-6 or a.max() > 1 + 1e-6):
        raise ValueError(f"alphas must lie in [0, 1], got range [{a.min():g}, {a.max():g}]")
    idx = np.clip(np.rint(a * 20.0), 0, 20).astype(np.int64)
    counts = np.bincount(idx, minlength=21)

    fig = new_figure(7.0, 3.8)
    ax = fig.add_subplot(1, 1, 1)
    ax.bar(ALPHA_GRID, counts, width=0.04, color="tab:blue", edgecolor="black", linewidth=0.4)
    ax.set_xticks(ALPHA_GRID[::2])
    ax.set_xlim(-0.04, 1.04)
    ax.set_xlabel("alpha (weight of the GAT probability)")
    ax.set_ylabel("windows")
    ax.grid(True, axis="y", alpha=0.3)
    if a.size:
        ax.text(0.99, 0.97, f"n = {a.size}, mean alpha = {a.mean():.3f}", ha="right", va="top",
                transform=ax.transAxes, fontsize="small")
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(title or "fusion weights")
    save_figure(fig, path)


def roc(labels: Any, scores_by_model: Mapping[str, Any], path: str | os.PathLike, title: str = "") -> None:
    """ROC curves of several models on the same windows, AUC in the legend
    ("n/a" when only one class is present), with the chance diagonal."""
    from kdgat.metrics import roc_auc, roc_curve

    fig = new_figure(5.0, 4.6)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8, label="chance")
    for name, scores in scores_by_model.items():
        fpr, tpr = roc_curve(labels, scores)
        auc = roc_auc(labels, scores)
        auc_txt = "n/a" if auc is None or math.isnan(auc) else f"{auc:.4f}"
        ax.plot(fpr, tpr, linewidth=1.5, label=f"{name} (AUC {auc_txt})")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_aspect("equal")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title(title or "ROC")
    save_figure(fig, path)
