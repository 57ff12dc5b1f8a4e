"""kdgat.metrics against values worked out by hand on tiny arrays."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from kdgat.metrics import Calibration, binary_metrics, calibrate, roc_auc, roc_curve, youden_threshold

# ---------------------------------------------------------------------------
# binary_metrics


def test_binary_metrics_by_hand():
    labels = [0, 0, 1, 1, 1, 0]
    scores = [0.1, 0.6, 0.7, 0.4, 0.9, 0.2]
    m = binary_metrics(labels, scores, threshold=0.5)
    # predictions (score >= 0.5): [0, 1, 1, 0, 1, 0]
    # tp = idx 2, 4 -> 2; fp = idx 1 -> 1; fn = idx 3 -> 1; tn = idx 0, 5 -> 2
    assert m["confusion_matrix"] == [[2, 1], [1, 2]]
    assert m["accuracy"] == pytest.approx(4 / 6)   # (tp + tn) / n = (2 + 2) / 6
    assert m["precision"] == pytest.approx(2 / 3)  # tp / (tp + fp) = 2 / 3
    assert m["recall"] == pytest.approx(2 / 3)     # tp / (tp + fn) = 2 / 3
    assert m["f1"] == pytest.approx(2 / 3)         # 2tp / (2tp + fp + fn) = 4 / 6
    # AUC: attack scores {.7, .4, .9} vs normal {.1, .6, .2}; pairs won:
    # .7 beats 3, .4 beats 2 (.1, .2), .9 beats 3 -> 8 of 9
    assert m["roc_auc"] == pytest.approx(8 / 9)
    assert m["n"] == 6 and m["positives"] == 3 and m["threshold"] == 0.5


def test_binary_metrics_threshold_is_inclusive():
    m = binary_metrics([0, 1], [0.3, 0.3], threshold=0.3)
    assert m["confusion_matrix"] == [[0, 1], [0, 1]]  # both predicted attack


def test_binary_metrics_is_json_serialisable_with_numpy_inputs():
    labels = np.array([0, 1, 1, 0], dtype=np.int32)
    scores = np.array([0.2, 0.9, 0.4, 0.7], dtype=np.float32)
    m = binary_metrics(labels, scores, threshold=np.float32(0.5))
    assert json.loads(json.dumps(m)) == m
    for k in ("accuracy", "precision", "recall", "f1", "roc_auc", "threshold"):
        assert type(m[k]) is float, k
    for k in ("n", "positives"):
        assert type(m[k]) is int, k
    assert all(type(v) is int for row in m["confusion_matrix"] for v in row)


def test_zero_denominators_give_zero_not_nan():
    # nothing predicted attack: precision 0/0, recall 0/2, f1 0/2
    m = binary_metrics([0, 1, 1], [0.1, 0.2, 0.3], threshold=0.9)
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["f1"] == 0.0
    assert m["accuracy"] == pytest.approx(1 / 3)
    # no attacks at all: recall 0/0, AUC undefined
    m = binary_metrics([0, 0], [0.1, 0.7])
    assert m["recall"] == 0.0 and m["precision"] == 0.0 and m["roc_auc"] is None
    assert m["confusion_matrix"] == [[1, 1], [0, 0]]
    json.dumps(m)
    # empty input
    m = binary_metrics([], [])
    assert m["accuracy"] == 0.0 and m["n"] == 0 and m["roc_auc"] is None


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="0 \\(normal\\) or 1"):
        binary_metrics([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="entries"):
        binary_metrics([0, 1], [0.1])
    with pytest.raises(ValueError, match="NaN"):
        binary_metrics([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError, match="1-D"):
        binary_metrics([0, 1], [[0.1, 0.9], [0.2, 0.8]])
    # a column vector (n, 1) and boolean labels are accepted
    m = binary_metrics(np.array([False, True]), np.array([[0.2], [0.8]]))
    assert m["accuracy"] == 1.0


# ---------------------------------------------------------------------------
# ROC


def test_auc_perfect_inverted_constant():
    labels = [0, 0, 0, 1, 1]
    assert roc_auc(labels, [0.1, 0.2, 0.3, 0.8, 0.9]) == 1.0
    assert roc_auc(labels, [0.9, 0.8, 0.7, 0.2, 0.1]) == 0.0
    assert roc_auc(labels, [0.5] * 5) == 0.5  # every pair tied: each counts 1/2
    assert roc_auc([1, 1], [0.1, 0.2]) is None
    assert roc_auc([], []) is None


def test_auc_with_ties_by_hand():
    labels = [0, 1, 0, 1]
    scores = [0.5, 0.5, 0.2, 0.8]
    # attack {.5, .8} vs normal {.5, .2}: .5~.5 tie = 1/2, .5>.2 = 1, .8 beats both = 2 -> 3.5 / 4
    assert roc_auc(labels, scores) == pytest.approx(0.875)


def test_roc_curve_by_hand():
    labels = [0, 0, 1, 1]
    scores = [0.1, 0.4, 0.35, 0.8]
    fpr, tpr = roc_curve(labels, scores)
    # thresholds .8, .4, .35, .1 -> (tp, fp) = (1,0), (1,1), (2,1), (2,2)
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    assert roc_auc(labels, scores) == pytest.approx(0.75)


def test_roc_curve_area_matches_auc_with_ties():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.normal(size=300) + labels, 1)  # many ties
    fpr, tpr = roc_curve(labels, scores)
    assert fpr[0] == 0 and tpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert area == pytest.approx(roc_auc(labels, scores), abs=1e-12)


def test_roc_curve_one_class_is_finite():
    fpr, tpr = roc_curve([0, 0, 0], [0.1, 0.2, 0.3])
    assert np.isfinite(fpr).all() and np.isfinite(tpr).all()
    assert fpr[-1] == 1 and np.all(tpr == 0)


# ---------------------------------------------------------------------------
# Youden


def test_youden_by_hand():
    labels = [0, 0, 0, 1, 1, 1]
    scores = [0.1, 0.4, 0.35, 0.8, 0.3, 0.9]
    # t=.9: TPR 1/3, FPR 0 -> J 1/3     t=.8: 2/3 - 0 = 2/3   <- best
    # t=.4: 2/3 - 1/3 = 1/3             t=.35: 2/3 - 2/3 = 0
    # t=.3: 1 - 2/3 = 1/3               t=.1: 1 - 1 = 0
    assert youden_threshold(labels, scores) == 0.8


def test_youden_ties_pick_the_largest_threshold():
    labels = [0, 1, 0, 1]
    scores = [1.0, 2.0, 3.0, 4.0]
    # t=4: 1/2 - 0 = 1/2; t=3: 1/2 - 1/2 = 0; t=2: 1 - 1/2 = 1/2; t=1: 0 -> tie 4 vs 2
    assert youden_threshold(labels, scores) == 4.0


def test_youden_perfect_separation_and_degenerate():
    assert youden_threshold([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9]) == 0.7
    assert youden_threshold([0, 1, 0], [0.3, 0.3, 0.3]) == 0.3  # constant: the only candidate
    assert youden_threshold([0, 0, 0], [0.1, 0.5, 0.2]) == 0.5  # no attacks: fewest alarms
    assert youden_threshold([1, 1, 1], [0.1, 0.5, 0.2]) == 0.1  # no normals: flag everything
    with pytest.raises(ValueError):
        youden_threshold([], [])


# ---------------------------------------------------------------------------
# calibration


def _noisy(n=400, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    scores = rng.normal(size=n) + 2.0 * labels
    return labels, scores


def _check_map(cal: Calibration, fit_scores: np.ndarray) -> None:
    lo, hi = float(fit_scores.min()), float(fit_scores.max())
    span = max(hi - lo, 1.0)
    grid = np.r_[-np.inf, np.linspace(lo - 5 * span, hi + 5 * span, 2001), np.sort(fit_scores), np.inf]
    grid = np.sort(grid)
    p = cal(grid)
    assert p.shape == grid.shape
    assert np.all((p >= 0) & (p <= 1))
    assert np.all(np.diff(p) >= 0), "calibration must be monotone"
    assert cal(np.array([cal.threshold]))[0] == 0.5
    assert np.array_equal(cal(grid) >= 0.5, grid >= cal.threshold)


def test_calibration_maps_youden_threshold_to_half_and_is_monotone():
    labels, scores = _noisy()
    cal = calibrate(scores, labels)
    assert cal.threshold == youden_threshold(labels, scores)
    _check_map(cal, scores)
    # informative: the typical normal is well under 1/2, the typical attack well over
    p = cal(scores)
    assert np.median(p[labels == 0]) < 0.3 < 0.7 < np.median(p[labels == 1])
    # strictly increasing inside the fitted range
    inner = np.linspace(scores.min(), scores.max(), 500)
    assert np.all(np.diff(cal(inner)) > 0)
    # extreme unseen scores go further out than anything fitted
    assert cal(np.array([scores.max() + 100.0]))[0] > cal(np.array([scores.max()]))[0]
    assert cal(np.array([np.inf, -np.inf])).tolist() == [1.0, 0.0]


def test_calibrated_detector_equals_youden_detector():
    labels, scores = _noisy(seed=3)
    cal = calibrate(scores, labels)
    raw = binary_metrics(labels, scores, threshold=cal.threshold)
    calibrated = binary_metrics(labels, cal(scores), threshold=0.5)
    assert raw["confusion_matrix"] == calibrated["confusion_matrix"]
    assert raw["roc_auc"] == pytest.approx(calibrated["roc_auc"])


def test_calibration_depends_only_on_ranks():
    # a heavy-tailed monotone transform of the scores (a reconstruction error,
    # say) gives the same calibrated values on the fit split
    labels, scores = _noisy(n=200, seed=1)
    a = calibrate(scores, labels)
    b = calibrate(np.exp(3 * scores), labels)
    np.testing.assert_allclose(a(scores), b(np.exp(3 * scores)), atol=1e-9)
    assert a.slope == pytest.approx(b.slope)


def test_calibration_json_round_trip():
    labels, scores = _noisy(n=2000, seed=2)  # > 257 knots per side: thinned
    cal = calibrate(scores, labels)
    d = json.loads(json.dumps(cal.to_dict()))
    assert len(d["knots_x"]) <= 2 * 257
    back = Calibration.from_dict(d)
    assert back == cal
    probe = np.linspace(-6, 8, 301)
    assert np.array_equal(back(probe), cal(probe))
    _check_map(back, scores)


@pytest.mark.parametrize(
    "scores, labels",
    [
        ([0.7] * 6, [0, 1, 0, 1, 0, 1]),  # constant scores
        ([0.1, 0.4, 0.2, 0.3], [0, 0, 0, 0]),  # no attacks
        ([0.1, 0.4, 0.2, 0.3], [1, 1, 1, 1]),  # no normals
        ([0.5], [1]),  # a single window
        ([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]),  # perfectly separated
        ([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]),  # inverted
    ],
)
def test_calibration_degenerate_fits(scores, labels):
    s = np.asarray(scores, dtype=float)
    cal = calibrate(s, labels)
    assert cal.slope > 0 and np.isfinite(cal.slope)
    _check_map(cal, s)
    Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))


def test_calibration_rejects_bad_input():
    with pytest.raises(ValueError):
        calibrate([], [])
    with pytest.raises(ValueError, match="infinite"):
        calibrate([0.1, np.inf], [0, 1])
    labels, scores = _noisy(n=50)
    cal = calibrate(scores, labels)
    with pytest.raises(ValueError, match="NaN"):
        cal([0.1, np.nan])
    bad = cal.to_dict()
    bad["slope"] = -1.0
    with pytest.raises(ValueError):
        Calibration.from_dict(bad)
    bad = cal.to_dict()
    del bad["knots_x"]
    with pytest.raises(ValueError, match="knots_x"):
        Calibration.from_dict(bad)
    bad = cal.to_dict()
    bad["knots_z"] = bad["knots_z"][::-1]
    with pytest.raises(ValueError):
        Calibration.from_dict(bad)


def test_metrics_does_not_import_torch():
    code = "import sys, kdgat.metrics; assert 'torch' not in sys.modules; assert 'sklearn' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
