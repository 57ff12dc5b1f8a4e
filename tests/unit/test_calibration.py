"""kdgat.calibration: the map from raw anomaly scores to [0, 1] that the fusion stage reads."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kdgat.calibration import Calibration, calibrate
from kdgat.metrics import binary_metrics, youden_threshold


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
