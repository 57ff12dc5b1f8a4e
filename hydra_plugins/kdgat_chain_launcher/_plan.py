"""Pure planning: which stages a pipeline node holds, in which order, with which resources.

No SLURM, no Hydra launching and no app code here, so that every rule is tested
on plain dictionaries. Values are validated before anything is submitted: a
bad request must fail on the login node, not hours later in the queue.
"""


import re
from dataclasses import dataclass, field
from typing import Any, Mapping

STAGE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WALLTIME = re.compile(r"^(?:(?:(?P<days>\d+)-)?(?P<hours>\d+):(?P<minutes>\d+):(?P<seconds>\d+)|(?P<only_minutes>\d+))$")
_MEMORY = re.compile(r"^(?P<amount>\d+)(?P<unit>[KMGT])B?$", re.IGNORECASE)
_MB_PER_UNIT = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}


class PlanError(ValueError):
    """A pipeline or resource request that can never be submitted; one line for the user."""


def parse_walltime(value: Any, where: str = "walltime") -> int:
    """Seconds in a SLURM time limit given as MM, HH:MM:SS or D-HH:MM:SS.

    Numbers are refused: YAML reads an unquoted 10:00:00 as the integer 36000,
    which SLURM would take as 36000 minutes.
    """
    if isinstance(value, bool) or not isinstance(value, str):
        hint = (" (a bare number is ambiguous: YAML reads an unquoted 10:00:00 as 36000; quote it, "
                "as \"10:00:00\" in YAML or walltime='30' on the command line)") if isinstance(value, int) else ""
        raise PlanError(f"{where}={value!r} is not a walltime string{hint}; use MM, HH:MM:SS or D-HH:MM:SS")
    m = _WALLTIME.match(value.strip())
    if not m:
        raise PlanError(f"{where}={value!r} is not a walltime; use MM, HH:MM:SS or D-HH:MM:SS")
    if m["only_minutes"] is not None:
        seconds = int(m["only_minutes"]) * 60
    else:
        minutes, secs = int(m["minutes"]), int(m["seconds"])
        if minutes > 59 or secs > 59:
            raise PlanError(f"{where}={value!r} has minutes or seconds above 59; use MM, HH:MM:SS or D-HH:MM:SS")
        seconds = ((int(m["days"] or 0) * 24 + int(m["hours"])) * 60 + minutes) * 60 + secs
    if seconds <= 0:
        raise PlanError(f"{where}={value!r} must be longer than zero")
    return seconds


def format_walltime(seconds: int) -> str:
    """The D-HH:MM:SS form sbatch reads, from seconds."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    hms = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{hms}" if days else hms


def parse_memory(value: Any, where: str = "mem") -> int:
    """Megabytes in a memory request such as 96G or 96000M (a unit is required)."""
    m = _MEMORY.match(value.strip()) if isinstance(value, str) else None
    if not m:
        raise PlanError(f"{where}={value!r} is not a memory size; use a whole number with a unit, such as 96G or 96000M")
    mb = int(m["amount"]) * _MB_PER_UNIT[m["unit"].upper()]
    if mb < 1:
        raise PlanError(f"{where}={value!r} must be at least 1M")
    return int(mb)


def parse_count(value: Any, where: str, minimum: int) -> int:
    """A whole number of CPUs (minimum 1) or GPUs (minimum 0)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PlanError(f"{where}={value!r} must be a whole number >= {minimum}")
    return value


@dataclass(frozen=True)
class Resources:
    """One stage job's request, validated; every field reaches the job's #SBATCH lines."""

    walltime_s: int
    mem_mb: int
    cpus: int
    gpus: int
    partition: str | None = None
    sbatch: Mapping[str, Any] = field(default_factory=dict)

    @property
    def walltime(self) -> str:
        return format_walltime(self.walltime_s)

    @property
    def mem(self) -> str:
        return f"{self.mem_mb // 1024}G" if self.mem_mb % 1024 == 0 else f"{self.mem_mb}M"


def parse_resources(node: Mapping[str, Any], where: str) -> Resources:
    missing = [k for k in ("walltime", "mem", "cpus", "gpus") if node.get(k) is None]
    if missing:
        raise PlanError(f"{where} has no {', '.join(missing)}")
    partition = node.get("partition")
    if partition is not None and not (isinstance(partition, str) and re.match(r"^[\w.-]+$", partition)):
        raise PlanError(f"{where}.partition={partition!r} is not a partition name")
    sbatch = node.get("sbatch") or {}
    if not isinstance(sbatch, Mapping):
        raise PlanError(f"{where}.sbatch must be a mapping of sbatch options, such as {{constraint: a100}}")
    return Resources(
        walltime_s=parse_walltime(node["walltime"], f"{where}.walltime"),
        mem_mb=parse_memory(node["mem"], f"{where}.mem"),
        cpus=parse_count(node["cpus"], f"{where}.cpus", 1),
        gpus=parse_count(node["gpus"], f"{where}.gpus", 0),
        partition=partition,
        sbatch=dict(sbatch),
    )


@dataclass(frozen=True)
class Stage:
    name: str
    needs: tuple[str, ...]
    resources: Resources


def plan_stages(pipeline: Mapping[str, Any]) -> list[Stage]:
    """The pipeline node's stages, validated, each after every stage it needs.

    Stages keep the order they are written in wherever their needs allow, so
    a plan reads like its config.
    """
    stages = pipeline.get("stages") or {}
    if not stages:
        raise PlanError("the pipeline has no stages")
    for name, node in stages.items():
        if not STAGE_NAME.match(str(name)):
            raise PlanError(f"stage name {name!r} must be letters, digits and underscores (no dots or dashes)")
        for need in node.get("needs") or ():
            if need not in stages:
                raise PlanError(f"stage {name} needs {need!r}, which is not a stage of this pipeline ({', '.join(stages)})")
    ordered: list[str] = []
    visiting: list[str] = []

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
    return [
        Stage(
            name=name,
            needs=tuple(stages[name].get("needs") or ()),
            resources=parse_resources(stages[name].get("resources") or {}, f"pipeline.stages.{name}.resources"),
        )
        for name in ordered
    ]


