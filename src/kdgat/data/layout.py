"""The folder layout of a dataset.

A dataset folder holds ``train_*/`` folders (``train_01_attack_free/``,
``train_02_with_attacks/``) and ``test_<N>_<scenario>/`` folders
(``test_01_dos/``, ``test_03_spoofing/``), each holding data files. The
layout is checked here, once, so that a misnamed or empty folder is a clear
message before any parsing starts rather than a missing test scenario later;
``dataset_problem`` adds a look at each file's first lines, light enough for
the launcher to run before it submits anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from kdgat.data.formats import head_problem
from kdgat.errors import KdgatError

DATA_SUFFIXES = (".csv", ".txt", ".log")
TEST_PATTERN = "test_<N>_<scenario>"
_TEST_NAME = re.compile(r"test_(\d+)_(.+)")


@dataclass(frozen=True)
class DatasetLayout:
    """A dataset's data files, grouped by folder.

    train: folder name -> its files, folders in name order.
    test: scenario name (folder name without ``test_<N>_``) -> its files, in order of N.
    Files within a folder are sorted by name.
    """

    root: Path
    train: dict[str, list[Path]]
    test: dict[str, list[Path]]

    def files(self) -> list[Path]:
        """Every data file, train folders first, then test folders."""
        return [f for files in (*self.train.values(), *self.test.values()) for f in files]


def discover(root: Path) -> DatasetLayout:
    """Find the train and test folders of the dataset at ``root``; KdgatError if the layout is wrong."""
    root = Path(root)
    if not root.exists():
        raise KdgatError(f"dataset folder {root} does not exist")
    if not root.is_dir():
        raise KdgatError(f"dataset folder {root} is not a directory")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))

    train = {p.name: _data_files(p) for p in folders if p.name.startswith("train_")}
    if not train:
        found = ", ".join(p.name for p in folders) or "no sub-folders"
        raise KdgatError(
            f"dataset folder {root} has no train_* folder (found: {found}); expected "
            f"train_01_attack_free/, train_02_with_attacks/ and {TEST_PATTERN}/ folders"
        )

    scenarios: list[tuple[int, str, Path]] = []
    for p in folders:
        if not p.name.startswith("test_"):
            continue
        match = _TEST_NAME.fullmatch(p.name)
        if match is None:
            raise KdgatError(
                f"test folder {p} does not match {TEST_PATTERN} (for example test_01_dos)"
            )
        scenarios.append((int(match.group(1)), match.group(2), p))
    scenarios.sort(key=lambda s: (s[0], s[2].name))

    test: dict[str, list[Path]] = {}
    for _, scenario, p in scenarios:
        if scenario in test:
            raise KdgatError(f"dataset folder {root} has two test folders for scenario {scenario!r}; rename one")
        test[scenario] = _data_files(p)
    return DatasetLayout(root=root, train=train, test=test)


def _data_files(folder: Path) -> list[Path]:
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in DATA_SUFFIXES
    )
    if not files:
        raise KdgatError(f"dataset folder {folder} has no data file ({', '.join('*' + s for s in DATA_SUFFIXES)})")
    return files


def dataset_problem(root: Path) -> str | None:
    """The first reason a dataset folder cannot be used (its layout, or a file whose first lines hold no usable
    frame), or None: the cheap check the launcher makes before anything is submitted."""
    try:
        layout = discover(root)
    except KdgatError as err:
        return str(err)
    for path in layout.files():
        problem = head_problem(path)
        if problem:
            return problem
    return None
