"""Synthetic CAN traffic: attack definitions, normal-traffic shape, dataset folders."""

from __future__ import annotations

from pathlib import Path

import json

import numpy as np
import pytest

from kdgat.data import synth
from kdgat.data.frames import Frames
from kdgat.data.synth.traffic import (
    ATTACKS, DOS_ID, DOS_INTERVAL_S, FUZZY_INTERVAL_S, MAX_CAN_ID, SPOOF_INTERVAL_S, Traffic, generate_frames,
    generate_traffic,
)
from kdgat.data.synth.vehicle import N_IDS, NORMAL_RATE_HZ, SPOOF_TARGETS, make_profile
from kdgat.data.synth_record import GENERATOR, RECORD
from kdgat.errors import KdgatError


def traffic(n: int, attack, seed: int = 0, **kw) -> Traffic:
    return generate_traffic(n, attack, np.random.default_rng(seed), **kw)


def frames_equal(a: Frames, b: Frames) -> bool:
    return all(
        np.array_equal(getattr(a, c), getattr(b, c)) for c in ("timestamp", "can_id", "dlc", "payload", "label")
    )


def injected_gaps(f: Frames) -> np.ndarray:
    """Inter-arrival times of consecutive injected frames, inside bursts only."""
    gaps = np.diff(f.timestamp[f.label == 1])
    return gaps[gaps < 0.05]


# --- generation -------------------------------------------------------------------


def test_same_seed_same_frames_other_seed_other_frames():
    a = generate_frames(20_000, list(ATTACKS), np.random.default_rng(3))
    b = generate_frames(20_000, list(ATTACKS), np.random.default_rng(3))
    c = generate_frames(20_000, list(ATTACKS), np.random.default_rng(4))
    assert frames_equal(a, b)
    assert not (len(a) == len(c) and frames_equal(a, c))


@pytest.mark.parametrize("attack", [None, *ATTACKS, list(ATTACKS)])
def test_sorted_about_n_frames_and_well_formed(attack):
    f = generate_frames(30_000, attack, np.random.default_rng(1))
    assert np.all(np.diff(f.timestamp) >= 0)
    assert abs(len(f) - 30_000) < 0.05 * 30_000
    assert f.can_id.min() >= 0 and f.can_id.max() <= MAX_CAN_ID
    assert f.dlc.max() <= 8
    past_dlc = np.arange(8)[None, :] >= f.dlc[:, None]
    assert not f.payload[past_dlc].any(), "bytes past the DLC must be zero"
    assert (f.label.sum() > 0) == (attack is not None)


def test_unknown_attack_is_an_error_listing_valid_ones():
    with pytest.raises(KdgatError, match="masquerade"):
        generate_frames(1000, "replay", np.random.default_rng(0))


def test_normal_traffic_is_periodic_per_id_at_a_car_like_rate():
    t = traffic(40_000, None, seed=5)
    f, profile = t.frames, t.profile
    assert N_IDS[0] <= len(profile.ids) <= N_IDS[1]
    rate = len(f) / (f.timestamp[-1] - f.timestamp[0])
    assert NORMAL_RATE_HZ[0] * 0.95 <= rate <= NORMAL_RATE_HZ[1] * 1.05
    assert set(np.unique(f.can_id)) == {s.can_id for s in profile.ids}
    assert np.mean([s.dlc == 8 for s in profile.ids]) > 0.5
    for s in profile.ids:
        mine = f.can_id == s.can_id
        assert np.all(f.dlc[mine] == s.dlc)
        gaps = np.diff(f.timestamp[mine])
        if len(gaps) < 5:
            continue
        assert np.median(gaps) == pytest.approx(s.period, rel=0.02)
        assert gaps.std() < 0.1 * s.period, f"{s.can_id:#x} is not periodic"
    # Payloads move: some byte columns vary, and not every ID is constant.
    varying = [np.ptp(f.payload[f.can_id == s.can_id], axis=0).any() for s in profile.ids]
    assert np.mean(varying) > 0.5


def test_dos_floods_id_zero_with_zero_payload_every_0_3_ms():
    f = traffic(30_000, "dos").frames
    inj = f.label == 1
    assert DOS_ID == 0 and DOS_INTERVAL_S == pytest.approx(0.3e-3)
    assert np.all(f.can_id[inj] == 0) and not f.payload[inj].any() and np.all(f.dlc[inj] == 8)
    assert not np.any(f.can_id[~inj] == 0), "no legitimate frame uses the DoS id"
    assert np.median(injected_gaps(f)) == pytest.approx(0.3e-3, rel=0.05)


