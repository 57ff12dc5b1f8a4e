"""Finding a dataset's folder, and generating the synthetic one on first use."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kdgat.data.synth_record import GENERATOR, read_record
from kdgat.errors import KdgatError

log = logging.getLogger(__name__)


def missing_dataset_message(name: str, path: Path, source: str | None) -> str:
    get = f"get the real data ({source}) and unpack it there" if source else "put a dataset folder there"
    return (f"dataset {name} not found: looked in {path}. To use it, {get} (folders train_*/ and test_0N_<scenario>/), "
            f"or set paths.data / KDGAT_DATA to the folder that holds {name}/; "
            f"to try kdgat without it, generate a synthetic stand-in: kdgat synth --like {name} --out {path}")


def ensure_dataset(dataset: Any, path: Path, progress: bool = True) -> Path:
    """The dataset folder, generated first when the dataset is synthetic and absent.

    A synthetic folder records the settings it was made with; a folder made
    with other settings is an error rather than silently the wrong data.
    """
    synth = dataset.get("synthetic")
    if synth is None:
        if not path.is_dir():
            raise KdgatError(missing_dataset_message(dataset.name, path, dataset.get("source")))
        return path
    wanted = _settings(synth)
    if not path.exists():
        from kdgat.atomic import locked
        from kdgat.data import synth as generator

        path.parent.mkdir(parents=True, exist_ok=True)
        with locked(path):
            if not path.exists():  # another job may have made it while we waited
                log.info(f"generating synthetic dataset {dataset.name} ({wanted['frames']} frames, "
                         f"like {wanted['like']}) in {path}")
                generator.generate(path, like=wanted["like"], frames=wanted["frames"], seed=wanted["seed"],
                                   progress=progress)
    problem = synthetic_mismatch(dataset, path)
    if problem:
        raise KdgatError(problem)
    return path


def _settings(synth: Any) -> dict[str, Any]:
    """What a generated folder's record holds: the generator's settings."""
    return {"like": synth.like, "frames": int(synth.frames), "seed": int(synth.seed), "generator": GENERATOR}


def synthetic_mismatch(dataset: Any, path: Path) -> str | None:
    """Why a generated synthetic folder is not the data the config asks for (other settings), or None.

    A folder without the generator's record is one the user put there: it is read like real data.
    """
    synth = dataset.get("synthetic")
    made = None if synth is None else read_record(path)
    if made is None:
        return None
    wanted = _settings(synth)
    if made == wanted:
        return None
    if {**made, "generator": GENERATOR} == wanted:
        return (f"{path} was made by kdgat's synthetic generator version {made['generator']}, which makes other "
                f"traffic than this version ({GENERATOR}): remove the folder to regenerate it, or set "
                "dataset.path elsewhere")
    return (f"{path} was generated with {made}, but the config asks for {wanted}: "
            f"remove the folder to regenerate it, or set dataset.path elsewhere")
