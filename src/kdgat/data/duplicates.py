"""Files of one dataset with the same bytes: read once, and a loud warning when training and test share one.

Two copies of a training file would put the same windows on both sides of
the train/validation split, so the second copy is left out of reading. A
file byte-identical between a training folder and a test folder is
leakage: the model would be tested on what it was trained on. Only files
of equal size can be equal, so only those are hashed: finding the overlaps
of a real dataset costs next to nothing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from kdgat.atomic import sha256_file
from kdgat.data.identity import file_groups


@dataclass
class Overlaps:
    """What a dataset's byte-identical files mean for reading it (paths relative to its folder)."""

    read_once: dict[str, str] = field(default_factory=dict)  # a copy left out -> the file read instead
    leaks: list[tuple[str, str]] = field(default_factory=list)  # (training file, test file) with the same bytes

    def messages(self) -> list[str]:
        """One line each: the copies read once, then the leaks, loudly."""
        out = [f"{copy} has the same bytes as {kept}: read once" for copy, kept in self.read_once.items()]
        out += [f"LEAKAGE: {train} (training) and {test} (test) are byte-identical, so the model is tested on "
                f"data it was trained on; remove one of them" for train, test in self.leaks]
        return out

    def as_dict(self) -> dict:
        return {"read_once": dict(self.read_once), "leaks": [list(pair) for pair in self.leaks]}

    @classmethod
    def from_dict(cls, data: dict | None) -> "Overlaps":
        data = data or {}
        return cls(dict(data.get("read_once", {})), [tuple(pair) for pair in data.get("leaks", [])])


def find_overlaps(layout, digests: dict[Path, str] | None = None) -> Overlaps:
    """Byte-identical files of a dataset layout (kdgat.data.layout.DatasetLayout).

    Within the training folders, and within one test scenario, the first
    copy (in the layout's order) is read and the others are not; a copy in
    a training folder and one in a test folder is a leak. ``digests`` are
    sha256s already known (the importer has them), so that no file is read twice.
    """
    root = Path(layout.root)
    places = [(role, name, Path(path)) for role, name, files in file_groups(layout) for path in files]
    by_size: dict[int, list[tuple[str, str, Path]]] = defaultdict(list)
    for place in places:
        by_size[place[2].stat().st_size].append(place)
    by_content: dict[str, list[tuple[str, str, Path]]] = defaultdict(list)
    for same_size in by_size.values():
        if len(same_size) < 2:
            continue
        for place in same_size:
            digest = (digests or {}).get(place[2]) or sha256_file(place[2])
            by_content[digest].append(place)

    def rel(path: Path) -> str:
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            return path.as_posix()

    overlaps = Overlaps()
    for copies in by_content.values():
        if len(copies) < 2:
            continue
        firsts: dict[tuple[str, str], Path] = {}
        for role, name, path in copies:
            group = ("train", "") if role == "train" else (role, name)
            if group in firsts:
                overlaps.read_once[rel(path)] = rel(firsts[group])
            else:
                firsts[group] = path
        train = firsts.get(("train", ""))
        if train is not None:
            overlaps.leaks += [(rel(train), rel(path)) for role, _, path in copies if role == "test"]
    return overlaps