def test_fuzzy_injects_random_ids_and_payloads_every_0_5_ms():
    f = traffic(30_000, "fuzzy").frames
    inj = f.label == 1
    assert FUZZY_INTERVAL_S == pytest.approx(0.5e-3)
    ids = f.can_id[inj]
    assert len(np.unique(ids)) > 0.3 * min(inj.sum(), MAX_CAN_ID + 1)
    assert ids.min() < 0x100 and ids.max() > 0x700
    assert len(np.unique(f.payload[inj], axis=0)) == inj.sum()
    assert np.median(injected_gaps(f)) == pytest.approx(0.5e-3, rel=0.05)


def test_spoofing_repeats_one_legitimate_id_with_a_fixed_payload_every_1_ms():
    t = traffic(30_000, "spoofing")
    f = t.frames
    inj = f.label == 1
    assert SPOOF_INTERVAL_S == pytest.approx(1e-3)
    ids = np.unique(f.can_id[inj])
    assert len([b for b in t.bursts if b.kind == "spoofing"]) == 1
    assert list(ids) == t.spoof_ids == [t.profile.spoof_targets[0]]  # one burst: the vehicle's first target
    assert ids[0] in {s.can_id for s in t.profile.ids} and ids[0] in SPOOF_TARGETS
    assert len(np.unique(f.payload[inj], axis=0)) == 1
    assert np.median(injected_gaps(f)) == pytest.approx(1e-3, rel=0.05)


def test_spoofing_bursts_take_the_vehicles_targets_in_turn():
    """Every capture of a vehicle with two spoofing bursts or more spoofs each target, so a model's training
    file and its spoofing test file spoof the same IDs whatever their sizes (once, a target drawn per file
    made them differ on the hcrl_sa-sized dataset)."""
    profile = make_profile(np.random.default_rng(11))
    assert sorted(profile.spoof_targets) == sorted(SPOOF_TARGETS)
    for n, seed in ((60_000, 1), (200_000, 2)):
        t = traffic(n, "spoofing", seed=seed, profile=profile)
        spoofing = [b for b in t.bursts if b.kind == "spoofing"]
        assert len(spoofing) >= 2
        assert [b.target for b in spoofing] == [profile.spoof_targets[k % 2] for k in range(len(spoofing))]
        for b in spoofing:
            rows = (t.frames.label == 1) & (t.frames.timestamp >= b.start) & (t.frames.timestamp < b.end)
            assert set(t.frames.can_id[rows]) == {b.target}
        for target in SPOOF_TARGETS:  # one frozen payload per target
            rows = (t.frames.label == 1) & (t.frames.can_id == target)
            assert rows.any() and len(np.unique(t.frames.payload[rows], axis=0)) == 1


def test_masquerade_replaces_payloads_without_adding_frames():
    clean = traffic(30_000, None, seed=7)
    masq = traffic(30_000, "masquerade", seed=7)
    a, b = clean.frames, masq.frames
    # Same frames at the same times: no frame added, none removed.
    assert len(a) == len(b)
    assert np.array_equal(a.timestamp, b.timestamp) and np.array_equal(a.can_id, b.can_id)
    inj = b.label == 1
    assert inj.sum() > 0
    assert set(np.unique(b.can_id[inj])) == {masq.profile.masquerade_id}
    assert np.all((a.payload[inj] != b.payload[inj]).any(axis=1)), "every masqueraded payload is altered"
    assert np.array_equal(a.payload[~inj], b.payload[~inj])
    # The altered signal lies outside anything the genuine ECU sends.
    target = masq.profile.spec(masq.profile.masquerade_id)
    sig = next(x for x in target.fields if x.kind == "sig16")
    value = lambda p: p[:, sig.pos].astype(int) * 256 + p[:, sig.pos + 1]  # noqa: E731
    genuine = value(a.payload[a.can_id == target.can_id])
    assert value(b.payload[inj]).min() > genuine.max()
    # A frequency rule sees nothing: the target keeps its own rate inside the bursts.
    gaps = np.diff(b.timestamp[b.can_id == target.can_id])
    inside = np.diff(b.timestamp[inj])
    inside = inside[inside < 2 * target.period]
    assert np.median(inside) == pytest.approx(target.period, rel=0.05)
    assert np.median(inside) == pytest.approx(np.median(gaps), rel=0.05)


def test_masquerade_rate_matches_other_seed_too():
    """Per-ID counts agree with an independent attack-free capture of the same vehicle within jitter."""
    profile = make_profile(np.random.default_rng(11))
    a = traffic(20_000, None, seed=1, profile=profile).frames
    b = traffic(20_000, "masquerade", seed=2, profile=profile).frames
    ids = np.array([s.can_id for s in profile.ids])
    count_a = np.array([(a.can_id == i).sum() for i in ids])
    count_b = np.array([(b.can_id == i).sum() for i in ids])
    assert np.all(np.abs(count_a - count_b) <= 2)


