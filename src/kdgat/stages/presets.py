"""The `preset` config group: each stage's settings built by hydra-zen, and kept across commands.

hydra-zen builds each preset from its stage's settings dataclass (kdgat.stages.registry), so a preset's
config and the code that reads it cannot drift apart. Building costs about 60 ms of every command (hydra-zen's
import, `builds`, OmegaConf's typed conversion), as much as the rest of `--cfg job` spends on kdgat. So the
built nodes are pickled into the user's cache (by cloudpickle: builds' classes exist only in the process that
made them) under a key of everything they are built from: the sources of the registry, of the launcher's
contract and of this module, the library versions and Python's. A later command loads them in about 10 ms;
a changed source or library makes a new key, and the nodes are built again. A cache that cannot be read or
written only costs the time to build.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
import sys
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigNode, ConfigStore

from kdgat.stages.registry import STAGES

GROUP = "preset"
KEEP = 8  # cached keys kept


def cache_dir() -> Path:
    """kdgat's folder in the user's cache (XDG_CACHE_HOME, else ~/.cache)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kdgat"


def store_presets(cache: Path | None = None) -> None:
    """Put every stage's preset in Hydra's config store (group `preset`), once per process."""
    if f"{next(iter(STAGES))}.yaml" in ConfigStore.instance().repo.get(GROUP, {}):
        return
    path = (cache_dir() if cache is None else cache) / f"presets-{cache_key()}.pickle"
    entries = _load(path)
    if entries is None:
        entries = build_presets()
        _save(path, entries)
    # What ConfigStore.store(**entry) keeps, without its second conversion of each node (~12 ms for five):
    # build_presets made the nodes exactly as store() would.
    group = ConfigStore.instance().repo.setdefault(GROUP, {})
    for entry in entries:
        group[f"{entry['name']}.yaml"] = ConfigNode(**{**entry, "name": f"{entry['name']}.yaml"})


def build_presets() -> list[dict[str, Any]]:
    """hydra-zen's store entries (name, group, package, provider, node) of every stage's preset, each node
    converted as Hydra's ConfigStore.store converts it: a typed DictConfig, so `pipeline.stages.X.lr=abc` is
    refused when the config is composed."""
    from hydra_zen import ZenStore, builds
    from omegaconf import OmegaConf

    store = ZenStore(name="kdgat_presets", deferred_hydra_store=True)
    for name, stage in STAGES.items():
        node = builds(stage.settings, populate_full_signature=True, zen_convert={"dataclass": False},
                      default_resources=stage.resources(), uses_gpus=stage.uses_gpus)
        store(node, group=GROUP, name=name)
    return [{**entry, "node": OmegaConf.structured(entry["node"])} for entry in store]


def cache_key() -> str:
    """A digest of every source and library version the built presets depend on."""
    import cloudpickle
    import hydra
    import omegaconf

    from hydra_plugins.kdgat_chain_launcher import ResourceRequest, StageNode
    from kdgat.stages import registry

    digest = hashlib.sha256()
    for module in (registry, sys.modules[StageNode.__module__], sys.modules[ResourceRequest.__module__],
                   sys.modules[__name__]):  # the stage kinds, the launcher's stage node it extends, this file
        digest.update(Path(module.__file__).read_bytes())
    hydra_zen = importlib.util.find_spec("hydra_zen")
    zen = os.stat(hydra_zen.origin) if hydra_zen and hydra_zen.origin else None
    digest.update(repr((sys.version, hydra.__version__, omegaconf.__version__, cloudpickle.__version__,
                        zen and (hydra_zen.origin, zen.st_size, zen.st_mtime_ns))).encode())
    return digest.hexdigest()[:20]


def _load(path: Path) -> list[dict[str, Any]] | None:
    try:
        entries = pickle.loads(path.read_bytes())
    except Exception:  # absent, half-written by an older kdgat, or unreadable: build again
        return None
    return entries if isinstance(entries, list) and len(entries) == len(STAGES) else None


def _save(path: Path, entries: list[dict[str, Any]]) -> None:
    """Write the cache atomically, keeping the newest KEEP keys (checkouts of different versions can share a
    home); nothing is said if it cannot be written (a read-only home): the next command builds again."""
    import cloudpickle

    from kdgat.atomic import write_bytes_atomic

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, cloudpickle.dumps(entries))
        cached = sorted(path.parent.glob("presets-*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in cached[KEEP:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass
