"""A synthetic vehicle: its legitimate CAN ids, their timing and payload signals, and its normal traffic.

It imitates what matters to an intrusion detector: a fixed set of periodic
ids with realistic timing noise (jitter, clock skew, a slow phase walk) and
payload dynamics (counters, signals, checksums, constants). Everything is
vectorised over frames (loops run per id only), and everything random comes
from the caller's ``numpy.random.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kdgat.data.frames import Frames

N_IDS = (30, 60)
# Candidate periods (s) and how often each is drawn: most 10-100 ms.
PERIODS_S = (0.010, 0.020, 0.050, 0.100, 0.200, 0.500, 1.000)
PERIOD_WEIGHTS = (0.30, 0.20, 0.20, 0.15, 0.07, 0.05, 0.03)
# Total legitimate frame rate of a profile, like a real car on a 500 kbit/s bus.
NORMAL_RATE_HZ = (1500.0, 2500.0)
# Two IDs modelled on Car-Hacking's spoofing targets: RPM and gear.
RPM_ID = 0x316
GEAR_ID = 0x43F
SPOOF_TARGETS = (RPM_ID, GEAR_ID)
# Timing noise: Gaussian jitter as a fraction of the period, clock skew in
# parts per million, and a slow random walk of the phase (s per frame).
JITTER_FRACTION = (0.002, 0.02)
# Genuine 16-bit signals stay below SIGNAL_MAX (a masquerading attacker sends more: kdgat.data.synth.traffic).
SIGNAL_MAX = 0xC000
CLOCK_SKEW_PPM = 50.0
PHASE_WALK_S = 1e-6


@dataclass
class Field:
    """One signal inside a payload.

    kind: "const" (fixed byte), "counter4"/"counter8" (rolling counter in the
    low nibble / whole byte), "sig16" (big-endian 16-bit random walk in
    [lo, hi], like RPM or speed), "sig8" (8-bit random walk), "state" (small
    integer that changes rarely, like a gear), "checksum" (sum of the other
    bytes and the ID, mod 256).
    """

    kind: str
    pos: int
    lo: int = 0
    hi: int = 0
    step: float = 0.0
    value: int = 0


@dataclass
class IdSpec:
    """One legitimate CAN ID: its timing and its payload layout."""

    can_id: int
    period: float
    jitter: float
    skew: float
    dlc: int
    fields: list[Field]


@dataclass
class Profile:
    """The legitimate traffic of one synthetic vehicle."""

    ids: list[IdSpec]
    masquerade_id: int
    spoof_targets: tuple[int, ...] = SPOOF_TARGETS  # the order in which spoofing bursts take them

    @property
    def rate(self) -> float:
        return float(sum(1.0 / s.period for s in self.ids))

    def spec(self, can_id: int) -> IdSpec:
        return next(s for s in self.ids if s.can_id == can_id)


def _fields(dlc: int, rng: np.random.Generator, signal_first: bool = False) -> list[Field]:
    """A plausible payload layout for dlc bytes: counters, signals, checksum, constants."""
    free = list(range(dlc))
    out: list[Field] = []
    if dlc >= 4 and rng.random() < 0.4:
        out.append(Field("checksum", free.pop()))
    if signal_first or (len(free) >= 2 and rng.random() < 0.7):
        # free is still contiguous here, so any two neighbours make a 16-bit field.
        j = 0 if signal_first else int(rng.integers(0, len(free) - 1))
        lo = int(rng.integers(0, 0x4000))
        hi = int(rng.integers(lo + 0x1000, SIGNAL_MAX))
        out.append(Field("sig16", free[j], lo, hi, (hi - lo) * rng.uniform(0.001, 0.005)))
        del free[j : j + 2]
    if free and rng.random() < 0.5:
        out.append(Field("counter4" if rng.random() < 0.5 else "counter8", free.pop(int(rng.integers(0, len(free))))))
    if free and rng.random() < 0.4:
        lo = int(rng.integers(0, 0x80))
        out.append(Field("sig8", free.pop(int(rng.integers(0, len(free)))), lo, lo + 0x7F, rng.uniform(0.2, 1.0)))
    if free and rng.random() < 0.3:
        pos = free.pop(int(rng.integers(0, len(free))))
        out.append(Field("state", pos, 0, int(rng.integers(2, 8)), rng.uniform(0.002, 0.02)))
    for pos in free:
        # Real payloads are full of 0x00 and 0xFF padding.
        r = rng.random()
        out.append(Field("const", pos, value=0 if r < 0.4 else 0xFF if r < 0.5 else int(rng.integers(0, 256))))
    return out


def make_profile(rng: np.random.Generator) -> Profile:
    """A seeded vehicle: 30-60 IDs whose periods add up to 1,500-2,500 frames/s.

    Lower IDs (higher bus priority) tend to get the shorter periods, as in real
    cars. RPM_ID and GEAR_ID are always present (the spoofing targets, taken by
    spoofing bursts in an order drawn here), and one fast ID with a 16-bit
    signal is set aside as the masquerade target.
    """
    while True:
        n = int(rng.integers(N_IDS[0], N_IDS[1] + 1)) - 2
        periods = rng.choice(PERIODS_S, size=n, p=PERIOD_WEIGHTS)
        rate = float(np.sum(1.0 / periods)) + 1 / 0.010 + 1 / 0.020
        if NORMAL_RATE_HZ[0] <= rate <= NORMAL_RATE_HZ[1] and np.sum(periods <= 0.020) >= 1:
            break
    pool = np.setdiff1d(np.arange(0x040, 0x7F0), SPOOF_TARGETS)
    ids = np.sort(rng.choice(pool, size=n, replace=False))
    # Sort periods by ID with some noise in the ranking.
    periods = np.sort(periods)[np.argsort(np.argsort(np.arange(n) + rng.normal(0, n / 6, n)))]
    fast = [i for i in range(n) if periods[i] <= 0.020]
    masq = fast[int(rng.integers(0, len(fast)))]

    specs = []
    for i in range(n):
        dlc = 8 if (i == masq or rng.random() < 0.7) else int(rng.integers(2, 8))
        specs.append(_spec(int(ids[i]), float(periods[i]), dlc, _fields(dlc, rng, signal_first=i == masq), rng))
    rpm = [Field("counter4", 0), Field("const", 1, value=0x21), Field("sig16", 2, 0x0800, 0x6000, 40.0)]
    rpm += [Field("const", p, value=v) for p, v in ((4, 0x21), (5, 0x21), (6, 0x00))] + [Field("checksum", 7)]
    gear = [Field("const", 0, value=0x10), Field("state", 1, 0, 6, 0.004), Field("sig8", 2, 0x20, 0x9F, 0.5)]
    gear += [Field("const", p, value=0) for p in range(3, 7)] + [Field("counter8", 7)]
    specs += [_spec(RPM_ID, 0.010, 8, rpm, rng), _spec(GEAR_ID, 0.020, 8, gear, rng)]
    specs.sort(key=lambda s: s.can_id)
    order = tuple(int(SPOOF_TARGETS[i]) for i in rng.permutation(len(SPOOF_TARGETS)))
    return Profile(specs, masquerade_id=int(ids[masq]), spoof_targets=order)


def _spec(can_id: int, period: float, dlc: int, fields: list[Field], rng: np.random.Generator) -> IdSpec:
    jitter = period * rng.uniform(*JITTER_FRACTION)
    return IdSpec(can_id, period, jitter, rng.normal(0, CLOCK_SKEW_PPM) * 1e-6, dlc, fields)


# --- payloads -------------------------------------------------------------------


def _reflect(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Fold a random walk back into [lo, hi] (a mirror at each bound)."""
    r = hi - lo
    y = np.mod(x - lo, 2 * r)
    return lo + np.where(y > r, 2 * r - y, y)


