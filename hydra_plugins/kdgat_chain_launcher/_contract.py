"""The contract between the launcher and an app: what a stage node declares, what the app says about a
stage's state, and the manifest the launcher writes for `status`, `report` and people.

An app's config holds a `pipeline` node whose `stages.<name>` nodes carry STAGE_KEYS:

    needs:               [stage, ...]   stages of this pipeline whose output it reads
    uses_gpus:           int or "all"   GPUs its code uses (asking for more is a warning); "all": one task
                                        per GPU of its request (data-parallel), each with torch.distributed's env
    default_resources:   {...}          the stage's own defaults (lowest)
    pipeline_resources:  {...}          the pipeline's defaults for this stage
    resources:           {...}          the user's override for this stage (highest), fields ??? when unset
    effective_resources: ${kdgat_chain.resources:}   what the planner makes of them (for --cfg job --resolve)

Between the last two levels come the config's global `resources` node, when it has one. Two keys
of the pipeline node name the app's functions (`module.function`), both optional:

    complete:     (config) -> None, called on each job's composed config before it is planned, to
                  fill in what composition could not (kdgat: the stages of a `presets` list)
    stage_state:  (config, stage name) -> StageState, called once per stage, to skip finished stages
                  and refuse stages that could never run

A ValueError either raises is bad input: the launch is refused with its message, in one line.
"""

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra_plugins.kdgat_chain_launcher._files import write_text_atomic
from hydra_plugins.kdgat_chain_launcher._resources import ResourceRequest

RESOURCE_LEVELS = ("default_resources", "pipeline_resources", "resources")
SHOWN_RESOURCES = "effective_resources"  # the planner's result, for people; the launcher never reads it
STAGE_KEYS = ("needs", "uses_gpus", *RESOURCE_LEVELS, SHOWN_RESOURCES)
MANIFEST = "manifest.json"
MANIFEST_VERSION = 2


@dataclass
class StageNode:
    """A stage node's keys that the launcher reads, as a structured config an app's stage settings can
    extend (a dataclass subclass, or `builds(..., builds_bases=(StageNode,))`)."""

    needs: List[str] = field(default_factory=list)
    uses_gpus: Any = None  # a whole number, or "all" (OmegaConf has no Union of int and str)
    default_resources: Dict[str, Any] = field(default_factory=dict)
    pipeline_resources: Dict[str, Any] = field(default_factory=dict)
    resources: ResourceRequest = field(default_factory=ResourceRequest)
    effective_resources: Any = "${kdgat_chain.resources:}"


@dataclass(frozen=True)
class StageState:
    """What the app knows of one stage before anything is submitted.

    marker:  a file whose existence means the stage is trained for these settings (None: unknown yet)
    stale:   why a stage whose marker exists must run again all the same (its files are damaged)
    missing: why the stage could never run as submitted (no dataset, an input nobody trains)
    note:    said beside the stage in the launcher's table
    """

    marker: Optional[str] = None
    stale: Optional[str] = None
    missing: Optional[str] = None
    note: Optional[str] = None


@dataclass
class StageRecord:
    """One stage of one chain, as the launcher left it."""

    stage: str
    action: str  # submitted | done | attached | shared  (what the launcher did)
    job_id: str = "-"  # the job that runs it ("-" when done); an array task is "<array>_<task>"
    job_name: str = ""
    needs: List[str] = field(default_factory=list)
    depends_on: List[str] = field(default_factory=list)  # the job ids it waits on
    walltime: str = ""
    mem: str = ""
    cpus: int = 0
    gpus: int = 0
    partition: Optional[str] = None
    log: str = "-"
    note: str = ""  # why it trains again, that it was trained by other code, ...
    marker: str = ""  # the app's completion marker for the stage (StageState.marker), when it names one
    script: str = ""
    script_text: str = ""
    config: str = ""

    @property
    def status(self) -> str:
        """The launcher table's words for what was done."""
        words = {"done": "skipped (done)", "attached": "attached (queued)", "shared": "shared in this sweep"}
        text = words.get(self.action, self.action)
        return f"{text}; {self.note}" if self.note else text

    @property
    def submitted(self) -> bool:
        return self.action == "submitted"


@dataclass
class ChainRecord:
    num: int  # Hydra's job number: the sweep's <num> folder
    overrides: List[str]
    stages: List[StageRecord]
    guard: str = ""  # the job that retries the chain's stages after an out-of-memory or last timeout


@dataclass
class Attempt:
    """One try of a chain's stages: the launcher's submission (number 1), or a guard's retry of a failed
    stage with everything after it. One file each, `<sweep>/<num>/retry/attempt-<number>.json`, written
    once by whoever submitted it, so that guards finishing together never write the same file."""

    number: int
    jobs: Dict[str, str]  # stage -> its job in this attempt (stages not tried again keep earlier ones)
    logs: Dict[str, str]  # stage -> its log
    requests: Dict[str, Dict[str, Any]]  # stage -> {walltime, mem, cpus, gpus, partition} of this attempt
    retries: Dict[str, int] = field(default_factory=dict)  # per stage, "<stage>:oom" / "<stage>:timeout" -> done
    guard: str = ""  # the guard job watching this attempt's jobs
    cause: str = ""  # why it exists: "stage fusion: 144G after OUT_OF_MEMORY at 96G (job 123)"
    outcome: str = ""  # written by the guard into outcome-<number>.json: what became of this attempt


