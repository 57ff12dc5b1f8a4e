"""Synthetic CAN traffic shaped like the real datasets (SPEC §3).

The real datasets cannot be downloaded here, so tests, benchmarks and the
default ``dataset=synthetic`` run on traffic made by this module. It imitates
what matters to an intrusion detector: a fixed set of periodic legitimate IDs
with realistic timing noise and payload dynamics, and the four attacks at the
injection rates documented for Car-Hacking, in bursts of a few seconds between
normal-only stretches. It is not tuned to any model.

Everything is vectorised over frames (loops only run per CAN ID or per burst),
and everything random comes from one ``numpy.random.Generator``, so one seed
gives byte-identical files.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kdgat.data.frames import Frames
from kdgat.data.locate import RECORD
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

# --- the legitimate traffic ---------------------------------------------------

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
# Genuine 16-bit signals stay below SIGNAL_MAX; a masquerading attacker sends
# values from MASQUERADE_MIN up, which the real ECU never would.
SIGNAL_MAX = 0xC000
MASQUERADE_MIN = 0xD000
CLOCK_SKEW_PPM = 50.0
PHASE_WALK_S = 1e-6

# --- dataset folders ----------------------------------------------------------

FOLDERS = (
    ("train_01_attack_free", None, 0.30),
    ("train_02_with_attacks", list(ATTACKS), 0.30),
    ("test_01_dos", "dos", 0.10),
    ("test_02_fuzzing", "fuzzy", 0.10),
    ("test_03_spoofing", "spoofing", 0.10),
    ("test_04_masquerade", "masquerade", 0.10),
)
LIKE = {
    "hcrl_ch": "hcrl_csv",  # the attack-free folder is a text log, see _format_for
    "hcrl_sa": "hcrl_csv",
    "set_01": "can_train_and_test",
    "set_02": "can_train_and_test",
    "set_03": "can_train_and_test",
    "set_04": "can_train_and_test",
    "synthetic": "can_train_and_test",
}
# File names resembling the real ones, per dataset family.
FILE_NAMES = {
    "hcrl_ch": {
        "train_01_attack_free": "normal_run_data.txt",
        "train_02_with_attacks": "attack_mix_dataset.csv",
        "test_01_dos": "DoS_dataset.csv",
        "test_02_fuzzing": "Fuzzy_dataset.csv",
        "test_03_spoofing": "spoofing_dataset.csv",
        "test_04_masquerade": "masquerade_dataset.csv",
    },
    "hcrl_sa": {
        "train_01_attack_free": "FreeDrivingData_synthetic.csv",
        "train_02_with_attacks": "Mixed_dataset_synthetic.csv",
        "test_01_dos": "Flooding_dataset_synthetic.csv",
        "test_02_fuzzing": "Fuzzy_dataset_synthetic.csv",
        "test_03_spoofing": "Spoofing_dataset_synthetic.csv",
        "test_04_masquerade": "Masquerade_dataset_synthetic.csv",
    },
    "can_train_and_test": {
        "train_01_attack_free": "attack_free.csv",
        "train_02_with_attacks": "with_attacks.csv",
        "test_01_dos": "dos.csv",
        "test_02_fuzzing": "fuzzing.csv",
        "test_03_spoofing": "spoofing.csv",
        "test_04_masquerade": "masquerade.csv",
    },
}
# Unix time at which each family's captures start (roughly the real years).
EPOCH = {"hcrl_ch": 1478198376.0, "hcrl_sa": 1513728000.0, "can_train_and_test": 1672531200.0}
# Below this a dataset has too few 100-frame windows per test folder to mean anything.
MIN_DATASET_FRAMES = 5_000


# --- vehicle profile ------------------------------------------------------------


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
    cars. RPM_ID and GEAR_ID are always present (the spoofing targets), and one
    fast ID with a 16-bit signal is set aside as the masquerade target.
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
    return Profile(specs, masquerade_id=int(ids[masq]))


def _spec(can_id: int, period: float, dlc: int, fields: list[Field], rng: np.random.Generator) -> IdSpec:
    jitter = period * rng.uniform(*JITTER_FRACTION)
    return IdSpec(can_id, period, jitter, rng.normal(0, CLOCK_SKEW_PPM) * 1e-6, dlc, fields)


# --- payloads -------------------------------------------------------------------


def _reflect(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Fold a random walk back into [lo, hi] (a mirror at each bound)."""
    r = hi - lo
    y = np.mod(x - lo, 2 * r)
    return lo + np.where(y > r, 2 * r - y, y)


def _payloads(spec: IdSpec, n: int, rng: np.random.Generator) -> np.ndarray:
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
        _set_checksum(out, spec.can_id, checksum)
    return out


def _set_checksum(payload: np.ndarray, can_id: int, pos: int) -> None:
    """Checksum byte = (sum of the other bytes + both ID bytes) mod 256, in place."""
    total = payload.sum(axis=1, dtype=np.int64) - payload[:, pos] + (can_id & 0xFF) + (can_id >> 8)
    payload[:, pos] = total & 0xFF


# --- traffic ----------------------------------------------------------------------


@dataclass
class Burst:
    """One attack burst: [start, end) in the frames' own time (t0 included)."""

    kind: str
    start: float
    end: float


