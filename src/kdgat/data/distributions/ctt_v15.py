"""can-train-and-test v1.5 (B. Lampe and W. Meng): the KD-GAT authors' source for all six datasets.

Its root holds ``hcrl-ch/``, ``hcrl-sa/`` and ``set_01/`` ... ``set_04/``, each
with ``train_*/`` and ``test_0N_<scenario>/`` folders of can-train-and-test
CSVs, which kdgat reads as they are: every file is linked, under kdgat's
dataset names (``hcrl-ch`` -> ``hcrl_ch``). One dataset's folder on its own
is taken too. Another public copy of the ``set_*`` names its test folders
``test_01`` ... ``test_04``; they get the scenario names v1.5 gives them.
"""

from __future__ import annotations

from pathlib import Path

from kdgat.data.distributions.plan import Plan, is_data_file, visible
from kdgat.errors import KdgatError

TITLE = "can-train-and-test v1.5"
KEY = "can-train-and-test-v1.5"
LOOKS_FOR = "a root with hcrl-ch/, hcrl-sa/, set_01/ ... set_04/, or one of them: train_*/ and test_*/ folders"
NAMES = {"hcrl-ch": "hcrl_ch", "hcrl-sa": "hcrl_sa", **{f"set_0{n}": f"set_0{n}" for n in range(1, 5)}}
BARE_TESTS = {
    "test_01": "test_01_known_vehicle_known_attack",
    "test_02": "test_02_unknown_vehicle_known_attack",
    "test_03": "test_03_known_vehicle_unknown_attack",
    "test_04": "test_04_unknown_vehicle_unknown_attack",
}


def _kdgat_name(folder: Path) -> str | None:
    key = folder.name.lower()
    if key.startswith("hcrl"):
        key = key.replace("_", "-")  # a copy named hcrl_ch is taken too
    return NAMES.get(key)


def _is_dataset(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_dir() and p.name.startswith("train_") for p in visible(folder))


def datasets_in(folder: Path) -> dict[str, Path]:
    """kdgat name -> folder, for the datasets a v1.5 root holds."""
    return {_kdgat_name(p): p for p in visible(folder) if _kdgat_name(p) and _is_dataset(p)}


def recognise(folder: Path) -> bool:
    return bool(datasets_in(folder)) or _is_dataset(folder)


def plan(folder: Path, names: list[str] | None, train_fraction: float) -> list[Plan]:
    found = datasets_in(folder)
    if found:
        unknown = [n for n in names or [] if n not in found]
        if unknown:
            raise KdgatError(f"{folder} holds {', '.join(sorted(found))}, not {', '.join(unknown)}; "
                             f"choose --dataset among those")
        return [_dataset_plan(found[name], name) for name in (names or sorted(found))]
    if names and len(names) > 1:
        raise KdgatError(f"{folder} is one dataset's folder; give one --dataset name, not {', '.join(names)}")
    name = names[0] if names else _kdgat_name(folder)
    if name is None:
        raise KdgatError(f"cannot tell which dataset {folder} is (its name is none of {', '.join(NAMES)}); "
                         f"name it with --dataset, like --dataset set_01")
    return [_dataset_plan(folder, name)]


def _dataset_plan(folder: Path, name: str) -> Plan:
    """Every data file of the train_*/ and test_*/ folders, linked under the same names."""
    plan = Plan(dataset=name, distribution=KEY, source=folder)
    for sub in visible(folder):
        if not sub.is_dir() or not sub.name.startswith(("train_", "test_")):
            plan.left_out[sub.name] = "not a train_*/ or test_*/ folder"
            continue
        target = BARE_TESTS.get(sub.name, sub.name) if name.startswith("set_") else sub.name
        for path in visible(sub):
            if is_data_file(path):
                plan.links[f"{target}/{path.name}"] = path
            else:
                plan.left_out[f"{sub.name}/{path.name}"] = "not a CAN data file (.csv, .txt, .log)"
    return plan
