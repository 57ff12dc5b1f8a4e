"""What a distribution's plan holds, and the helpers the distributions share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kdgat.data.layout import DATA_SUFFIXES


@dataclass(frozen=True)
class Split:
    """A file cut in two in file order: its first ``train_fraction`` of frames, and the rest."""

    source: Path
    train: str  # where the first part goes, relative to the dataset folder
    test: str  # where the rest goes


@dataclass
class Plan:
    """How one dataset folder is made from a download; destinations are relative to the dataset folder."""

    dataset: str  # kdgat's name: the folder under paths.data
    distribution: str  # a key of DISTRIBUTIONS
    source: Path  # the folder it comes from
    links: dict[str, Path] = field(default_factory=dict)  # files readable as they are
    splits: list[Split] = field(default_factory=list)
    extracts: dict[str, tuple[Path, str]] = field(default_factory=dict)  # (archive, member)
    left_out: dict[str, str] = field(default_factory=dict)  # a source file, relative to ``source`` -> why
    split_rule: str | None = None  # what the split does, in words
    train_fraction: float | None = None


def is_data_file(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in DATA_SUFFIXES


def visible(folder: Path) -> list[Path]:
    """A folder's entries, hidden ones and macOS archive litter left out, in name order."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX")


def split_rule(train_fraction: float, train: str = "train_02_with_attacks") -> str:
    return (f"each attack file cut in file order (the order of capture): its first {train_fraction:.0%} of frames "
            f"-> {train}/, the rest -> its test folder")
