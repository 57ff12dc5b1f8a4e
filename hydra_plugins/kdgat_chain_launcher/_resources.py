"""A stage job's request: its fields, how each is checked and reaches sbatch, and how the levels merge.

Adding a resource field is one entry in FIELDS: the stage nodes' `resources`
levels and the config's global `resources` node take it (ResourceRequest is
made from FIELDS), the planner checks it and the SLURM backend writes it.
"""

import re
from dataclasses import dataclass, field, make_dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

from omegaconf import MISSING

from hydra_plugins.kdgat_chain_launcher._errors import PlanError
from hydra_plugins.kdgat_chain_launcher._units import (
    WALLTIME_FORMS,
    format_memory,
    format_walltime,
    parse_count,
    parse_memory,
    parse_walltime,
)

UNSET = "???"  # OmegaConf's missing value: a level that leaves a field unset lets the one below show through


@dataclass(frozen=True)
class Field:
    name: str
    check: Callable[[Any, str], Any]  # the user's value -> the planner's (seconds, megabytes, ...); PlanError if bad
    sbatch: Callable[[Any, Mapping[str, Any]], Dict[str, Any]]  # planner's value, launcher settings -> submitit's
    doc: str
    required: bool = True  # False: null is a value (use the launcher's)
    show: Callable[[Any], Any] = lambda value: value  # planner's value -> the user's form (check reads it back)


def _count(minimum: int) -> Callable[[Any, str], int]:
    return lambda value, where: parse_count(value, where, minimum)


def _partition(value: Any, where: str) -> Optional[str]:
    if value is not None and not (isinstance(value, str) and re.match(r"^[\w.-]+$", value)):
        raise PlanError(f"{where}={value!r} is not a partition name")
    return value


def _gres(gpus: int, launcher: Mapping[str, Any]) -> Dict[str, Any]:
    if not gpus:
        return {}
    gpu_type = launcher.get("gpu_type")
    return {"gres": f"gpu:{gpu_type}:{gpus}" if gpu_type else f"gpu:{gpus}"}


def _partition_line(partition: Optional[str], launcher: Mapping[str, Any]) -> Dict[str, Any]:
    chosen = partition or launcher.get("partition")
    return {"partition": chosen} if chosen else {}