def test_bursts_are_separated_by_normal_only_time():
    t = traffic(200_000, list(ATTACKS), seed=2, t0=1_600_000_000.0)
    assert sorted({b.kind for b in t.bursts}) == sorted(ATTACKS)
    for before, after in zip(t.bursts, t.bursts[1:]):
        assert after.start - before.end > 0.5
    assert all(1.0 <= b.end - b.start <= 6.0 for b in t.bursts)
    f = t.frames
    for b in t.bursts:
        inside = (f.timestamp >= b.start) & (f.timestamp < b.end)
        assert f.label[inside].any()
    outside = np.ones(len(f), bool)
    for b in t.bursts:
        outside &= ~((f.timestamp >= b.start) & (f.timestamp < b.end))
    assert not f.label[outside].any()


# --- dataset folders ---------------------------------------------------------------

EXPECTED_FOLDERS = [folder for folder, _, _ in synth.FOLDERS]


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    """One small dataset per family, written once for the folder tests."""
    root = tmp_path_factory.mktemp("synth")
    return {like: synth.generate(root / like, like=like, frames=20_000, seed=1, progress=False)
            for like in ("synthetic", "hcrl_ch", "hcrl_sa")}


def read_folder(root: Path, folder: str):
    from kdgat.data.formats import read_frames

    files = sorted((root / folder).iterdir())
    assert len(files) == 1, files
    return read_frames(files[0])


@pytest.mark.parametrize("like", ["synthetic", "hcrl_ch", "hcrl_sa"])
def test_generate_writes_every_folder_in_the_format_like_implies(written, like):
    root = written[like]
    assert sorted(p.name for p in root.iterdir()) == sorted(EXPECTED_FOLDERS + [RECORD])
    record = json.loads((root / RECORD).read_text())
    assert record == {"like": like, "frames": 20_000, "seed": 1, "generator": GENERATOR}
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".")], "temporary folder left behind"
    expected = synth.dataset_files(like)
    total = 0
    for folder in EXPECTED_FOLDERS:
        frames, report = read_folder(root, folder)
        name, fmt = expected[folder]
        assert (root / folder / name).is_file()
        assert report.format == fmt and report.bad_rows == 0
        assert np.all(np.diff(frames.timestamp) >= 0)
        assert (frames.label.sum() > 0) == (folder != "train_01_attack_free")
        total += len(frames)
    assert abs(total - 20_000) < 0.05 * 20_000
    first = {f: (root / f / expected[f][0]).read_text().splitlines()[0] for f in EXPECTED_FOLDERS}
    if like == "hcrl_ch":
        assert first["train_01_attack_free"].startswith("Timestamp:")
        assert first["test_01_dos"].endswith((",R", ",T"))
    elif like == "hcrl_sa":
        assert all(line.endswith((",R", ",T")) for line in first.values())
    else:
        assert all(line == "timestamp,arbitration_id,data_field,attack" for line in first.values())


@pytest.mark.parametrize("like", ["synthetic", "hcrl_ch"])
def test_generated_folders_are_discovered_as_a_dataset(written, like):
    from kdgat.data.layout import discover

    layout = discover(written[like])
    assert list(layout.train) == ["train_01_attack_free", "train_02_with_attacks"]
    assert list(layout.test) == ["dos", "fuzzing", "spoofing", "masquerade"]
    assert all(len(files) == 1 for files in (*layout.train.values(), *layout.test.values()))


def burst_kind(t: np.ndarray, ids: np.ndarray, payload: np.ndarray) -> str:
    """Which of the four attacks one burst of injected frames shows."""
    gap = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    distinct = len(np.unique(ids))
    if distinct == 1 and ids[0] == DOS_ID and not payload.any() and gap == pytest.approx(0.3e-3, rel=0.1):
        return "dos"
    if distinct > 0.3 * len(ids) and gap == pytest.approx(0.5e-3, rel=0.1):
        return "fuzzy"
    if distinct == 1 and gap == pytest.approx(1e-3, rel=0.1) and len(np.unique(payload, axis=0)) == 1:
        return "spoofing"
    if distinct == 1 and gap >= 0.009:  # the ID's own period: nothing added
        return "masquerade"
    return "unknown"


def attack_kinds(f: Frames) -> set[str]:
    """The attack of each burst (injected frames split at gaps over 50 ms)."""
    inj = np.flatnonzero(f.label == 1)
    cuts = np.flatnonzero(np.diff(f.timestamp[inj]) > 0.05) + 1
    return {burst_kind(f.timestamp[b], f.can_id[b], f.payload[b]) for b in np.split(inj, cuts)}


