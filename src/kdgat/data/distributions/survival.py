"""The original HCRL Survival Analysis download (Korea University's HCRL): the ``hcrl_sa`` dataset.

One folder per vehicle (``Sonata/``, ``Soul/``, ``Spark/``), each with an
attack-free ``FreeDrivingData_<date>_<vehicle>.txt`` and the attack files
``Flooding_dataset_<vehicle>.txt``, ``Fuzzy_dataset_<vehicle>.txt`` and
``Malfunction<id>_dataset_<vehicle>.txt`` (HCRL rows with a flag). Every
file is read as it is (the FreeDriving rows are the hcrl_csv_noflag and
hcrl_csv_spaced formats); only the split the download lacks is made.

``hcrl_sa`` (all vehicles) follows the KD-GAT authors' known/unknown vehicle
x attack scenarios. The Spark is the unknown vehicle: the one vehicle of
another maker (Chevrolet; the Sonata and the Soul are Hyundai and Kia), so
the most foreign traffic. Malfunction is the unknown attack: it changes one
ID's payload where flooding and fuzzing inject frames, which is what the
known attacks teach. So:

- ``train_01_attack_free/``: the known vehicles' FreeDriving files;
- ``train_02_with_attacks/`` and ``test_01_known_vehicle_known_attack/``: the
  known vehicles' flooding and fuzzy files, each cut in file order (the first
  ``train_fraction`` of its frames to training, the rest to the test);
- ``test_02_unknown_vehicle_known_attack/``: the Spark's flooding and fuzzy files;
- ``test_03_known_vehicle_unknown_attack/``: the known vehicles' malfunction files;
- ``test_04_unknown_vehicle_unknown_attack/``: the Spark's malfunction files.

The Spark's FreeDriving file is left out: training on it would make the
Spark known. With the Spark missing there is no unknown vehicle, and with
the Spark alone it is the known one. ``hcrl_sa_<vehicle>`` is one vehicle:
its FreeDriving file, its flooding and fuzzy files cut into
``train_02_with_attacks/`` and ``test_01_known_attack/``, and its
malfunction files as ``test_02_unknown_attack/``.
"""

from __future__ import annotations

from pathlib import Path

from kdgat.data.distributions.plan import Plan, Split, is_data_file, split_rule, visible
from kdgat.errors import KdgatError

TITLE = "the HCRL Survival Analysis download"
KEY = "hcrl-survival"
LOOKS_FOR = "Sonata/, Soul/, Spark/ folders of FreeDrivingData_*, Flooding_*, Fuzzy_*, Malfunction* files"
VEHICLES = ("sonata", "soul", "spark")
UNKNOWN_VEHICLE = "spark"
KNOWN_ATTACKS, UNKNOWN_ATTACK = ("flooding", "fuzzy"), "malfunction"
KINDS = ("freedriving", *KNOWN_ATTACKS, UNKNOWN_ATTACK)  # by the start of a file's name, in lower case
ALL = "hcrl_sa"
TRAIN_NORMAL, TRAIN_ATTACKS = "train_01_attack_free", "train_02_with_attacks"


def _kind(path: Path) -> str | None:
    return next((kind for kind in KINDS if path.name.lower().startswith(kind)), None) if is_data_file(path) else None


def _vehicles(folder: Path) -> dict[str, Path]:
    """Vehicle -> its folder: the vehicle folders in ``folder``, or ``folder`` itself when it is one."""
    def holds_files(p: Path) -> bool:
        return p.is_dir() and any(_kind(f) for f in visible(p))

    found = {p.name.lower(): p for p in visible(folder) if p.name.lower() in VEHICLES and holds_files(p)}
    if not found and folder.name.lower() in VEHICLES and holds_files(folder):
        found = {folder.name.lower(): folder}
    return found


def recognise(folder: Path) -> bool:
    return bool(_vehicles(folder))


def plan(folder: Path, names: list[str] | None, train_fraction: float) -> list[Plan]:
    vehicles = _vehicles(folder)
    choices = ([ALL] if len(vehicles) > 1 else []) + [f"{ALL}_{v}" for v in vehicles]
    unknown = [n for n in names or [] if n not in choices]
    if unknown:
        raise KdgatError(f"{folder} can make {', '.join(choices)}, not {', '.join(unknown)}; choose --dataset "
                         f"among those")
    plans = []
    for name in names or choices[:1]:
        chosen = vehicles if name == ALL else {name.removeprefix(f"{ALL}_"): vehicles[name.removeprefix(f"{ALL}_")]}
        plans.append(_plan(folder, name, chosen, train_fraction))
    return plans


def _plan(folder: Path, name: str, vehicles: dict[str, Path], train_fraction: float) -> Plan:
    unknown_vehicle = UNKNOWN_VEHICLE if UNKNOWN_VEHICLE in vehicles and len(vehicles) > 1 else None
    one = len(vehicles) == 1
    scenarios = ({"known": "test_01_known_attack", "unknown": "test_02_unknown_attack"} if one else
                 {"known": "test_01_known_vehicle_known_attack", "unknown": "test_03_known_vehicle_unknown_attack",
                  "foreign known": "test_02_unknown_vehicle_known_attack",
                  "foreign unknown": "test_04_unknown_vehicle_unknown_attack"})
    plan = Plan(dataset=name, distribution=KEY, source=folder, split_rule=split_rule(train_fraction, TRAIN_ATTACKS),
                train_fraction=train_fraction)
    for vehicle, place in vehicles.items():
        foreign = vehicle == unknown_vehicle
        for path in visible(place):
            kind, rel = _kind(path), path.relative_to(folder).as_posix()
            dest = path.name if vehicle in path.name.lower() else f"{place.name}_{path.name}"
            if kind is None:
                plan.left_out[rel] = "not a file of the Survival download" if path.is_file() else "a folder"
            elif kind == "freedriving" and foreign:
                plan.left_out[rel] = "the unknown vehicle's attack-free traffic: training on it would make it known"
            elif kind == "freedriving":
                plan.links[f"{TRAIN_NORMAL}/{dest}"] = path
            elif kind == UNKNOWN_ATTACK:
                plan.links[f"{scenarios['foreign unknown' if foreign else 'unknown']}/{dest}"] = path
            elif foreign:
                plan.links[f"{scenarios['foreign known']}/{dest}"] = path
            else:
                plan.splits.append(Split(path, f"{TRAIN_ATTACKS}/{dest}", f"{scenarios['known']}/{dest}"))
    return plan
