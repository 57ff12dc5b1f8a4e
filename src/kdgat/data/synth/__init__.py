"""Synthetic dataset folders shaped like the real datasets.

The real datasets cannot be downloaded here, so tests, benchmarks and the
default ``dataset=synthetic`` run on folders made by ``generate``: the
train and test folders of a real dataset, each file a capture of one
synthetic vehicle (kdgat.data.synth.vehicle) with its attacks
(kdgat.data.synth.traffic), written in the file format of the dataset it
imitates. Each `like` name has its own vehicle: the generator's seed is the
user's seed together with one derived from the name (``stream_seed``), so
``--like hcrl_sa`` and ``--like set_01`` with the same seed are different
traffic (other IDs, periods and payloads), as the real datasets are. One
seed and name give byte-identical files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from kdgat.data.synth.traffic import ATTACKS, generate_frames
from kdgat.data.synth.vehicle import make_profile
from kdgat.data.synth_record import write_record
from kdgat.errors import KdgatError

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


def stream_seed(like: str, seed: int) -> np.random.SeedSequence:
    """The generator's seed for dataset `like`: the user's seed and the name's own (the first 4 bytes of its
    sha256), so every name is its own vehicle and its own traffic at any seed."""
    name = int.from_bytes(hashlib.sha256(like.encode()).digest()[:4], "big")
    return np.random.SeedSequence([int(seed), name])


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

    One vehicle profile for the whole dataset, one seeded stream per file (from
    ``stream_seed(like, seed)``), so the same arguments give byte-identical files. Written into a temporary
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
        raise KdgatError(f"{out} already exists and is not empty; give --overwrite to replace it")

    streams = stream_seed(like, seed).spawn(len(FOLDERS) + 1)
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
        write_record(tmp, like=like, frames=frames, seed=seed)
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
