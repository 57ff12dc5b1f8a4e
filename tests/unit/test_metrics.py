"""kdgat.metrics against values worked out by hand on tiny arrays."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kdgat.metrics import binary_metrics, roc_auc, roc_curve, youden_threshold

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


def test_youden_compares_j_exactly():
    # 2 attacks, 10 normals; by descending score: N N A N N N N N A N N N (scores 12 .. 1)
    # t=10: TPR 1/2, FPR 2/10 -> J 3/10;  t=4: TPR 1, FPR 7/10 -> J 3/10: a tie, the larger t wins.
    # In floats 1 - 0.7 > 0.5 - 0.2, which would pick t=4.
    labels = [0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0]
    scores = np.arange(12.0, 0.0, -1.0)
    assert youden_threshold(labels, scores) == 10.0


def test_infinite_scores_are_ranked_like_any_other():
    # attacks {inf, .3} vs normal {-inf}: both attacks rank above the normal
    m = binary_metrics([0, 1, 1], [-np.inf, np.inf, 0.3], threshold=0.5)
    assert m["confusion_matrix"] == [[1, 0], [1, 1]] and m["roc_auc"] == 1.0
    fpr, tpr = roc_curve([0, 1, 1], [-np.inf, np.inf, 0.3])
    np.testing.assert_array_equal(fpr, [0, 0, 0, 1])
    np.testing.assert_array_equal(tpr, [0, 0.5, 1, 1])
    # t=inf flags the one attack at inf and no normal: J = 1/2, the best; the score itself comes back
    assert youden_threshold([0, 1, 0, 1], [0.1, np.inf, 0.2, 0.15]) == np.inf