_FIELD = re.compile(r"\{([^{}]+)\}")


def job_name(template: str, stage: str, lookup) -> str:
    """`{stage}_{dataset.name}` with the stage and the job config's values; a key the config
    lacks is dropped with the separator before it, so any app gets at least the stage name."""
    def value(key: str) -> str:
        if key == "stage":
            return stage
        found = lookup(key)
        return "" if found is None else str(found)

    parts = re.split(r"(\{[^{}]+\})", template)
    out = ""
    for part in parts:
        m = _FIELD.fullmatch(part)
        if not m:
            out += part
            continue
        text = value(m.group(1))
        if not text:
            out = out.rstrip("_-.")
        out += text
    return re.sub(r"[^A-Za-z0-9_.-]", "_", out) or stage


def gpu_warnings(pipeline: Mapping[str, Any], stages: "list[Stage]") -> list[str]:
    """Stages asking for more GPUs than their code uses (`uses_gpus` in the stage node)."""
    warnings = []
    for stage in stages:
        uses = (pipeline.get("stages") or {}).get(stage.name, {}).get("uses_gpus")
        if uses is not None and stage.resources.gpus > uses:
            warnings.append(f"stage {stage.name} asks for {stage.resources.gpus} GPUs but its training uses "
                            f"{uses}; the others would sit idle")
    return warnings


def sbatch_parameters(stage: Stage, launcher: Mapping[str, Any], name: str, after: "list[str]",
                      dependency: str = "afterok") -> dict:
    """submitit SlurmExecutor parameters for one stage job: every resource reaches #SBATCH.

    `after`: the jobs it waits on; `dependency`: afterok (every one finished well), or aftercorr
    for an array whose task i waits on task i of each array in `after`."""
    res = stage.resources
    params: dict[str, Any] = {
        "job_name": name,
        # Whole minutes, rounded up: submitit also reads `time` to tell a timeout from a preemption.
        "time": -(-res.walltime_s // 60),
        "mem": res.mem,
        "cpus_per_task": res.cpus,
        "signal_delay_s": int(launcher.get("signal_delay_s") or 120),
        "stderr_to_stdout": True,
    }
    if res.gpus:
        gpu_type = launcher.get("gpu_type")
        params["gres"] = f"gpu:{gpu_type}:{res.gpus}" if gpu_type else f"gpu:{res.gpus}"
    for key in ("account", "qos", "constraint", "mail_type", "mail_user"):
        if launcher.get(key):
            params[key] = launcher[key]
    partition = res.partition or launcher.get("partition")
    if partition:
        params["partition"] = partition
    extra = {**dict(launcher.get("additional_parameters") or {}), **dict(res.sbatch)}
    if after:
        extra["dependency"] = f"{dependency}:" + ":".join(after)
        extra["kill-on-invalid-dep"] = "yes"
    if extra:
        params["additional_parameters"] = extra
    return params


def forced_stages(stages: "list[Stage]", rerun: "set[str]") -> "set[str]":
    """The stages `rerun` names and every stage that needs one of them, however indirectly."""
    forced = set(rerun)
    for stage in stages:  # in dependency order, so one pass suffices
        if forced.intersection(stage.needs):
            forced.add(stage.name)
    return forced


def resume_actions(stages: "list[Stage]", markers: Mapping[str, Any], done, queued, rerun: "set[str]") -> dict:
    """What to do with each stage: ("done", None), ("attached", job id) or ("submit", None).

    A stage is done when its completion marker exists (the app names the
    marker, keyed by what the stage trains from); one already queued or
    running for the same marker is attached to rather than submitted twice.
    `done(marker)` and `queued(marker) -> job id or None` ask the filesystem
    and the cluster; `rerun` forces stages and their dependents.
    """
    forced = forced_stages(stages, rerun)
    actions = {}
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
    """The most one job can get in a partition: its MaxTime and its largest node (sinfo)."""

    name: str
    default: bool
    max_time_s: "int | None"  # None: no limit
    cpus: int
    mem_mb: int
    gpus: int


def parse_sinfo(text: str) -> "list[Partition]":
    """Partitions from `sinfo -h -o '%P|%l|%c|%m|%G'` (one line per partition and kind of node)."""
    found: "dict[str, Partition]" = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 5:
            continue
        name, limit, cpus, mem, gres = parts
        default = name.endswith("*")
        name = name.rstrip("*")
        try:
            max_time = None if limit.strip().lower() in ("infinite", "unlimited", "n/a") else parse_walltime(limit.strip())
        except PlanError:
            max_time = None
        gpus = sum(int(n) for n in re.findall(r"gpu(?::[^:,(]+)?:(\d+)", gres))
        new = Partition(name, default, max_time, int(cpus.rstrip("+") or 0), int(re.sub(r"\D", "", mem) or 0), gpus)
        old = found.get(name)
        if old:  # nodes of several kinds: the largest of each
            new = Partition(name, old.default or default, old.max_time_s if old.max_time_s is not None else max_time,
                            max(old.cpus, new.cpus), max(old.mem_mb, new.mem_mb), max(old.gpus, new.gpus))
        found[name] = new
    return list(found.values())


def limit_problem(resources: Resources, partition: "str | None", partitions: "list[Partition]") -> "str | None":
    """Why SLURM could never run this request, naming what the cluster allows; None if it fits."""
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
