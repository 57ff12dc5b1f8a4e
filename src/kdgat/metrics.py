"""Binary detection metrics, ROC and Youden's J, computed with scikit-learn.

Labels are 0 (normal) / 1 (attack), one per graph window; a *score* is any
real number that grows with the belief that the window is an attack (a GAT's
attack probability, a VGAE reconstruction error). A window is predicted to be
an attack when ``score >= threshold`` -- everywhere in this module.

What this module adds to sklearn is the contract the stages rely on: every
result is plain Python ``int`` / ``float`` / ``None`` / ``list``, so that
``json.dumps`` writes it as-is into ``metrics.json``; empty input and a missing
class give defined values (0.0, ``None``) instead of sklearn's errors and
warnings; and infinite scores are accepted, as any order-preserving score is.

Importing it imports sklearn (about a second): only training and report code,
which has numpy loaded already, imports it, and only when it computes metrics.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import sklearn.metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

__all__ = ["binary_metrics", "roc_auc", "roc_curve", "youden_threshold", "as_labels", "as_scores"]

_BIG = np.finfo(np.float64).max


def as_labels(labels: Any) -> np.ndarray:
    """``labels`` as a 1-D int64 array of 0/1; a column vector or booleans are accepted."""
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] == 1:  # a column vector, e.g. from a model's output
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {np.shape(labels)}")
    if y.dtype == bool:
        return y.astype(np.int64)
    if y.size and not np.all((y == 0) | (y == 1)):
        bad = np.unique(y[(y != 0) & (y != 1)])[:5]
        raise ValueError(f"labels must be 0 (normal) or 1 (attack); found {bad.tolist()}")
    return y.astype(np.int64)


def as_scores(scores: Any, n: int | None = None, name: str = "scores") -> np.ndarray:
    """``scores`` as a 1-D float64 array of ``n`` entries (when given), without NaN."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 2 and s.shape[1] == 1:
        s = s[:, 0]
    if s.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one score per window), got shape {s.shape}")
    if n is not None and s.shape[0] != n:
        raise ValueError(f"{name} has {s.shape[0]} entries but labels has {n}")
    if np.isnan(s).any():
        raise ValueError(f"{name} contain NaN ({int(np.isnan(s).sum())} of {s.size})")
    return s


def _pair(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    y = as_labels(labels)
    return y, as_scores(scores, y.shape[0])


def _finite(s: np.ndarray) -> np.ndarray:
    """sklearn refuses infinite scores. The ranking metrics depend only on order, which this keeps:
    +inf / -inf become the next float above / below every finite score."""
    inf = np.isinf(s)
    if not inf.any():
        return s
    finite = s[~inf]
    out = s.copy()
    out[s == np.inf] = min(np.nextafter(finite.max(), np.inf), _BIG) if finite.size else 1.0
    out[s == -np.inf] = max(np.nextafter(finite.min(), -np.inf), -_BIG) if finite.size else -1.0
    return out


def roc_auc(labels: Any, scores: Any) -> float | None:
    """Area under the ROC curve (tied scores count 1/2), or ``None`` when only one
    class is present -- the AUC is undefined then -- including for empty input."""
    y, s = _pair(labels, scores)
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == y.size:
        return None
    return float(skm.roc_auc_score(y, _finite(s)))


def roc_curve(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """ROC curve points ``(fpr, tpr)``, both float arrays of equal length.

    One point per distinct score value t (predict attack when score >= t),
    thresholds in descending order, preceded by (0, 0); the last point is
    (1, 1). Tied scores give one diagonal segment, so the trapezoidal area
    equals :func:`roc_auc`. When a class is absent its rate is defined as 0
    at every threshold (a degenerate, flat/vertical curve).
    """
    y, s = _pair(labels, scores)
    if y.size == 0:
        return np.zeros(1), np.zeros(1)
    with warnings.catch_warnings():  # a missing class: sklearn warns and gives NaN rates for it
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        fpr, tpr, _ = skm.roc_curve(y, _finite(s), drop_intermediate=False)
    return np.nan_to_num(fpr, nan=0.0), np.nan_to_num(tpr, nan=0.0)


def binary_metrics(labels: Any, scores: Any, threshold: float = 0.5) -> dict[str, Any]:
    """Metrics of the detector "attack iff score >= threshold".

    Returns a JSON-serialisable dict::

        accuracy, precision, recall, f1   floats; 0.0 when a denominator is 0
        roc_auc                           float from the raw scores, or None
                                          when only one class is present
        confusion_matrix                  [[tn, fp], [fn, tp]] (ints; rows =
                                          true normal/attack, columns =
                                          predicted normal/attack)
        n, positives                      ints (windows; true attacks)
        threshold                         float

    ``scores`` may be probabilities (threshold 0.5) or raw anomaly scores
    with a fitted threshold. Accuracy of empty input is 0.0.
    """
    y, s = _pair(labels, scores)
    threshold = float(threshold)
    if math.isnan(threshold):
        raise ValueError("threshold is NaN")
    pred = (s >= threshold).astype(np.int64)
    if y.size:
        (tn, fp), (fn, tp) = skm.confusion_matrix(y, pred, labels=[0, 1]).tolist()
        accuracy = skm.accuracy_score(y, pred)
        precision, recall, f1, _ = skm.precision_recall_fscore_support(y, pred, average="binary", zero_division=0.0)
    else:  # sklearn refuses empty input
        tn = fp = fn = tp = 0
        accuracy = precision = recall = f1 = 0.0
    return {
        "accuracy": float(accuracy),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "roc_auc": roc_auc(y, s),
        "confusion_matrix": [[int(tn), int(fp)], [int(fn), int(tp)]],
        "n": int(y.size),
        "positives": int(tp + fn),
        "threshold": threshold,
    }


def youden_threshold(labels: Any, scores: Any) -> float:
    """The score value t maximising Youden's J = TPR - FPR of "attack iff score >= t".

    Candidates are the distinct values of ``scores``. J is compared exactly
    (as the integer tp*N - fp*P, from sklearn's counts per threshold), and
    among thresholds with equal J the **largest** is returned: the detector
    with the fewest alarms. sklearn has no Youden function of its own.

    Degenerate inputs: with no attacks TPR is taken as 0, so J = -FPR and the
    result is the largest score; with no normals FPR is taken as 0, so J = TPR
    and the result is the smallest score (every window flagged). Raises
    ``ValueError`` on empty input.
    """
    y, s = _pair(labels, scores)
    if y.size == 0:
        raise ValueError("youden_threshold needs at least one score")
    finite = _finite(s)
    _, fp, _, tp, thresholds = skm.confusion_matrix_at_thresholds(y, finite)  # thresholds descending
    tp, fp = tp.astype(np.int64), fp.astype(np.int64)  # whole numbers held as floats
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if n_pos and n_neg:
        j = tp * n_neg - fp * n_pos  # J * P * N; int64 is exact below ~3e9 windows
    elif n_pos:
        j = tp
    else:
        j = -fp
    # argmax returns the first maximum = the largest threshold; give back the score itself (it may be inf)
    best = thresholds[int(np.argmax(j))]
    return float(s[int(np.argmax(finite == best))])
