"""The public downloads of the real datasets, as their users hold them, and the plan that makes each into
kdgat's dataset folders (kdgat.data.importer carries the plans out).

One module per distribution, registered in ``DISTRIBUTIONS``:

- ``TITLE``: how messages name it; ``LOOKS_FOR``: what recognises it, for the error about a folder that is
  none of them;
- ``recognise(folder) -> bool``;
- ``plan(folder, names, train_fraction) -> list[Plan]``: one plan per dataset folder to make, ``names``
  (kdgat dataset names, or None for the default) choosing among them.

Nothing here reads a CAN file: recognising goes by folder and file names only.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

from kdgat.data.distributions import car_hacking, ctt_v15, survival
from kdgat.data.distributions.plan import Plan, Split, visible
from kdgat.errors import KdgatError

DISTRIBUTIONS: dict[str, ModuleType] = {
    "can-train-and-test-v1.5": ctt_v15,
    "hcrl-car-hacking": car_hacking,
    "hcrl-survival": survival,
}
TRAIN_FRACTION = 0.8  # of each attack file's frames, to training where a download has no split
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_names(names: list[str] | None) -> list[str] | None:
    for name in names or []:
        if not _NAME.fullmatch(name):
            raise KdgatError(f"--dataset {name!r} is not a dataset name; use letters, digits and _ (like hcrl_ch)")
    return names


def plan_import(source: Path, names: list[str] | None = None,
                train_fraction: float = TRAIN_FRACTION) -> list[Plan]:
    """The plans for a download; a KdgatError (one line, naming what the folder holds) when it is none
    kdgat knows. A folder holding nothing but one folder (as an archive unpacks) is looked into."""
    source = Path(source)
    if not source.is_dir():
        raise KdgatError(f"{source} is not a folder; give the folder the download unpacked into")
    if not 0.0 < train_fraction < 1.0:
        raise KdgatError(f"--train-fraction {train_fraction} must be between 0 and 1, like 0.8")
    check_names(names)
    folder = source
    while True:
        for module in DISTRIBUTIONS.values():
            if module.recognise(folder):
                return module.plan(folder, names, train_fraction)
        entries = visible(folder)
        if len(entries) == 1 and entries[0].is_dir():
            folder = entries[0]
            continue
        break
    shown = ", ".join(p.name + ("/" if p.is_dir() else "") for p in visible(source)[:12]) or "nothing"
    more = len(visible(source)) - 12
    known = "; ".join(f"{m.TITLE} ({m.LOOKS_FOR})" for m in DISTRIBUTIONS.values())
    raise KdgatError(f"{source} is no download kdgat knows: it holds {shown}{f' and {more} more' if more > 0 else ''}; "
                     f"known: {known}")


__all__ = ["DISTRIBUTIONS", "TRAIN_FRACTION", "Plan", "Split", "plan_import"]
