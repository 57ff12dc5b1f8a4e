"""Pure planning: which stages a pipeline node holds, in which order, with which resources.

No SLURM, no Hydra launching and no app code here, so that every rule is tested
on plain dictionaries. Values are validated before anything is submitted: a
bad request must fail on the login node, not hours later in the queue.
"""

import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from hydra_plugins.kdgat_chain_launcher._contract import RESOURCE_LEVELS, SHOWN_RESOURCES, STAGE_KEYS
from hydra_plugins.kdgat_chain_launcher._errors import PlanError
from hydra_plugins.kdgat_chain_launcher._resources import Resources, resolve_request
from hydra_plugins.kdgat_chain_launcher._units import format_walltime

PLANNED_KEYS = tuple(key for key in STAGE_KEYS if key != SHOWN_RESOURCES)
STAGE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ALL_GPUS = "all"


@dataclass(frozen=True)
class Stage:
    name: str
    needs: Tuple[str, ...]
    resources: Resources
    uses_gpus: Any = None  # GPUs its code uses; "all": one process per GPU it is given (data-parallel)

    @property
    def tasks(self) -> int:
        """Processes of its job: one per GPU for a data-parallel stage, else one."""
        return max(1, self.resources.gpus) if self.uses_gpus == ALL_GPUS else 1


def stage_resources(name: str, node: Mapping[str, Any], global_resources: Optional[Mapping[str, Any]]) -> Resources:
    """A stage's request: its node's resource levels and the global one (third) in precedence order,
    merged and checked (resolve_request). Planning and `--cfg job --resolve` both show this."""
    default, pipeline, own = ((f"pipeline.stages.{name}.{key}", node.get(key)) for key in RESOURCE_LEVELS)
    return resolve_request([default, pipeline, ("resources", global_resources), own])


def plan_stages(pipeline: Mapping[str, Any], global_resources: Optional[Mapping[str, Any]] = None) -> List[Stage]:
    """The pipeline node's stages, validated, each after every stage it needs, with its merged request.

    Stages keep the order they are written in wherever their needs allow, so
    a plan reads like its config. Config nodes are read as plain containers (??? stays "???").
    """
    global_resources = _plain(global_resources)
    stages = {name: _planned_keys(node) for name, node in (pipeline.get("stages") or {}).items()}
    if not stages:
        raise PlanError("the pipeline has no stages")
    for name, node in stages.items():
        if not STAGE_NAME.match(str(name)):
            raise PlanError(f"stage name {name!r} must be letters, digits and underscores (no dots or dashes)")
        for need in node.get("needs") or ():
            if need not in stages:
                raise PlanError(f"stage {name} needs {need!r}, which is not a stage of this pipeline ({', '.join(stages)})")
    ordered: List[str] = []
    visiting: List[str] = []

    def visit(name: str) -> None:
        if name in ordered:
            return
        if name in visiting:
            cycle = visiting[visiting.index(name):] + [name]
            raise PlanError(f"the pipeline's stages form a cycle: {' -> '.join(cycle)}")
        visiting.append(name)
        for need in stages[name].get("needs") or ():
            visit(need)
        visiting.pop()
        ordered.append(name)

    for name in stages:
        visit(name)
        uses = stages[name].get("uses_gpus")
        if not (uses is None or uses == ALL_GPUS or (isinstance(uses, int) and uses >= 0)):
            raise PlanError(f"pipeline.stages.{name}.uses_gpus={uses!r}: a whole number >= 0, or {ALL_GPUS!r}")
    return [
        Stage(
            name=name,
            needs=tuple(stages[name].get("needs") or ()),
            resources=stage_resources(name, stages[name], global_resources),
            uses_gpus=stages[name].get("uses_gpus"),
        )
        for name in ordered
    ]