@dataclass
class QueuedRecord:
    """`<marker>.queued`, beside a stage's completion marker: the job that will write the marker, so that
    a later launch of the same stage waits on it (Backend.alive) instead of submitting it again."""

    job_id: str
    stage: str
    sweep_dir: str
    cluster: str  # the backend that runs it


QUEUED = ".queued"


def write_queued(marker: str, record: QueuedRecord) -> None:
    write_text_atomic(Path(marker + QUEUED), json.dumps(dataclasses.asdict(record)) + "\n")


def read_queued(marker: str) -> Optional[QueuedRecord]:
    """The job recorded for a marker; None when there is none or it cannot be read."""
    try:
        raw = json.loads(Path(marker + QUEUED).read_text())
        return QueuedRecord(raw["job_id"], raw.get("stage", ""), raw.get("sweep_dir", ""), raw.get("cluster", "slurm"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


RETRY_DIR = "retry"


def attempt_path(chain_dir: Path, number: int, kind: str = "attempt") -> Path:
    return Path(chain_dir) / RETRY_DIR / f"{kind}-{number}.json"


def write_attempt(chain_dir: Path, attempt: Attempt) -> None:
    write_text_atomic(attempt_path(chain_dir, attempt.number), json.dumps(dataclasses.asdict(attempt), indent=1) + "\n")


def write_outcome(chain_dir: Path, number: int, outcome: str) -> None:
    """What the guard of attempt `number` found and did, in words."""
    write_text_atomic(attempt_path(chain_dir, number, "outcome"), json.dumps({"outcome": outcome}) + "\n")


def read_attempts(chain_dir: Path) -> List[Attempt]:
    """A chain's attempts in order, each with its guard's outcome when there is one; [] without retries."""
    attempts = []
    for path in sorted((Path(chain_dir) / RETRY_DIR).glob("attempt-*.json"), key=lambda p: int(p.stem[8:])):
        attempt = Attempt(**_known(Attempt, json.loads(path.read_text())))
        outcome = attempt_path(chain_dir, attempt.number, "outcome")
        if outcome.is_file():
            attempt.outcome = json.loads(outcome.read_text())["outcome"]
        attempts.append(attempt)
    return attempts


@dataclass
class Manifest:
    """Every chain of one launch: written once, when everything is queued."""

    sweep_dir: str
    submitted: str
    cluster: str  # slurm | local
    chains: List[ChainRecord] = field(default_factory=list)
    submissions: int = 0
    version: int = MANIFEST_VERSION

    def job_ids(self) -> List[str]:
        return [s.job_id for c in self.chains for s in c.stages if s.submitted]


def write_manifest(manifest: Manifest) -> Path:
    path = Path(manifest.sweep_dir) / MANIFEST
    write_text_atomic(path, json.dumps(dataclasses.asdict(manifest), indent=2) + "\n")
    return path


def read_manifest(sweep_dir: Path) -> Manifest:
    """The manifest of a sweep; one written by an older launcher (no version) is read as well, and keeps
    its version number; a newer launcher's is refused rather than misread."""
    raw = json.loads((Path(sweep_dir) / MANIFEST).read_text())
    version = raw.get("version", 1)
    if version > MANIFEST_VERSION:
        raise ValueError(f"{Path(sweep_dir) / MANIFEST} is manifest version {version}; this launcher reads "
                         f"up to {MANIFEST_VERSION}: update kdgat_chain")
    chains = []
    for chain in raw.get("chains", []):
        stages = [StageRecord(**_known(StageRecord, _from_v1(s) if version == 1 else s))
                  for s in chain.get("stages", [])]
        chains.append(ChainRecord(num=chain["num"], overrides=list(chain.get("overrides", [])), stages=stages,
                                  guard=chain.get("guard", "")))
    return Manifest(sweep_dir=raw.get("sweep_dir", str(sweep_dir)), submitted=raw.get("submitted", ""),
                    cluster=raw.get("cluster", "slurm"), chains=chains, submissions=raw.get("submissions", 0),
                    version=version)


def _known(record: type, raw: Dict[str, Any]) -> Dict[str, Any]:
    """The keys of a JSON record that `record` has: a key a newer launcher added is left, not refused."""
    names = {f.name for f in dataclasses.fields(record)}
    return {k: v for k, v in raw.items() if k in names}


def _from_v1(stage: Dict[str, Any]) -> Dict[str, Any]:
    """Version 1 kept what was done and its note in one `status` string."""
    status, _, note = stage.get("status", "").partition("; ")
    action = {"skipped (done)": "done", "attached (queued)": "attached", "shared in this sweep": "shared"}.get(
        status, status)
    return {**stage, "action": action, "note": note}
