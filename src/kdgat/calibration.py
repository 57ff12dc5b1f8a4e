"""Calibration of a raw anomaly score to [0, 1]: 0.5 exactly at the Youden threshold, monotone.

The fusion stage feeds the VGAE's score to its agent next to the GAT's attack
probability, so the score must lie in [0, 1], and "calibrated >= 0.5" must be
the VGAE's own Youden detector. Fitted on the validation split by
:func:`calibrate`; saved with the VGAE as :meth:`Calibration.to_dict`.

Why not sklearn's calibrators: on a validation split like the VGAE's (3000
normal windows, 30 attacks, a heavy-tailed score) IsotonicRegression maps the
3030 distinct scores to 9 values, losing their ranking, and neither it nor
Platt's logistic on the raw score (CalibratedClassifierCV's "sigmoid", 0.01 at
the threshold) makes "p >= 0.5" the Youden detector. This one fits a logistic on
the scores' ranks either side of the threshold with the threshold pinned at 0.5,
and Platt's smoothed targets keep its slope finite when a few attack windows
separate perfectly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from kdgat.metrics import as_labels, as_scores, youden_threshold

__all__ = ["Calibration", "calibrate"]

_MIN_SLOPE = 1e-3  # keeps the map strictly increasing even for useless scores
_DEFAULT_SLOPE = 4.0  # when the fit split carries no information: [-1, 1] -> [0.018, 0.982]
_RIDGE = 1e-6  # tiny L2 penalty on the slope, for numerical safety only
_MAX_KNOTS_PER_SIDE = 257  # 256 rank intervals below and above the threshold
_METHOD = "rank_logistic"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # 0.5 * (1 + tanh(x/2)) is overflow-free, monotone and exactly 0.5 at 0
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _robust_scale(s: np.ndarray) -> float:
    """1.4826 * MAD, else the standard deviation, else 1."""
    med = float(np.median(s))
    mad = 1.4826 * float(np.median(np.abs(s - med)))
    if mad > 0 and math.isfinite(mad):
        return mad
    sd = float(np.std(s))
    if sd > 0 and math.isfinite(sd):
        return sd
    return 1.0


def _side_knots(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct sorted ``values`` and the mid-rank (0-based) of each."""
    u, counts = np.unique(values, return_counts=True)
    ends = np.cumsum(counts)
    mid = (ends - counts + ends - 1) / 2.0
    return u, mid


