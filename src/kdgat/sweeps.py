"""Finding a sweep (the newest under ./multirun, or the one given) and where its jobs ran.

A sweep directory holds one folder per chain (Hydra's job number) with that
chain's config: `<num>/config.yaml`, frozen by the kdgat_chain launcher (which
also writes manifest.json with every job id), or `<num>/.hydra/config.yaml`,
saved by Hydra's own launcher for a plain `python train.py -m ...`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from hydra_plugins.kdgat_chain_launcher import MANIFEST, Backend, Manifest, make_backend, read_manifest
from kdgat.errors import KdgatError

MULTIRUN = Path("multirun")


class NotASweep(KdgatError):
    """The directory given is no sweep: a usage error, answered with exit status 2."""


def has_manifest(path: Path) -> bool:
    return (path / MANIFEST).is_file()


def chain_configs(sweep: Path) -> dict[int, Path]:
    """Each chain's config by job number: the launcher's frozen one where there is one, else Hydra's."""
    found = {}
    for folder in sorted(sweep.iterdir(), key=lambda p: p.name) if sweep.is_dir() else ():
        for path in (folder / "config.yaml", folder / ".hydra" / "config.yaml"):
            if folder.name.isdigit() and path.is_file():
                found[int(folder.name)] = path
                break
    return dict(sorted(found.items()))


def is_sweep(path: Path) -> bool:
    return has_manifest(path) or bool(chain_configs(path))


def find_sweep(given: str | None, launched: bool, root: Path = MULTIRUN) -> Path:
    """The sweep directory given, or the newest under ./multirun; `launched`: only a sweep the
    kdgat_chain launcher made (it has a manifest), else any."""
    accepts: Callable[[Path], bool] = has_manifest if launched else is_sweep
    what = "sweep launched with hydra/launcher=kdgat_chain" if launched else "sweep"
    if given:
        path = Path(given)
        if not path.is_dir():
            raise NotASweep(f"{path} does not exist" if not path.exists() else f"{path} is not a directory")
        if not accepts(path):
            holds = f"no {MANIFEST}" if launched else f"no {MANIFEST}, no <job num>/config.yaml and no " \
                                                      f"<job num>/.hydra/config.yaml"
            raise NotASweep(f"{path} is not a {what}: it holds {holds}")
        return path
    sweeps = [p for p in root.glob("*/*") if p.is_dir() and accepts(p)]
    if not sweeps:
        raise NotASweep(f"no {what} under {root.absolute()}; give its directory")
    return max(sweeps, key=_started)


def _started(sweep: Path) -> float:
    """When the sweep was launched; not the folder's own time, which writing a report into it changes."""
    for name in ("multirun.yaml", MANIFEST):
        if (sweep / name).is_file():
            return (sweep / name).stat().st_mtime
    return sweep.stat().st_mtime


def load(sweep: Path) -> tuple[Manifest, Backend]:
    """A launched sweep's manifest, and the backend its jobs went to (to ask their states, or cancel them)."""
    manifest = read_manifest(sweep)
    return manifest, make_backend({}, sweep, manifest.cluster)
