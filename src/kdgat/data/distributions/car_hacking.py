"""The original HCRL Car-Hacking download (Korea University's HCRL): the ``hcrl_ch`` dataset.

Four flat, header-less HCRL CSVs, one per attack (``DoS_dataset.csv``,
``Fuzzy_dataset.csv``, ``gear_dataset.csv``, ``RPM_dataset.csv``), and the
attack-free capture ``normal_run_data.txt``, shipped inside
``normal_run_data.7z``. It has no train/test split, so the import makes
one, in the names can-train-and-test v1.5 gives hcrl-ch's folders: the
attack-free capture -> ``train_01_attack_free/``; each attack file cut in
file order, its first ``train_fraction`` of frames ->
``train_02_with_attacks/``, the rest -> its ``test_0N_<attack>/`` folder.
"""

from __future__ import annotations

from pathlib import Path

from kdgat.data.distributions.plan import Plan, Split, is_data_file, split_rule, visible
from kdgat.errors import KdgatError

TITLE = "the HCRL Car-Hacking download"
KEY = "hcrl-car-hacking"
LOOKS_FOR = "DoS_dataset.csv, Fuzzy_dataset.csv, gear_dataset.csv, RPM_dataset.csv, normal_run_data.7z"
ATTACKS = {  # file (lower case) -> its test folder
    "dos_dataset.csv": "test_01_DoS",
    "fuzzy_dataset.csv": "test_02_fuzzing",
    "gear_dataset.csv": "test_03_gear_spoofing",
    "rpm_dataset.csv": "test_04_rpm_spoofing",
}
NORMAL, ARCHIVE = "normal_run_data.txt", "normal_run_data.7z"
TRAIN_NORMAL, TRAIN_ATTACKS = "train_01_attack_free", "train_02_with_attacks"


def _files(folder: Path) -> dict[str, Path]:
    """Its files by lower-case name, with those of a ``normal_run_data/`` folder the archive unpacked into."""
    files = {p.name.lower(): p for p in visible(folder) if p.is_file()}
    unpacked = folder / "normal_run_data"
    if unpacked.is_dir() and NORMAL not in files:
        files.update({p.name.lower(): p for p in visible(unpacked) if p.is_file()})
    return files


def recognise(folder: Path) -> bool:
    return any(name in ATTACKS for name in _files(folder))


def plan(folder: Path, names: list[str] | None, train_fraction: float) -> list[Plan]:
    if names and len(names) > 1:
        raise KdgatError(f"{folder} is one dataset (hcrl_ch); give one --dataset name, not {', '.join(names)}")
    files = _files(folder)
    plan = Plan(dataset=(names or ["hcrl_ch"])[0], distribution=KEY, source=folder,
                split_rule=split_rule(train_fraction, TRAIN_ATTACKS), train_fraction=train_fraction)
    for name, test in ATTACKS.items():
        if name in files:
            path = files[name]
            plan.splits.append(Split(path, f"{TRAIN_ATTACKS}/{path.name}", f"{test}/{path.name}"))
    if NORMAL in files:
        plan.links[f"{TRAIN_NORMAL}/{NORMAL}"] = files[NORMAL]
    elif ARCHIVE in files:
        plan.extracts[f"{TRAIN_NORMAL}/{NORMAL}"] = (files[ARCHIVE], NORMAL)
    used = {NORMAL, ARCHIVE, *ATTACKS}
    for name, path in files.items():
        if name not in used:
            why = "not a file of the Car-Hacking download" if is_data_file(path) else "not a CAN data file"
            plan.left_out[path.relative_to(folder).as_posix()] = why
    return [plan]
