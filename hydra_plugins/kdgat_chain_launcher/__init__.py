"""Hydra launcher that submits each job's pipeline stages as chained jobs (SLURM, or this machine).

Generic: it reads stages, their `needs` and their resources from the `pipeline`
node of any Hydra app's config (the contract is in `_contract`). Nothing here
imports torch or the app. This package's public names are the ones below.

Modules whose names start with "_" hold the logic: Hydra's plugin scan skips
them, whereas it re-executes every other module of this package, which would
make a second copy of each class (and `except PlanError` miss the new one).
"""

from hydra_plugins.kdgat_chain_launcher._backend import (  # noqa: F401
    ENDED_STATES,
    Backend,
    JobInfo,
    make_backend,
)
from hydra_plugins.kdgat_chain_launcher._contract import (  # noqa: F401
    MANIFEST,
    STAGE_KEYS,
    Attempt,
    ChainRecord,
    Manifest,
    StageNode,
    StageRecord,
    StageState,
    read_attempts,
    read_manifest,
    write_manifest,
)
from hydra_plugins.kdgat_chain_launcher.config import register_resolvers  # noqa: F401
from hydra_plugins.kdgat_chain_launcher._errors import LaunchError, PlanError, exit_on_error  # noqa: F401
from hydra_plugins.kdgat_chain_launcher._files import atomic_write, file_lock, replace_symlink  # noqa: F401
from hydra_plugins.kdgat_chain_launcher._plan import Stage, plan_stages  # noqa: F401
from hydra_plugins.kdgat_chain_launcher._resources import (  # noqa: F401
    FIELDS,
    ResourceRequest,
    Resources,
    merge_resources,
)
from hydra_plugins.kdgat_chain_launcher._slurm_info import SlurmToolsMissing  # noqa: F401
from hydra_plugins.kdgat_chain_launcher._table import format_table  # noqa: F401
from hydra_plugins.kdgat_chain_launcher._units import (  # noqa: F401
    format_memory,
    format_walltime,
    parse_count,
    parse_memory,
    parse_walltime,
    slurm_megabytes,
    slurm_seconds,
)
