"""The artifact authority: every path kdgat reads or writes under `paths.*` is computed here.

Under `paths.artifacts`:

    cache/<dataset>/<data key>/            prepared graphs, vocabulary, split (kdgat.data.dataset)
    <dataset>/<stage>/<fingerprint>/       one trained stage: model.pt, config.yaml, metrics.json,
                                           PNG figures, checkpoint.pt while it trains, done.json last
    <dataset>/<stage>/latest               link to the newest finished fingerprint, for people

A stage's fingerprint hashes what changes what it trains: the data (raw
files' identity and preprocessing), the seed, the training settings, the
stage's own settings and model size, and the fingerprints of its inputs; not
resources, paths, launcher or `hydra.*` settings. A changed setting writes
beside the old model, which chains still queued keep reading. Paths are
absolute, so a job started elsewhere reads what the submitting command meant.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import socket
import subprocess
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra_plugins.kdgat_chain_launcher import STAGE_KEYS, StageState, replace_symlink
from kdgat.errors import KdgatError
from kdgat.stages.registry import STAGES, scale_gat

MARKER = "done.json"
# The files of a finished stage that later stages and runs read back: the marker records their sha256, and a
# stage whose files no longer match is trained again, never loaded (torch.load does not notice flipped bytes).
VOUCHED = ("model.pt", "metrics.json")
LATEST = "latest"
# Settings that do not change what a stage learns, so stay out of fingerprints: for a stage node, the
# launcher's keys (needs, resources) and what hydra-zen adds (_target_).
NOT_FINGERPRINTED = {"train": ("device", "processes", "slow_epoch_s", "test_hold_mem_mb"), "stage": STAGE_KEYS}


def absolute(path: str | Path) -> Path:
    """A path of the config made absolute where the command was typed (kdgat.config.command_path)."""
    from kdgat.config import command_path

    return Path(command_path(path)).resolve()


def dataset_dir(cfg: Any) -> Path:
    """The raw dataset folder (train_*/test_0N_<scenario>) of the composed config."""
    return absolute(cfg.dataset.path)


def artifacts_root(cfg: Any) -> Path:
    return absolute(cfg.paths.artifacts)


def cache_dir(cfg: Any) -> Path:
    """Processed graphs, vocabulary and split of the dataset, shared by every stage."""
    return artifacts_root(cfg) / "cache" / cfg.dataset.name


def data_key(cfg: Any) -> str:
    """Identity of the raw files plus the preprocessing settings (kdgat.data.dataset's cache key)."""
    from kdgat.data.identity import cache_key

    p = cfg.preprocess
    return cache_key(dataset_dir(cfg), window=p.window, stride=p.stride, val_fraction=p.val_fraction,
                     seed=p.split_seed)


@dataclass(frozen=True)
class StageArtifacts:
    """Where one trained stage lives, and whether it finished."""

    stage: str
    preset: str
    dir: Path
    fingerprint: str

    @property
    def model(self) -> Path:
        return self.dir / "model.pt"

    @property
    def checkpoint(self) -> Path:
        return self.dir / "checkpoint.pt"

    @property
    def config(self) -> Path:
        return self.dir / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.dir / "metrics.json"

    @property
    def scores(self) -> Path:
        """The fusion stage's per-window inputs, output and labels on every split (numpy .npz)."""
        return self.dir / "scores.npz"

    @property
    def marker(self) -> Path:
        return self.dir / MARKER

    def done(self) -> bool:
        """Finished, with every file its marker vouches for as it was written."""
        return self.marker.is_file() and self.damage() is None

    def damage(self) -> str | None:
        """Why a finished stage cannot be used as it is (a vouched-for file missing or changed), or None."""
        try:
            recorded = self.record().get("files") or {}
        except (OSError, ValueError) as err:
            return f"{self.marker} is unreadable ({type(err).__name__})"
        for name, digest in recorded.items():
            path = self.dir / name
            if not path.is_file():
                return f"{path} is missing"
            st = path.stat()
            if _sha256(str(path), st.st_size, st.st_mtime_ns) != digest:
                return f"{path} does not match its sha256 in {MARKER}"
        return None

    def record(self) -> dict[str, Any]:
        return json.loads(self.marker.read_text())


@functools.lru_cache(maxsize=256)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """A file's sha256, computed once per version of the file (size and mtime)."""
    from kdgat.atomic import sha256_file

    return sha256_file(path)


def _plain(node: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def model_sizes(cfg: Any, name: str) -> dict[str, Any] | None:
    """Constructor sizes of the stage's model, from `models.*` and the stage's size and scale."""
    node = cfg.pipeline.stages[name]
    kind = STAGES[node.preset].model
    if kind is None:
        return None
    sizes = dict(_plain(cfg.models[kind][node.size]))
    if kind == "gat":
        sizes = scale_gat(sizes, float(node.get("scale", 1.0)))
    return sizes


def fingerprint_document(cfg: Any, name: str, inputs: dict[str, StageArtifacts],
                         data: str | None = None) -> dict[str, Any]:
    """What stage `name`'s fingerprint hashes; `data`: its data_key when the caller has it already."""
    stage = cfg.pipeline.stages[name]
    node = {k: _plain(stage[k]) for k in stage if k not in NOT_FINGERPRINTED["stage"] and not k.startswith("_")}
    return {
        "dataset": cfg.dataset.name,
        "data": data if data is not None else data_key(cfg),
        "seed": cfg.seed,
        "train": {k: v for k, v in _plain(cfg.train).items() if k not in NOT_FINGERPRINTED["train"]},
        "stage": node,
        "model": model_sizes(cfg, name),
        "inputs": {kind: art.fingerprint for kind, art in sorted(inputs.items())},
    }


def stage_artifacts(cfg: Any, name: str, memo: dict | None = None) -> StageArtifacts:
    """The artifacts of stage `name` of the composed config (computing its fingerprint).

    `memo`: a dict the caller keeps for one unchanging config, so that a stage read by several
    others (and asked about several times, as the launcher's resolvers do) is hashed once."""
    if memo is not None and ("artifacts", name) in memo:
        return memo[("artifacts", name)]
    data = None
    if memo is not None:  # the raw files' identity, listed and stat-ed once for every stage of the config
        data = memo["data"] = memo.get("data") or data_key(cfg)
    doc = fingerprint_document(cfg, name, stage_inputs(cfg, name, memo), data)
    fp = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]
    art = StageArtifacts(stage=name, preset=cfg.pipeline.stages[name].preset,
                         dir=artifacts_root(cfg) / cfg.dataset.name / name / fp, fingerprint=fp)
    if memo is not None:
        memo[("artifacts", name)] = art
    return art


def stage_inputs(cfg: Any, name: str, memo: dict | None = None) -> dict[str, StageArtifacts]:
    """What stage `name` reads, by kind (vgae, gat, teacher).

    An input made by a stage this pipeline runs is that stage's artifacts
    (finished or not yet); any other is the newest finished one trained on the
    same data and seed, found by its completion marker.
    """
    found: dict[str, StageArtifacts] = {}
    for kind, makers, own in _reads(cfg, name):
        found[kind] = stage_artifacts(cfg, own, memo) if own else trained_elsewhere(cfg, name, kind, makers)
    return found


def _reads(cfg: Any, name: str) -> list[tuple[str, tuple[str, ...], str | None]]:
    """(kind, the presets that make it, the stage of this pipeline that does, or None) for each input of `name`."""
    stages = cfg.pipeline.stages
    node = stages[name]
    out = []
    for kind, makers in STAGES[node.preset].reads.items():
        if kind == "teacher":
            makers = (node.teacher,)
        own = [n for n in node.needs if stages[n].preset in makers]
        out.append((kind, makers, own[0] if own else None))
    return out


def trained_elsewhere(cfg: Any, reader: str, kind: str, makers: tuple[str, ...]) -> StageArtifacts:
    """The newest finished stage of one of `makers` for this dataset, data settings and seed."""
    key = data_key(cfg)
    candidates = []
    for marker in (artifacts_root(cfg) / cfg.dataset.name).glob(f"*/*/{MARKER}"):
        if marker.parent.name == LATEST:  # a moving link to a fingerprint the glob finds by its own name
            continue
        try:
            rec = json.loads(marker.read_text())
        except (OSError, ValueError):
            continue
        if rec.get("preset") in makers and rec.get("data") == key and rec.get("seed") == cfg.seed \
                and (kind != "teacher" or rec.get("size") == "teacher") \
                and StageArtifacts(rec.get("stage"), rec.get("preset"), marker.parent, rec.get("fingerprint")).done():
            candidates.append((rec.get("finished", ""), rec, marker.parent))
    if not candidates:
        raise KdgatError(_untrained(cfg, reader, kind, makers))
    _, rec, path = max(candidates, key=lambda c: c[0])
    return StageArtifacts(stage=rec["stage"], preset=rec["preset"], dir=path, fingerprint=rec["fingerprint"])


def _untrained(cfg: Any, reader: str, kind: str, makers: tuple[str, ...]) -> str:
    hint = (f"run the teacher pipeline first: python train.py pipeline=teacher dataset={cfg.dataset.name}"
            if kind == "teacher" else f"add {makers[0]} to the pipeline, or train it first")
    return (f"stage {reader} reads a trained {kind} ({' or '.join(makers)}) of dataset {cfg.dataset.name}, and none "
            f"is finished under {artifacts_root(cfg) / cfg.dataset.name} for these data settings and seed "
            f"{cfg.seed}: {hint}")


def stage_log_link(cfg: Any, stage: str) -> Path:
    """A stable path that points at the newest SLURM log of `stage` on this dataset (for tail -f)."""
    return artifacts_root(cfg) / "slurm_runs" / cfg.dataset.name / f"{stage}.log"


# The launcher asks about every stage of one frozen config: a fingerprint memo per config object, by identity
# (a DictConfig's hash is its whole content) and for as long as the config lives, so that a stage read by
# several others is fingerprinted, and the raw files listed, once per launch.
_LAUNCH_MEMOS: dict[int, tuple[weakref.ref, dict]] = {}


def _launch_memo(cfg: Any) -> dict:
    entry = _LAUNCH_MEMOS.get(id(cfg))
    if entry is None or entry[0]() is not cfg:
        entry = (weakref.ref(cfg, lambda _, key=id(cfg): _LAUNCH_MEMOS.pop(key, None)), {})
        _LAUNCH_MEMOS[id(cfg)] = entry
    return entry[1]


def stage_state(cfg: Any, name: str) -> StageState:
    """What the launcher asks before submitting stage `name` (the pipeline's `stage_state`): its completion
    marker, why a finished stage must be trained again, why it could never run, and a note to show."""
    memo = _launch_memo(cfg)
    try:
        art = stage_artifacts(cfg, name, memo)
    except KdgatError:  # an input trained elsewhere is missing: said by `missing`
        return StageState(missing=_missing(cfg, name, memo))
    if not art.marker.is_file():
        return StageState(marker=str(art.marker), missing=_missing(cfg, name, memo))
    return StageState(marker=str(art.marker), stale=art.damage(), note=_trained_by_other_code(art))


def _trained_by_other_code(art: StageArtifacts) -> str | None:
    """Said beside a finished stage trained by other code than this (it is reused all the same;
    `hydra.launcher.rerun=<stage>` trains it again)."""
    try:
        then = art.record().get("code", {}).get("commit")
    except (OSError, ValueError):
        return None
    now = code_version()["commit"]
    if then and now and then != now:
        return f"trained at commit {then[:10]}, code is now {now[:10]}"
    return None


def _missing(cfg: Any, name: str, memo: dict | None = None) -> str | None:
    """Why stage `name` can never run as submitted, for the launcher to refuse the chain before any sbatch: a
    missing or unusable dataset (its layout, or files whose first lines hold no usable frame), a synthetic folder
    made with other settings, or an input no finished stage provides; None when nothing is known to be missing."""
    from kdgat.data.locate import missing_dataset_message, synthetic_mismatch
    from kdgat.data.layout import dataset_problem

    path = dataset_dir(cfg)
    if not path.is_dir():
        if cfg.dataset.get("synthetic") is None:
            return missing_dataset_message(cfg.dataset.name, path, cfg.dataset.get("source"))
        # Generated by the first stage that runs, so nothing trained elsewhere can have been trained on it yet.
        return next((_untrained(cfg, name, kind, makers) for kind, makers, own in _reads(cfg, name) if not own), None)
    memo = {} if memo is None else memo
    if "dataset_problem" not in memo:  # the dataset's files sniffed once for every stage of a launch
        memo["dataset_problem"] = synthetic_mismatch(cfg.dataset, path) or dataset_problem(path)
    if memo["dataset_problem"]:
        return memo["dataset_problem"]
    try:
        stage_inputs(cfg, name, memo)
    except KdgatError as err:
        return str(err)
    return None


def require_finished(reader: str, inputs: dict[str, StageArtifacts]) -> None:
    """Refuse to start a stage whose inputs are not trained: name the file and the stage that makes it."""
    for kind, art in inputs.items():
        damage = art.damage() if art.marker.is_file() else None
        if damage:
            raise KdgatError(f"stage {reader} needs {art.model} ({kind}), and stage {art.stage}'s files are damaged "
                             f"({damage}): train it again with stage={art.stage} first")
        if not art.done() or not art.model.is_file():
            raise KdgatError(f"stage {reader} needs {art.model} ({kind}), which stage {art.stage} makes "
                             f"and has not finished: run stage={art.stage} first")


@functools.lru_cache(maxsize=1)
def code_version() -> dict[str, Any]:
    """The git commit of the code that trained a model, and whether the tree had changes."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                    capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    return {"commit": commit, "dirty": dirty if commit else None}


def finish(cfg: Any, art: StageArtifacts, inputs: dict[str, StageArtifacts], extra: dict[str, Any]) -> None:
    """Write the completion marker (last of all a stage's files) and point `latest` at it."""
    from kdgat.atomic import digest_path, sha256_file, write_json_atomic

    node = cfg.pipeline.stages[art.stage]
    record = {
        "stage": art.stage, "preset": art.preset, "size": node.get("size"), "fingerprint": art.fingerprint,
        "dataset": cfg.dataset.name, "data": data_key(cfg), "seed": cfg.seed,
        "inputs": {k: {"stage": a.stage, "fingerprint": a.fingerprint, "dir": str(a.dir)} for k, a in inputs.items()},
        "code": code_version(), "host": socket.gethostname(), "slurm_job": os.environ.get("SLURM_JOB_ID"),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra,
        "files": {name: sha256_file(art.dir / name) for name in VOUCHED if (art.dir / name).is_file()},
    }
    art.checkpoint.unlink(missing_ok=True)
    digest_path(art.checkpoint).unlink(missing_ok=True)
    write_json_atomic(art.marker, record)
    replace_symlink(art.dir.parent / LATEST, art.dir.name)