FIELDS: Tuple[Field, ...] = (
    # Whole minutes, rounded up: submitit also reads `time` to tell a timeout from a preemption.
    Field("walltime", parse_walltime, lambda s, _: {"time": -(-s // 60)},
          f"{WALLTIME_FORMS}, always a quoted string in YAML", show=format_walltime),
    Field("mem", parse_memory, lambda mb, _: {"mem": format_memory(mb)}, "with a unit: 96G or 96000M",
          show=format_memory),
    Field("cpus", _count(1), lambda n, _: {"cpus_per_task": n}, "whole number >= 1"),
    Field("gpus", _count(0), _gres, "whole number >= 0; 0 is a CPU-only job"),
    Field("partition", _partition, _partition_line, "a SLURM partition; null: the launcher's", required=False),
)
NAMES = tuple(f.name for f in FIELDS)

# Settings that are mappings, merged key by key across the levels: any other sbatch option (e.g.
# {constraint: a100}) and the retry policy (_retry.py).
MAPPINGS = ("sbatch", "retry")
_MAPPING_EXAMPLES = {"sbatch": "{constraint: a100}", "retry": "{oom: 2}"}


@dataclass
class RetryRequest:
    """One level's retry settings (_retry.RetryPolicy), unset (???) until a level sets them."""

    oom: Any = MISSING  # attempts after an out-of-memory kill
    mem_factor: Any = MISSING  # memory of the next attempt, times this
    timeout: Any = MISSING  # attempts after the last requeue ran out of time
    time_factor: Any = MISSING  # walltime of the next attempt, times this


# One level of a stage's request (a stage node's `resources`, the config's global `resources`): every field
# unset (???) until a level sets it, and the mappings.
ResourceRequest = make_dataclass(
    "ResourceRequest", [(f.name, Any, field(default=MISSING)) for f in FIELDS]
    + [("sbatch", Dict[str, Any], field(default_factory=dict)),
       ("retry", RetryRequest, field(default_factory=RetryRequest))])
ResourceRequest.__module__ = __name__  # importable by name, so pickles (a job's config) refer to it, not copy it


@dataclass(frozen=True)
class Resources:
    """One stage job's request, checked: each field's planner value (seconds, megabytes, counts)."""

    values: Mapping[str, Any]
    sbatch: Mapping[str, Any] = field(default_factory=dict)
    retry: Mapping[str, Any] = field(default_factory=dict)  # this stage's retry settings; the launcher's fill in

    @classmethod
    def of(cls, walltime_s: int = 3600, mem_mb: int = 1024, cpus: int = 1, gpus: int = 0,
           partition: Optional[str] = None, sbatch: Optional[Mapping[str, Any]] = None) -> "Resources":
        return cls({"walltime": walltime_s, "mem": mem_mb, "cpus": cpus, "gpus": gpus, "partition": partition},
                   dict(sbatch or {}))

    walltime_s = property(lambda self: self.values["walltime"])
    mem_mb = property(lambda self: self.values["mem"])
    cpus = property(lambda self: self.values["cpus"])
    gpus = property(lambda self: self.values["gpus"])
    partition = property(lambda self: self.values["partition"])

    @property
    def walltime(self) -> str:
        return format_walltime(self.walltime_s)

    @property
    def mem(self) -> str:
        return format_memory(self.mem_mb)

    def as_request(self) -> Dict[str, Any]:
        """The request as a user writes it (parse_resources reads it back)."""
        return {**{f.name: f.show(self.values[f.name]) for f in FIELDS}, "sbatch": dict(self.sbatch),
                "retry": dict(self.retry)}

    def sbatch_parameters(self, launcher: Mapping[str, Any]) -> Dict[str, Any]:
        """Every field's submitit parameters (each field reaches the job's #SBATCH lines)."""
        out: Dict[str, Any] = {}
        for f in FIELDS:
            out.update(f.sbatch(self.values[f.name], launcher))
        return out


def resolve_request(levels: Sequence[Tuple[str, Optional[Mapping[str, Any]]]]) -> Resources:
    """A stage job's request from its levels, lowest first, each given with the config key it is read from:
    the stage's default < the pipeline's default for the stage < the global `resources.*` <
    `pipeline.stages.<name>.resources.*`.

    The one place of the precedence rule. A field a level leaves out or unset (`???`) falls through to
    the level below; a `null` is a value (no partition: the launcher's). `sbatch` and `retry` merge key by
    key. A key that is no resource is refused, and a bad value is named by the key of the level that gave it.
    """
    chosen: Dict[str, Tuple[str, Any]] = {}
    mappings: Dict[str, Dict[str, Any]] = {name: {} for name in MAPPINGS}
    for where, level in levels:
        for key, value in (level or {}).items():
            if key in MAPPINGS:
                if not isinstance(value or {}, Mapping):
                    raise PlanError(f"{where}.{key} must be a mapping, such as {_MAPPING_EXAMPLES[key]}")
                mappings[key].update({k: v for k, v in (value or {}).items() if v != UNSET})
            elif key in NAMES:
                if value != UNSET:
                    chosen[key] = (where, value)
            else:
                raise PlanError(f"{where}.{key} is not a resource; use {', '.join(NAMES + MAPPINGS)}")
    last = levels[-1][0] if levels else "resources"
    missing = [f.name for f in FIELDS if f.required and chosen.get(f.name, (last, None))[1] is None]
    if missing:
        raise PlanError(f"{last} has no {', '.join(missing)}")
    values = {}
    for f in FIELDS:
        where, value = chosen.get(f.name, (last, None))
        values[f.name] = f.check(value, f"{where}.{f.name}")
    return Resources(values, mappings["sbatch"], mappings["retry"])


def parse_resources(node: Mapping[str, Any], where: str) -> Resources:
    """One complete request (a launcher setting, or an attempt's request read back), every field checked."""
    return resolve_request([(where, node)])