@dataclass
class Traffic:
    """Generated frames and how they were made (for tests and reports)."""

    frames: Frames
    bursts: list[Burst]
    profile: Profile
    spoof_id: int | None = None
    info: dict = field(default_factory=dict)


def _attack_list(attack: str | list[str] | None) -> list[str]:
    kinds = [] if attack is None else [attack] if isinstance(attack, str) else list(attack)
    bad = [k for k in kinds if k not in ATTACKS]
    if bad:
        raise KdgatError(f"unknown attack {bad[0]!r}; valid attacks: {', '.join(ATTACKS)}")
    return list(dict.fromkeys(kinds))


def _normal(profile: Profile, duration: float, rng: np.random.Generator) -> Frames:
    """Every legitimate ID on its own clock, merged in time order later."""
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
                _payloads(s, n, rng)[keep],
                np.zeros(keep.sum(), np.uint8),
            )
        )
    return Frames.concat(parts)


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


def _injected(kind: str, burst: Burst, spoof: tuple[int, int, np.ndarray], rng: np.random.Generator) -> Frames:
    """The attacker's own frames in one burst, at the attack's fixed interval."""
    interval = INJECTION_INTERVAL_S[kind]
    spoof_id, spoof_dlc, spoof_payload = spoof
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
        can_id, dlc, payload = np.full(n, spoof_id), np.full(n, spoof_dlc), np.tile(spoof_payload, (n, 1))
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
            _set_checksum(sub, spec.can_id, f.pos)
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

    normal = _normal(profile, duration, rng)
    bursts = _schedule(kinds, duration, fraction, rng)
    spoof_id = SPOOF_TARGETS[int(rng.integers(0, len(SPOOF_TARGETS)))]
    # A plausible-looking payload of the target, frozen for every injected frame.
    spoof_spec = profile.spec(spoof_id)
    spoof = (spoof_id, spoof_spec.dlc, _payloads(spoof_spec, 1, rng)[0])
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
    bursts = [Burst(b.kind, b.start + t0, b.end + t0) for b in bursts]
    return Traffic(frames, bursts, profile, spoof_id if "spoofing" in kinds else None, {"duration_s": float(duration)})


def generate_frames(n_frames: int, attack: str | list[str] | None, rng: np.random.Generator, **kwargs) -> Frames:
    """About n_frames frames sorted by time; attack None is attack-free traffic.

    attack is one of ATTACKS or a list of them (one kind per burst). Keyword
    arguments go to generate_traffic (profile, t0, attack_fraction).
    """
    return generate_traffic(n_frames, attack, rng, **kwargs).frames


# --- dataset folders ---------------------------------------------------------------


def _format_for(like: str, folder: str) -> str:
    # The real Car-Hacking attack-free capture is a text log, not a CSV.
    if like == "hcrl_ch" and folder == "train_01_attack_free":
        return "hcrl_log"
    return LIKE[like]


def _family(like: str) -> str:
    return like if like in ("hcrl_ch", "hcrl_sa") else "can_train_and_test"


def dataset_files(like: str = "synthetic") -> dict[str, tuple[str, str]]:
    """folder -> (file name, format) of a generated dataset like `like`."""
    if like not in LIKE:
        raise KdgatError(f"unknown dataset style {like!r}; valid: {', '.join(LIKE)}")
    names = FILE_NAMES[_family(like)]
    return {folder: (names[folder], _format_for(like, folder)) for folder, _, _ in FOLDERS}


def generate(
    out: Path,
    like: str = "synthetic",
    frames: int = 200_000,
    seed: int = 0,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write a whole dataset folder (train and test folders) and return its path.

    One vehicle profile for the whole dataset, one seeded stream per file, so
    the same arguments give byte-identical files. Written into a temporary
    sibling and renamed into place at the end: a killed run leaves no half
    dataset at `out`.
    """
    from tqdm import tqdm

    from kdgat.data.formats import write_frames

    files = dataset_files(like)
    if frames < MIN_DATASET_FRAMES:
        raise KdgatError(f"frames={frames} is too small for a dataset; use at least {MIN_DATASET_FRAMES}")
    out = Path(out).absolute()
    if out.exists() and not out.is_dir():
        raise KdgatError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise KdgatError(f"{out} already exists and is not empty; pass overwrite=True to replace it")

    streams = np.random.SeedSequence(seed).spawn(len(FOLDERS) + 1)
    profile = make_profile(np.random.default_rng(streams[0]))
    epoch = EPOCH[_family(like)]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        bar = tqdm(FOLDERS, desc=f"synthetic {like}", unit="file", disable=not progress)
        for i, (folder, attack, share) in enumerate(bar):
            name, fmt = files[folder]
            bar.set_postfix_str(f"{folder}/{name}")
            rng = np.random.default_rng(streams[i + 1])
            data = generate_frames(round(frames * share), attack, rng, profile=profile, t0=epoch + 86_400.0 * i)
            (tmp / folder).mkdir()
            write_frames(tmp / folder / name, data, fmt)
        # What it was made with, so that a later run asking for other settings notices.
        (tmp / RECORD).write_text(json.dumps({"like": like, "frames": frames, "seed": seed}) + "\n")
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _replace(tmp: Path, out: Path) -> None:
    """Move the finished folder to `out`, setting any old one aside until the move is done."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        if old is not None:
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
