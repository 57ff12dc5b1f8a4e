"""Which backend a launch names (`hydra.launcher.cluster`), or a manifest for `kdgat status` and `cancel`:
the one table of backends, each imported only when chosen."""

import importlib
from pathlib import Path
from typing import Any, Mapping, Optional

from hydra_plugins.kdgat_chain_launcher._backend import Backend
from hydra_plugins.kdgat_chain_launcher._errors import PlanError

# cluster -> (its backend, its dry run), as "module:class" of this package
BACKENDS = {
    "slurm": ("_slurm:SlurmBackend", "_dryrun:SlurmDryRun"),
    "local": ("_local:LocalBackend", "_dryrun:LocalDryRun"),
}


def make_backend(params: Mapping[str, Any], sweep_dir: Path, cluster: Optional[str] = None) -> Backend:
    """The backend `hydra.launcher.cluster` names (a manifest's `cluster` for status and cancel)."""
    cluster = cluster or params.get("cluster", "slurm")
    if cluster not in BACKENDS:
        raise PlanError(f"hydra.launcher.cluster={cluster!r}; use {' or '.join(BACKENDS)}")
    module, _, name = BACKENDS[cluster][1 if params.get("dry_run") else 0].partition(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)(params, sweep_dir)