def _plain(node: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def _planned_keys(node: Any) -> Dict[str, Any]:
    """The keys of a stage node the planner reads, as plain values: not `effective_resources`, which shows
    the planner's own result (and, as a resolver, would refuse a bad value in OmegaConf's words)."""
    return {key: _plain(node[key]) for key in PLANNED_KEYS if key in node}


_FIELD = re.compile(r"\{([^{}]+)\}")


def job_name(template: str, stage: str, lookup: Callable[[str], Any]) -> str:
    """`{stage}_{dataset.name}` with the stage and the job config's values; a key the config
    lacks is dropped with the separator before it, so any app gets at least the stage name."""
    out = ""
    for part in re.split(r"(\{[^{}]+\})", template):
        m = _FIELD.fullmatch(part)
        if not m:
            out += part
            continue
        found = stage if m.group(1) == "stage" else lookup(m.group(1))
        text = "" if found is None else str(found)
        if not text:
            out = out.rstrip("_-.")
        out += text
    return re.sub(r"[^A-Za-z0-9_.-]", "_", out) or stage


def gpu_warnings(stages: Sequence[Stage]) -> List[str]:
    """Stages asking for more GPUs than their code uses."""
    return [f"stage {s.name} asks for {s.resources.gpus} GPUs but its training uses {s.uses_gpus}; the others "
            "would sit idle" for s in stages
            if isinstance(s.uses_gpus, int) and s.resources.gpus > s.uses_gpus]


def forced_stages(stages: Sequence[Stage], rerun: Set[str]) -> Set[str]:
    """The stages `rerun` names and every stage that needs one of them, however indirectly."""
    forced = set(rerun)
    for stage in stages:  # in dependency order, so one pass suffices
        if forced.intersection(stage.needs):
            forced.add(stage.name)
    return forced


def resume_actions(stages: Sequence[Stage], markers: Mapping[str, Optional[str]], done: Callable[[str], bool],
                   queued: Callable[[str], Optional[str]], rerun: Set[str]) -> Dict[str, Tuple[str, Optional[str]]]:
    """What to do with each stage: ("done", None), ("attached", job id) or ("submit", None).

    A stage is done when its completion marker exists (the app names the
    marker, keyed by what the stage trains from); one already queued or
    running for the same marker is attached to rather than submitted twice.
    `done(marker)` and `queued(marker) -> job id or None` ask the filesystem
    and the cluster; `rerun` forces stages and their dependents.
    """
    forced = forced_stages(stages, rerun)
    actions: Dict[str, Tuple[str, Optional[str]]] = {}
    for stage in stages:
        marker = markers.get(stage.name)
        if marker and stage.name not in forced:
            if done(marker):
                actions[stage.name] = ("done", None)
                continue
            job = queued(marker)
            if job:
                actions[stage.name] = ("attached", job)
                continue
        actions[stage.name] = ("submit", None)
    return actions


# ---------------------------------------------------------------------- what the cluster can ever run

@dataclass(frozen=True)
class Partition:
    """The most one job can get in a partition: its time limit and its largest node."""

    name: str
    default: bool
    max_time_s: Optional[int]  # None: no limit
    cpus: int
    mem_mb: int
    gpus: int


def limit_problem(resources: Resources, partition: Optional[str], partitions: Sequence[Partition]) -> Optional[str]:
    """Why the cluster could never run this request, naming what it allows; None if it fits."""
    if not partitions:
        return None
    names = ", ".join(p.name for p in partitions)
    if partition is None:
        chosen = next((p for p in partitions if p.default), None)
        if chosen is None:
            return None  # no default partition: sbatch will say so itself
    else:
        chosen = next((p for p in partitions if p.name == partition), None)
        if chosen is None:
            return f"partition {partition!r} does not exist; the partitions are {names}"
    where = f"partition {chosen.name}"
    if chosen.max_time_s is not None and resources.walltime_s > chosen.max_time_s:
        return f"walltime {resources.walltime} is over {where}'s limit of {format_walltime(chosen.max_time_s)}"
    if resources.cpus > chosen.cpus:
        return f"cpus {resources.cpus}: the largest node of {where} has {chosen.cpus}"
    if resources.mem_mb > chosen.mem_mb:
        return f"mem {resources.mem}: the largest node of {where} has {chosen.mem_mb // 1024}G ({chosen.mem_mb}M)"
    if resources.gpus > chosen.gpus:
        return f"gpus {resources.gpus}: the largest node of {where} has {chosen.gpus}"
    return None
