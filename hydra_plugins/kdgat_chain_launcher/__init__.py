"""Hydra launcher that submits each job's pipeline stages as chained SLURM jobs.

Generic: it reads stages, their `needs` and their resources from the `pipeline`
node of any Hydra app's config. Nothing here imports torch or the app.

Modules whose names start with "_" hold the logic: Hydra's plugin scan skips
them, whereas it re-executes every other module of this package, which would
make a second copy of each class (and `except PlanError` miss the new one).
"""

from hydra_plugins.kdgat_chain_launcher._plan import (  # noqa: F401
    PlanError,
    Resources,
    Stage,
    format_walltime,
    parse_count,
    parse_memory,
    parse_walltime,
    plan_stages,
)
