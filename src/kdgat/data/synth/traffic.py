"""Synthetic captures: a vehicle's normal traffic with the four Car-Hacking attacks injected in bursts.

The attacks come at the injection rates documented for Car-Hacking, in
bursts of a few seconds between normal-only stretches. It is not tuned to
any model. One ``numpy.random.Generator`` drives everything, so one seed
gives identical frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kdgat.data.frames import Frames
from kdgat.data.synth.vehicle import Profile, make_profile, normal_frames, payloads, set_checksum
from kdgat.errors import KdgatError

# --- attack definitions (Car-Hacking injection rates) ------------------------

ATTACKS = ("dos", "fuzzy", "spoofing", "masquerade")
DOS_ID = 0x000
DOS_PAYLOAD = bytes(8)
DOS_INTERVAL_S = 0.3e-3
FUZZY_INTERVAL_S = 0.5e-3
SPOOF_INTERVAL_S = 1.0e-3
MAX_CAN_ID = 0x7FF
# Injection interval per attack; masquerade replaces frames, it adds none.
INJECTION_INTERVAL_S = {"dos": DOS_INTERVAL_S, "fuzzy": FUZZY_INTERVAL_S, "spoofing": SPOOF_INTERVAL_S}
# Injected frames are not perfectly regular either: relative jitter of the gap.
INJECTION_JITTER = 0.02

# Bursts last a few seconds when the file is long enough; shorter files get
# proportionally shorter bursts so that every file still holds some.
BURST_S = (2.0, 5.0)
# Share of a file's time spent inside attack bursts.
ATTACK_TIME_FRACTION = 0.25
# Genuine 16-bit signals stay below vehicle.SIGNAL_MAX; a masquerading attacker sends
# values from MASQUERADE_MIN up, which the real ECU never would.
MASQUERADE_MIN = 0xD000


@dataclass
class Burst:
    """One attack burst: [start, end) in the frames' own time (t0 included); a spoofing burst's target ID."""

    kind: str
    start: float
    end: float
    target: int | None = None


@dataclass
class Traffic:
    """Generated frames and how they were made (for tests and reports)."""

    frames: Frames
    bursts: list[Burst]
    profile: Profile
    info: dict = field(default_factory=dict)

    @property
    def spoof_ids(self) -> list[int]:
        """The IDs its spoofing bursts target, in the order first used."""
        return list(dict.fromkeys(b.target for b in self.bursts if b.kind == "spoofing"))


def _attack_list(attack: str | list[str] | None) -> list[str]:
    kinds = [] if attack is None else [attack] if isinstance(attack, str) else list(attack)
    bad = [k for k in kinds if k not in ATTACKS]
    if bad:
        raise KdgatError(f"unknown attack {bad[0]!r}; valid attacks: {', '.join(ATTACKS)}")
    return list(dict.fromkeys(kinds))



def _schedule(kinds: list[str], duration: float, fraction: float, rng: np.random.Generator) -> list[Burst]:
    """Bursts of a few seconds, each in its own slice of the timeline between normal-only gaps.

    Each kind gets the same number of bursts, in shuffled order; the bursts
    fill `fraction` of the time.
    """
    if not kinds:
        return []
    rounds = max(1, int(np.ceil(fraction * duration / BURST_S[1] / len(kinds))))
    order = np.array(kinds * rounds)[rng.permutation(rounds * len(kinds))]
    w = rng.uniform(*BURST_S, len(order))
    lengths = w * (fraction * duration / w.sum())
    slot = duration / len(order)
    starts = np.arange(len(order)) * slot + rng.uniform(0.1, 0.9, len(order)) * (slot - lengths)
    return [Burst(str(k), float(a), float(a + b)) for k, a, b in zip(order, starts, lengths)]


def _injected(kind: str, burst: Burst, spoof: dict[int, tuple[int, np.ndarray]], rng: np.random.Generator) -> Frames:
    """The attacker's own frames in one burst, at the attack's fixed interval."""
    interval = INJECTION_INTERVAL_S[kind]
    n = max(1, int((burst.end - burst.start) / interval))
    gaps = interval * (1 + INJECTION_JITTER * rng.standard_normal(n))
    t = burst.start + interval * rng.random() + np.cumsum(gaps) - gaps[0]
    t = t[t < burst.end]
    n = len(t)
    if kind == "dos":
        can_id, dlc, payload = np.full(n, DOS_ID), np.full(n, 8), np.zeros((n, 8), np.uint8)
    elif kind == "fuzzy":
        can_id, dlc = rng.integers(0, MAX_CAN_ID + 1, n), np.full(n, 8)
        payload = rng.integers(0, 256, (n, 8), dtype=np.uint8)
    else:
        spoof_dlc, spoof_payload = spoof[burst.target]
        can_id, dlc, payload = np.full(n, burst.target), np.full(n, spoof_dlc), np.tile(spoof_payload, (n, 1))
    return Frames(t, can_id.astype(np.int32), dlc.astype(np.uint8), payload, np.ones(n, np.uint8))


def _masquerade(frames: Frames, profile: Profile, burst: Burst, rng: np.random.Generator) -> None:
    """Replace the target ID's frames inside the burst, in place: same times, altered signal.

    The attacker keeps the rolling counter and a valid checksum, and holds the
    16-bit signal at a value outside anything the genuine ECU sends.
    """
    spec = profile.spec(profile.masquerade_id)
    sig = next(f for f in spec.fields if f.kind == "sig16")
    rows = (frames.can_id == spec.can_id) & (frames.timestamp >= burst.start) & (frames.timestamp < burst.end)
    value = int(rng.integers(MASQUERADE_MIN, 0x10000))
    frames.payload[rows, sig.pos] = value >> 8
    frames.payload[rows, sig.pos + 1] = value & 0xFF
    for f in spec.fields:
        if f.kind == "checksum":
            sub = frames.payload[rows]
            set_checksum(sub, spec.can_id, f.pos)
            frames.payload[rows] = sub
    frames.label[rows] = 1


def generate_traffic(
    n_frames: int,
    attack: str | list[str] | None,
    rng: np.random.Generator,
    *,
    profile: Profile | None = None,
    t0: float = 0.0,
    attack_fraction: float = ATTACK_TIME_FRACTION,
) -> Traffic:
    """About n_frames frames of one capture, with the bursts that were injected.

    The duration is chosen so that normal plus injected frames come to about
    n_frames. Legitimate traffic is drawn before anything attack-specific, so
    with the same rng state a masquerade capture has exactly the normal
    capture's timestamps and IDs (masquerade adds no frames).
    """
    if n_frames <= 0:
        raise KdgatError(f"n_frames must be positive, got {n_frames}")
    kinds = _attack_list(attack)
    if not 0 <= attack_fraction < 1:
        raise KdgatError(f"attack_fraction must be in [0, 1), got {attack_fraction}")
    profile = profile if profile is not None else make_profile(rng)
    fraction = attack_fraction if kinds else 0.0
    extra = np.mean([1 / INJECTION_INTERVAL_S[k] if k in INJECTION_INTERVAL_S else 0.0 for k in kinds]) if kinds else 0
    duration = n_frames / (profile.rate + fraction * extra)

    normal = normal_frames(profile, duration, rng)
    bursts = _schedule(kinds, duration, fraction, rng)
    # Spoofing bursts take the vehicle's targets in turn, in its order, as Car-Hacking spoofs both the gear and
    # the RPM: every capture with two spoofing bursts or more spoofs each target, and captures with one spoof the
    # same. (A target drawn per file made the training file spoof one ID and the test file the other whenever
    # the two draws differed, which depended on the file sizes.)
    spoofing = [b for b in bursts if b.kind == "spoofing"]
    for k, b in enumerate(spoofing):
        b.target = profile.spoof_targets[k % len(profile.spoof_targets)]
    # A plausible-looking payload of each target, frozen for every frame injected with its ID.
    spoof = {}
    for can_id in profile.spoof_targets:
        spec = profile.spec(can_id)
        spoof[can_id] = (spec.dlc, payloads(spec, 1, rng)[0])
    parts = [normal]
    for b in bursts:
        if b.kind == "masquerade":
            _masquerade(normal, profile, b, rng)
        else:
            parts.append(_injected(b.kind, b, spoof, rng))
    frames = Frames.concat(parts)
    order = np.argsort(frames.timestamp, kind="stable")
    frames = frames.take(order)
    # Microsecond timestamps, like the real captures, so files round-trip exactly.
    frames.timestamp = np.round(frames.timestamp + t0, 6)
    bursts = [Burst(b.kind, b.start + t0, b.end + t0, b.target) for b in bursts]
    return Traffic(frames, bursts, profile, {"duration_s": float(duration)})


def generate_frames(n_frames: int, attack: str | list[str] | None, rng: np.random.Generator, **kwargs) -> Frames:
    """About n_frames frames sorted by time; attack None is attack-free traffic.

    attack is one of ATTACKS or a list of them (one kind per burst). Keyword
    arguments go to generate_traffic (profile, t0, attack_fraction).
    """
    return generate_traffic(n_frames, attack, rng, **kwargs).frames