def payloads(spec: IdSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """n consecutive payloads of one ID, (n, 8) uint8, bytes past the DLC zero."""
    out = np.zeros((n, 8), np.uint8)
    checksum = None
    for f in spec.fields:
        if f.kind == "const":
            out[:, f.pos] = f.value
        elif f.kind in ("counter4", "counter8"):
            c = int(rng.integers(0, 256)) + np.arange(n)
            out[:, f.pos] = (c & 0x0F) if f.kind == "counter4" else (c & 0xFF)
        elif f.kind in ("sig16", "sig8"):
            walk = rng.uniform(f.lo, f.hi) + np.cumsum(rng.normal(0, f.step, n))
            v = np.rint(_reflect(walk, f.lo, f.hi)).astype(np.int64)
            if f.kind == "sig16":
                out[:, f.pos], out[:, f.pos + 1] = v >> 8, v & 0xFF
            else:
                out[:, f.pos] = v
        elif f.kind == "state":
            moves = (rng.random(n) < f.step) * rng.choice((-1, 1), n)
            v = _reflect(int(rng.integers(f.lo, f.hi + 1)) + np.cumsum(moves), f.lo, f.hi)
            out[:, f.pos] = v.astype(np.int64)
        elif f.kind == "checksum":
            checksum = f.pos
    if checksum is not None:
        set_checksum(out, spec.can_id, checksum)
    return out


def set_checksum(payload: np.ndarray, can_id: int, pos: int) -> None:
    """Checksum byte = (sum of the other bytes + both ID bytes) mod 256, in place."""
    total = payload.sum(axis=1, dtype=np.int64) - payload[:, pos] + (can_id & 0xFF) + (can_id >> 8)
    payload[:, pos] = total & 0xFF


def normal_frames(profile: Profile, duration: float, rng: np.random.Generator) -> Frames:
    """``duration`` seconds of every legitimate ID on its own clock, id after id (the caller sorts by time)."""
    parts = []
    for s in profile.ids:
        phase = rng.uniform(0, s.period)
        n = int(np.floor((duration - phase) / (s.period * (1 + s.skew)))) + 1
        if n <= 0:
            continue
        k = np.arange(n)
        drift = np.cumsum(rng.normal(0, PHASE_WALK_S, n))
        t = np.sort(phase + k * s.period * (1 + s.skew) + drift + rng.normal(0, s.jitter, n))
        keep = (t >= 0) & (t < duration)
        parts.append(
            Frames(
                t[keep],
                np.full(keep.sum(), s.can_id, np.int32),
                np.full(keep.sum(), s.dlc, np.uint8),
                payloads(s, n, rng)[keep],
                np.zeros(keep.sum(), np.uint8),
            )
        )
    return Frames.concat(parts)