def _thin(x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At most _MAX_KNOTS_PER_SIDE knots, always keeping both ends."""
    if x.size <= _MAX_KNOTS_PER_SIDE:
        return x, z
    idx = np.unique(np.round(np.linspace(0, x.size - 1, _MAX_KNOTS_PER_SIDE)).astype(np.int64))
    return x[idx], z[idx]


def _rank_knots(s: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Knots (x, z) of the piecewise-linear rank axis: z = -1 at the smallest
    fit score, 0 at the threshold, +1 at the largest; in between, linear in
    the mid-rank among the fit scores on that side of the threshold."""
    lower = s[s < threshold]
    upper = s[s >= threshold]
    # below: the scores under the threshold plus the threshold itself
    xl, ml = _side_knots(np.r_[lower, threshold])
    zl = (ml - ml[-1]) / (ml[-1] - ml[0]) if xl.size > 1 else np.zeros(1)
    # above: the scores at or over the threshold (the threshold is one of them)
    xu, mu = _side_knots(upper)
    zu = (mu - mu[0]) / (mu[-1] - mu[0]) if xu.size > 1 else np.zeros(1)
    xl, zl = _thin(xl, zl)
    xu, zu = _thin(xu, zu)
    x = np.r_[xl[:-1], xu]
    z = np.r_[zl[:-1], zu]
    z[x == threshold] = 0.0  # exact, whatever the rounding above
    return x.astype(np.float64), z.astype(np.float64)


@dataclass(frozen=True)
class Calibration:
    """Monotone map from raw anomaly scores to [0, 1], fitted by :func:`calibrate`:

        p(s) = sigmoid(slope * z(s))

    where z is a piecewise-linear *rank axis* through the knots
    (``knots_x``, ``knots_z``): z = 0 exactly at ``threshold`` (the fit split's
    Youden threshold), z falls to -1 at the smallest fit score and rises to +1
    at the largest, linearly in the rank of the fit scores on each side (so a
    heavy-tailed score, e.g. a reconstruction error, is no problem). Beyond
    the fitted range z continues linearly with slope 1/``scale``, so unseen
    extreme scores still map strictly further towards 0 or 1.

    Guarantees: p(threshold) = 0.5 and ``p(s) >= 0.5`` iff ``s >= threshold``
    exactly (enforced, not left to rounding), so thresholding the calibrated
    score at 0.5 is the same detector as thresholding the raw score at
    Youden's J; p is non-decreasing (strictly increasing up to float
    saturation); values lie in [0, 1]; +inf maps to 1, -inf to 0; NaN raises.
    """

    threshold: float
    slope: float
    scale: float
    knots_x: tuple[float, ...]
    knots_z: tuple[float, ...]
    n_fit: int = 0
    positives_fit: int = 0
    method: str = _METHOD

    def __post_init__(self) -> None:
        for name in ("threshold", "scale", "slope"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"Calibration.{name} must be a finite number, got {v!r}")
        if self.scale <= 0 or self.slope <= 0:
            raise ValueError(f"Calibration scale and slope must be > 0, got {self.scale!r}, {self.slope!r}")
        if self.method != _METHOD:
            raise ValueError(f"unknown calibration method {self.method!r} (known: {_METHOD!r})")
        x = np.asarray(self.knots_x, dtype=np.float64)
        z = np.asarray(self.knots_z, dtype=np.float64)
        if x.ndim != 1 or x.size == 0 or x.shape != z.shape:
            raise ValueError(f"Calibration knots must be two non-empty lists of equal length, got {x.shape} and {z.shape}")
        if not (np.isfinite(x).all() and np.isfinite(z).all()):
            raise ValueError("Calibration knots must be finite")
        if np.any(np.diff(x) <= 0) or np.any(np.diff(z) <= 0):
            raise ValueError("Calibration knots must be strictly increasing")
        hit = np.flatnonzero(x == self.threshold)
        if hit.size != 1 or z[hit[0]] != 0.0:
            raise ValueError("Calibration knots must pass through (threshold, 0)")
        object.__setattr__(self, "knots_x", tuple(float(v) for v in x))
        object.__setattr__(self, "knots_z", tuple(float(v) for v in z))

    def rank_axis(self, scores: Any) -> np.ndarray:
        """z(s): the piecewise-linear rank axis before the logistic."""
        s = np.asarray(scores, dtype=np.float64)
        if np.isnan(s).any():
            raise ValueError(f"cannot calibrate NaN scores ({int(np.isnan(s).sum())} of {s.size})")
        x = np.asarray(self.knots_x)
        zk = np.asarray(self.knots_z)
        z = np.interp(s, x, zk)
        with np.errstate(over="ignore", invalid="ignore"):
            z = np.where(s < x[0], zk[0] - (x[0] - s) / self.scale, z)
            z = np.where(s > x[-1], zk[-1] + (s - x[-1]) / self.scale, z)
        return z

    def __call__(self, scores: Any) -> np.ndarray:
        s = np.asarray(scores, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            p = _sigmoid(self.slope * self.rank_axis(s))
        # make "p >= 0.5 iff s >= threshold" exact despite rounding near the threshold
        p = np.where(s >= self.threshold, np.maximum(p, 0.5), np.minimum(p, np.nextafter(0.5, 0.0)))
        return np.clip(p, 0.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "threshold": float(self.threshold),
            "slope": float(self.slope),
            "scale": float(self.scale),
            "knots_x": [float(v) for v in self.knots_x],
            "knots_z": [float(v) for v in self.knots_z],
            "n_fit": int(self.n_fit),
            "positives_fit": int(self.positives_fit),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Calibration":
        missing = [k for k in ("threshold", "slope", "scale", "knots_x", "knots_z") if k not in d]
        if missing:
            raise ValueError(f"calibration dict lacks {missing}; got keys {sorted(d)}")
        return cls(
            threshold=float(d["threshold"]),
            slope=float(d["slope"]),
            scale=float(d["scale"]),
            knots_x=tuple(float(v) for v in d["knots_x"]),
            knots_z=tuple(float(v) for v in d["knots_z"]),
            n_fit=int(d.get("n_fit", 0)),
            positives_fit=int(d.get("positives_fit", 0)),
            method=str(d.get("method", _METHOD)),
        )


def _fit_slope(z: np.ndarray, y: np.ndarray) -> float:
    """Maximise the Platt-smoothed log-likelihood of sigmoid(a*z) over a.

    Targets are Platt's (P+1)/(P+2) for attacks and 1/(N+2) for normals, so the
    optimum is finite even for perfectly separated scores. The objective is
    concave in a: Newton steps with step halving, from a = 1.
    """
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    t = np.where(y == 1, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))

    def objective(a: float) -> float:
        x = a * z
        # t*log(sigmoid(x)) + (1-t)*log(1-sigmoid(x)) = t*x - log(1+e^x)
        return float(np.sum(t * x - np.logaddexp(0.0, x))) - 0.5 * _RIDGE * a * a

    a = 1.0
    f = objective(a)
    for _ in range(100):
        p = _sigmoid(a * z)
        g = float(np.sum(z * (t - p))) - _RIDGE * a
        h = float(np.sum(z * z * p * (1.0 - p))) + _RIDGE  # minus the 2nd derivative
        step = g / h
        for _ in range(60):
            new_a = a + step
            new_f = objective(new_a)
            if new_f >= f:
                break
            step *= 0.5
        else:
            break  # no ascent possible: at the optimum to float precision
        done = abs(new_a - a) <= 1e-10 * max(1.0, abs(a))
        a, f = new_a, new_f
        if done:
            break
    if not math.isfinite(a):
        return _DEFAULT_SLOPE
    return max(a, _MIN_SLOPE)


def calibrate(scores_fit: Any, labels_fit: Any) -> Calibration:
    """Fit a :class:`Calibration` of raw scores on a labelled (validation) split.

    1. threshold = :func:`youden_threshold` (labels_fit, scores_fit);
    2. the rank axis z: knots at the distinct fit scores (at most 257 per side
       of the threshold, evenly spaced in rank), z = -1 .. 0 for the scores
       below the threshold and 0 .. +1 for those at or above it, by mid-rank;
       beyond the fitted range z continues with slope 1/scale, scale =
       1.4826 * median absolute deviation of the fit scores (else their
       standard deviation, else 1);
    3. slope: a one-parameter logistic fit p = sigmoid(slope * z), centred on
       the threshold by construction, by Newton's method on the
       log-likelihood with Platt's smoothed targets; clamped to >= 1e-3 so
       the map stays increasing.

    Robustness: with constant scores or only one class the slope cannot be
    fitted and is set to 4 (the threshold still follows Youden's rule for
    degenerate inputs; constant scores give a single knot, and z is then
    (s - threshold)/scale). Non-finite fit scores raise ``ValueError``.
    """
    y = as_labels(labels_fit)
    s = as_scores(scores_fit, y.shape[0], name="scores_fit")
    if s.size == 0:
        raise ValueError("calibrate needs at least one score")
    if not np.isfinite(s).all():
        raise ValueError(f"calibrate: scores_fit contain {int((~np.isfinite(s)).sum())} infinite values")
    threshold = youden_threshold(y, s)
    scale = _robust_scale(s)
    kx, kz = _rank_knots(s, threshold)
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == y.size or kx.size == 1:
        slope = _DEFAULT_SLOPE
    else:
        z = np.interp(s, kx, kz)
        slope = _fit_slope(z, y)
    return Calibration(threshold=threshold, slope=float(slope), scale=scale, knots_x=tuple(kx), knots_z=tuple(kz),
                       n_fit=int(y.size), positives_fit=n_pos)
