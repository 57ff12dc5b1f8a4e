"""Generated copies of the public downloads, in their real layouts and row styles: for the tests of
`kdgat data import` (small, with every odd row the real files have) and for bench/import.py (real sizes).

Each generator returns the truth about every CAN file it wrote, computed here and not by kdgat's readers:
the label of each usable row in file order and where the bad rows are, so that a test can work out what
a split must hold without asking the code under test. Traffic is kdgat's synthetic traffic
(kdgat.data.synth), written by kdgat's writers, then given the real files' habits line by line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kdgat.data.formats import REGISTRY
from kdgat.data.synth.traffic import generate_frames
from kdgat.data.synth.vehicle import make_profile

CAR_HACKING_ROWS = {"DoS_dataset.csv": 3_665_771, "Fuzzy_dataset.csv": 3_838_860, "gear_dataset.csv": 4_443_142,
                    "RPM_dataset.csv": 4_621_702, "normal_run_data.txt": 988_987}  # the real files' rows
CAR_HACKING_ATTACKS = {"DoS_dataset.csv": "dos", "Fuzzy_dataset.csv": "fuzzy", "gear_dataset.csv": "spoofing",
                       "RPM_dataset.csv": "spoofing"}
SURVIVAL = {"Sonata": ("hcrl_csv_noflag", False), "Soul": ("hcrl_csv_spaced", True),
            "Spark": ("hcrl_csv_spaced", False)}  # FreeDriving format, CRLF
SET_TESTS = ("test_01_known_vehicle_known_attack", "test_02_unknown_vehicle_known_attack",
             "test_03_known_vehicle_unknown_attack", "test_04_unknown_vehicle_unknown_attack",
             "test_05_suppress", "test_06_masquerade")
CH_TESTS = ("test_01_DoS", "test_02_fuzzing", "test_03_gear_spoofing", "test_04_rpm_spoofing")


@dataclass
class Truth:
    """What a written CAN file holds: the label of each usable row in file order, and for each bad row
    how many usable rows come before it."""

    labels: list[int] = field(default_factory=list)
    bad_after: list[int] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return len(self.labels)

    @property
    def injected(self) -> int:
        return int(sum(self.labels))

    @property
    def bad_rows(self) -> int:
        return len(self.bad_after)

    def split(self, fraction: float) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """(frames, injected, bad rows) of the first ``fraction`` of the frames, and of the rest."""
        keep = int(self.frames * fraction)
        first_bad = sum(b < keep for b in self.bad_after)
        return ((keep, int(sum(self.labels[:keep])), first_bad),
                (self.frames - keep, int(sum(self.labels[keep:])), self.bad_rows - first_bad))


class Rows:
    """One file's lines, edited the way the real files are odd, keeping its Truth."""

    def __init__(self, frames, fmt: str):
        text = REGISTRY[fmt].write(frames).decode()
        self.header = text.split("\n", 1)[0] if fmt == "can_train_and_test" else None
        lines = text.split("\n")[:-1]
        self.lines = lines[1:] if self.header is not None else lines
        self.usable = [True] * len(self.lines)
        self.labels = [int(v) for v in frames.label]

    def upper(self, every: int) -> "Rows":
        """Upper-case hex on every ``every``-th row (the writers write one case)."""
        for i in range(0, len(self.lines), every):
            self.lines[i] = self.lines[i].upper() if "Timestamp" not in self.lines[i] else self.lines[i]
        return self

    def lower(self, every: int) -> "Rows":
        for i in range(0, len(self.lines), every):
            self.lines[i] = self.lines[i].lower() if "Timestamp" not in self.lines[i] else self.lines[i]
        return self

    def _timestamp(self, i: int) -> str:
        line = self.lines[i]
        return line.split()[1] if line.startswith("Timestamp") else line.split(",")[0]

    def _set_timestamp(self, i: int, value: str) -> None:
        self.lines[i] = self.lines[i].replace(self._timestamp(i), value, 1)

    def repeat_and_reverse_timestamps(self, at: int) -> "Rows":
        """Row at+1 repeats row at's timestamp; rows at+3 and at+4 swap theirs (backwards in time)."""
        self._set_timestamp(at + 1, self._timestamp(at))
        a, b = self._timestamp(at + 3), self._timestamp(at + 4)
        self._set_timestamp(at + 3, b)
        self._set_timestamp(at + 4, a)
        return self

    def insert_bad(self, at: int, line: str) -> "Rows":
        self.lines.insert(at, line)
        self.usable.insert(at, False)
        return self

    def cut_last(self) -> "Rows":
        """The last line cut short, as a capture that was stopped mid-write (its frame must have DLC 8)."""
        self.lines[-1] = self.lines[-1][: len(self.lines[-1]) * 3 // 5]
        self.usable[-1] = False
        self.labels.pop()
        return self

    def write(self, path: Path, crlf: bool = False, newline_at_end: bool = True) -> Truth:
        end = "\r\n" if crlf else "\n"
        lines = ([self.header] if self.header is not None else []) + self.lines
        text = end.join(lines) + (end if newline_at_end else "")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
        truth, seen = Truth(labels=list(self.labels)), 0
        for usable in self.usable:
            if usable:
                seen += 1
            else:
                truth.bad_after.append(seen)
        return truth


def traffic(n: int, attack, seed: int, t0: float, last_dlc8: bool = False, empty_attacks: bool = False):
    """Synthetic frames of one capture; optionally its last frame with DLC 8 (so that cutting it is visible)
    and every fifth injected frame without a payload."""
    from kdgat.data.frames import Frames

    rng = np.random.default_rng(seed)
    profile = make_profile(np.random.default_rng(1000 + seed // 100))
    # five captures one after the other: each fifth of the file has attacks, as the real captures have
    pieces = [] if attack is not None else [generate_frames(n, None, rng, profile=profile, t0=t0)]
    while attack is not None and len(pieces) < 5:
        start = pieces[-1].timestamp[-1] + 0.001 if pieces else t0
        pieces.append(generate_frames(max(1, n // 5), attack, rng, profile=profile, t0=start))
    frames = Frames.concat(pieces)
    if last_dlc8:
        frames.dlc[-1] = 8
    if empty_attacks:
        empty = np.flatnonzero(frames.label)[::5]
        frames.dlc[empty] = 0
        frames.payload[empty] = 0
    if attack is None:
        frames.label[:] = 0
    return frames


# ---- the three downloads -------------------------------------------------------------------------


def car_hacking(folder: Path, rows: int = 2000, archive: bool = True, quirks: bool = True,
                files: tuple[str, ...] = tuple(CAR_HACKING_ROWS), sizes: dict[str, int] | None = None
                ) -> dict[str, Truth]:
    """DoS_dataset.csv, Fuzzy_dataset.csv, gear_dataset.csv, RPM_dataset.csv (HCRL CSV, CRLF) and
    normal_run_data.txt (HCRL text log, its last line cut), the latter inside normal_run_data.7z."""
    truths = {}
    for i, name in enumerate(files):
        n = (sizes or {}).get(name, rows)
        attack = CAR_HACKING_ATTACKS.get(name)
        frames = traffic(n, attack, seed=i, t0=1478198376.0 + 3600 * i, last_dlc8=True)
        made = Rows(frames, "hcrl_log" if attack is None else "hcrl_csv")
        if quirks:
            made.repeat_and_reverse_timestamps(10)
            if attack is None:
                made.cut_last()
            else:
                made.upper(7)
                made.insert_bad(len(made.lines) // 3, "1478198376.500000,0316,8,05,21,68,09,21,21,00")  # no flag
        if attack is None and archive:
            truths[name] = made.write(folder / name, crlf=False)
            _seven_zip(folder / name, folder / "normal_run_data.7z")
            (folder / name).unlink()
        else:
            truths[name] = made.write(folder / name, crlf=attack is not None)
    return truths


def _seven_zip(path: Path, archive: Path) -> None:
    import py7zr

    with py7zr.SevenZipFile(archive, "w") as out:
        out.write(path, path.name)


def survival(folder: Path, rows: int = 1500, vehicles: tuple[str, ...] = tuple(SURVIVAL),
             sizes: dict[str, int] | None = None, quirks: bool = True) -> dict[str, Truth]:
    """``<Vehicle>/`` folders of FreeDrivingData_20180112_<Vehicle>.txt (no flag: Sonata's bytes
    comma-separated, Soul's and Spark's space-separated, upper-case) and the flagged attack files."""
    truths = {}
    for v, vehicle in enumerate(vehicles):
        free_fmt, crlf = SURVIVAL[vehicle]
        names = {f"FreeDrivingData_20180112_{vehicle}.txt": None, f"Flooding_dataset_{vehicle}.txt": "dos",
                 f"Fuzzy_dataset_{vehicle}.txt": "fuzzy", f"Malfunction0316_dataset_{vehicle}.txt": "spoofing"}
        for k, (name, attack) in enumerate(names.items()):
            n = (sizes or {}).get(name, rows)
            frames = traffic(n, attack, seed=100 * v + k, t0=1513918916.0 + 86400 * v + 3600 * k, last_dlc8=True,
                             empty_attacks=attack == "fuzzy")
            made = Rows(frames, free_fmt if attack is None else "hcrl_csv")
            if quirks:
                made.repeat_and_reverse_timestamps(5)
                if attack is None and free_fmt == "hcrl_csv_spaced":
                    made.upper(1)  # as the real rows: 1514703000.371009,00C1,8,47 7C 0C E4 5E 3D B0 28
                if vehicle == "Spark" and attack == "fuzzy":
                    made.cut_last()
                if vehicle == "Sonata" and attack is None:
                    made.insert_bad(7, "1513918916.900000,0260,8,06,25,05,30,ff,cf,71,5")  # a byte cut to one digit
            truths[f"{vehicle}/{name}"] = made.write(folder / vehicle / name, crlf=crlf)
    return truths


def ctt_v15(root: Path, datasets: tuple[str, ...] = ("hcrl-ch", "hcrl-sa", "set_01"), rows: int = 1200,
            bare_tests: tuple[str, ...] = (), quirks: bool = True, sizes: dict[str, int] | None = None
            ) -> dict[str, Truth]:
    """A can-train-and-test v1.5 root: each dataset with train_01_attack_free/, train_02_with_attacks/ and
    its test folders (those in ``bare_tests`` laid out as the other public copy: train_01/, test_01/...)."""
    truths = {}
    for d, dataset in enumerate(datasets):
        bare = dataset in bare_tests
        tests = CH_TESTS if dataset == "hcrl-ch" else SET_TESTS[:4] if bare else SET_TESTS
        folders = {"train_01" if bare else "train_01_attack_free": None}
        if not bare:
            folders["train_02_with_attacks"] = ["dos", "fuzzy"]
        folders.update({(test[:7] if bare else test): ["dos", "fuzzy", "spoofing", "masquerade", "dos", "fuzzy"][t]
                        for t, test in enumerate(tests)})
        for f, (sub, attack) in enumerate(folders.items()):
            count = 2 if dataset.startswith("set") and f == 0 else 1  # the set_* hold several files a folder
            for c in range(count):
                name = f"{dataset.replace('-', '_')}_{sub}_{c}.csv"
                n = (sizes or {}).get(name, rows)
                frames = traffic(n, attack, seed=1000 * d + 10 * f + c, t0=1672531200.0 + 86400 * d + 3600 * f,
                                 last_dlc8=True, empty_attacks=True)
                made = Rows(frames, "can_train_and_test")
                if quirks:
                    made.lower(3).repeat_and_reverse_timestamps(4)
                    if f == 1:
                        made.insert_bad(9, "1672531200.500000,0C1,00F0A1B2C3D4E5F6A,0")  # 17 hex digits
                truths[f"{dataset}/{sub}/{name}"] = made.write(root / dataset / sub / name,
                                                               crlf=quirks and dataset == "hcrl-sa")
    return truths
