"""Hydra launcher that submits each job's pipeline stages as chained jobs (SLURM, or this machine).

Generic: it reads stages, their `needs` and their resources from the `pipeline`
node of any Hydra app's config (the contract is in `_contract`). Nothing here
imports torch or the app. This package's public names are the ones below.

Modules whose names start with "_" hold the logic: Hydra's plugin scan skips
them, whereas it re-executes every other module of this package, which would
make a second copy of each class (and `except PlanError` miss the new one).

The names are loaded on first use (PEP 562): the app imports this package
for a resolver or a record type on every run, and should not pay for the
planning, SLURM and local-run code it does not use then.
"""

import importlib
from typing import Any

_EXPORTS = {
    "_backend": ("ENDED_STATES", "Backend", "JobInfo"),
    "_backends": ("make_backend",),
    "_contract": ("MANIFEST", "STAGE_KEYS", "Attempt", "ChainRecord", "Manifest", "QueuedRecord", "StageNode",
                  "StageRecord", "StageState", "read_attempts", "read_manifest", "write_attempt", "write_manifest",
                  "write_outcome"),
    "_resolvers": ("register_resolvers",),
    "_store": ("SharedNode", "share_config_store"),
    "_errors": ("LaunchError", "PlanError", "exit_on_error"),
    "_files": ("atomic_write", "file_lock", "replace_symlink", "unfinished_writes", "write_text_atomic"),
    "_plan": ("Stage", "plan_stages", "stage_resources"),
    "_resources": ("FIELDS", "ResourceRequest", "Resources", "resolve_request"),
    "_slurm_info": ("SlurmToolsMissing",),
    "_table": ("format_table",),
    "_units": ("format_memory", "format_walltime", "parse_count", "parse_memory", "parse_walltime",
               "slurm_megabytes", "slurm_seconds"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted([*globals(), *__all__])