def test_each_test_folder_holds_exactly_its_one_attack(written):
    root = written["synthetic"]
    kinds = {folder: attack_kinds(read_folder(root, folder)[0]) for folder in EXPECTED_FOLDERS[2:]}
    assert kinds == {"test_01_dos": {"dos"}, "test_02_fuzzing": {"fuzzy"},
                     "test_03_spoofing": {"spoofing"}, "test_04_masquerade": {"masquerade"}}
    assert attack_kinds(read_folder(root, "train_02_with_attacks")[0]) == set(ATTACKS)
    # Enough attack windows (100 frames) per test folder to mean something, even at 20,000 frames.
    for folder in EXPECTED_FOLDERS[2:]:
        f, _ = read_folder(root, folder)
        windows = f.label[: len(f) // 100 * 100].reshape(-1, 100).max(axis=1)
        assert windows.sum() >= 3 and windows.sum() < len(windows), folder


def test_generate_is_byte_identical_for_a_seed_and_differs_across_seeds(tmp_path, written):
    again = synth.generate(tmp_path / "again", like="hcrl_ch", frames=20_000, seed=1, progress=False)
    other = synth.generate(tmp_path / "other", like="hcrl_ch", frames=20_000, seed=2, progress=False)
    for folder, (name, _) in synth.dataset_files("hcrl_ch").items():
        assert (again / folder / name).read_bytes() == (written["hcrl_ch"] / folder / name).read_bytes()
        assert (other / folder / name).read_bytes() != (again / folder / name).read_bytes()


def test_each_like_name_is_its_own_vehicle_at_the_same_seed(tmp_path):
    """A sweep over the six datasets' synthetic stand-ins trains on six traffics: other IDs, periods, payloads."""
    from kdgat.data.layout import discover

    seen = {}
    for like in synth.LIKE:
        root = synth.generate(tmp_path / like, like=like, frames=5_000, seed=0, progress=False)
        frames, _ = read_folder(root, "train_01_attack_free")
        seen[like] = (frozenset(frames.can_id.tolist()), frames.payload[:200].tobytes())
        assert discover(root).test  # a dataset, whatever its format
    assert len({ids for ids, _ in seen.values()}) == len(synth.LIKE)
    assert len({payload for _, payload in seen.values()}) == len(synth.LIKE)


def test_a_folder_of_an_older_generator_is_not_trained_on_as_new_data(tmp_path):
    from omegaconf import OmegaConf

    from kdgat.data.locate import synthetic_mismatch

    root = synth.generate(tmp_path / "synthetic", frames=5_000, seed=0, progress=False)
    dataset = OmegaConf.create({"name": "synthetic", "synthetic": {"like": "synthetic", "frames": 5000, "seed": 0}})
    assert synthetic_mismatch(dataset, root) is None
    (root / RECORD).write_text(json.dumps({"like": "synthetic", "frames": 5000, "seed": 0}) + "\n")  # version 1
    problem = synthetic_mismatch(dataset, root)
    assert "generator version 1" in problem and f"this version ({GENERATOR})" in problem
    assert "remove the folder to regenerate it" in problem


def test_generate_refuses_to_overwrite_unless_asked(tmp_path):
    out = tmp_path / "data"
    out.mkdir()  # an empty folder is fine to fill
    synth.generate(out, frames=5_000, seed=0, progress=False)
    before = (out / "test_01_dos" / "dos.csv").read_bytes()
    with pytest.raises(KdgatError, match="overwrite"):
        synth.generate(out, frames=5_000, seed=1, progress=False)
    assert (out / "test_01_dos" / "dos.csv").read_bytes() == before
    synth.generate(out, frames=5_000, seed=1, progress=False, overwrite=True)
    assert (out / "test_01_dos" / "dos.csv").read_bytes() != before
    assert [p.name for p in tmp_path.iterdir()] == ["data"]


def test_a_failed_generate_leaves_nothing_behind(tmp_path, monkeypatch):
    import kdgat.data.formats as formats

    calls = []

    def failing(path, frames, fmt):
        calls.append(path)
        if len(calls) == 3:
            raise RuntimeError("killed")
        real(path, frames, fmt)

    real = formats.write_frames
    monkeypatch.setattr(formats, "write_frames", failing)
    with pytest.raises(RuntimeError, match="killed"):
        synth.generate(tmp_path / "data", frames=5_000, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_generate_rejects_unknown_style_and_tiny_sizes(tmp_path):
    with pytest.raises(KdgatError, match="hcrl_sa.*synthetic"):
        synth.generate(tmp_path / "x", like="road")
    with pytest.raises(KdgatError, match="at least"):
        synth.generate(tmp_path / "x", frames=100)
    assert list(tmp_path.iterdir()) == []
