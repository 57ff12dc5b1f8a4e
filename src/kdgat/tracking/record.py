"""What a stage's MLflow run holds, as plain dicts: its params, tags, chain, and metrics from its own files.

A trained stage's folder already keeps everything a run shows (metrics.json
with the per-epoch history, config.yaml, the figures), so a run can always be
completed from the folder: at the stage's end, or later by `kdgat track sync`
when the server was down. The one file tracking adds there, `mlflow_run.json`,
links the stage to its run (the store, the run ids, and whether the run holds
everything yet) so that a requeued stage continues its own run. Nothing here
imports MLflow.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import socket
import sys
from pathlib import Path
from typing import Any

POINTER = "mlflow_run.json"
# A pointer's state: the run holds everything ("complete"), it is being written ("running"), or what it holds
# is not known to be all ("pending": tracking failed or was refused); `kdgat track sync` completes the last two.
COMPLETE, RUNNING, PENDING, FAILED = "complete", "running", "pending", "failed"
# Overrides that say how or where a chain runs, not what it trains: left out of the chain's identity.
NOT_CHAIN = ("hydra", "stage", "tracking", "progress", "resources", "train.device", "train.slow_epoch_s")
FIGURES = "*.png"
LOGGED_FILES = ("metrics.json", "config.yaml")
# Per-epoch history keys that are named otherwise as MLflow metrics.
EPOCH_NAMES = {"seconds": "epoch_seconds"}


def read_pointer(stage_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((Path(stage_dir) / POINTER).read_text())
    except (OSError, ValueError):
        return None


def write_pointer(stage_dir: Path, pointer: dict[str, Any]) -> None:
    from kdgat.atomic import write_json_atomic

    write_json_atomic(Path(stage_dir) / POINTER, pointer)


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level with dotted keys."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def params(cfg: Any, name: str, inputs: dict[str, Any]) -> dict[str, str]:
    """The settings that enter the stage's fingerprint, dotted: they never change within one run."""
    from omegaconf import OmegaConf

    from kdgat.artifacts import fingerprint_document

    doc = fingerprint_document(cfg, name, inputs)
    doc["data_key"] = doc.pop("data")
    doc.pop("inputs")  # tags: input.<kind>
    doc["preprocess"] = OmegaConf.to_container(cfg.preprocess, resolve=True)  # inside data_key, shown plainly
    return {k: _text(v) for k, v in flatten(doc).items()}


def _hydra_job() -> tuple[list[str], dict[str, str]]:
    """The job's command-line overrides, and its folders as tags: the sweep's (multirun) and its own."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return [], {}
    hc = HydraConfig.get()
    folders = {"hydra_dir": str(hc.runtime.output_dir)}
    if str(hc.mode) == "RunMode.MULTIRUN":
        folders["sweep_dir"] = str(hc.sweep.dir)
    return list(hc.overrides.task), folders


def _chain_override(override: str) -> bool:
    key = override.split("=", 1)[0].lstrip("+~")
    parts = key.replace("/", ".").split(".")
    return not (key.startswith(NOT_CHAIN) or "resources" in parts or key in ("pipeline", "dataset"))


def chain(cfg: Any, experiment: str, overrides: list[str]) -> dict[str, Any]:
    """A chain's parent run: found again by its key (experiment, pipeline, dataset and the chain's other
    overrides), so every stage of the chain, in any job and any later launch, nests under the same one."""
    extra = sorted(o for o in overrides if _chain_override(o))
    ident = json.dumps([experiment, str(cfg.pipeline.name), str(cfg.dataset.name), extra])
    key = hashlib.sha256(ident.encode()).hexdigest()[:16]
    name = " ".join([str(cfg.pipeline.name), str(cfg.dataset.name), *extra])
    return {"key": key, "name": name,
            "tags": {"kdgat.chain": key, "pipeline": str(cfg.pipeline.name), "dataset": str(cfg.dataset.name),
                     "overrides": " ".join(extra)}}


def slurm_tags() -> dict[str, str]:
    env = os.environ
    tags = {"slurm.job_id": env.get("SLURM_JOB_ID"), "slurm.array_job_id": env.get("SLURM_ARRAY_JOB_ID"),
            "slurm.array_task_id": env.get("SLURM_ARRAY_TASK_ID")}
    return {k: v for k, v in tags.items() if v}


def stage_pointer(cfg: Any, name: str, art: Any, inputs: dict[str, Any], target: Any) -> dict[str, Any]:
    """The pointer a stage writes before it trains: where its run goes and what the run is tagged with.

    A pointer left by an unfinished attempt of the same stage for the same store keeps its run ids, so
    the run continues; resources, host and job ids are this attempt's (tags may change, params may not)."""
    from kdgat.artifacts import code_version

    overrides, folders = _hydra_job()
    code = code_version()
    node = cfg.pipeline.stages[name]
    resources = node.get("effective_resources") or {}
    tags = {"pipeline": str(cfg.pipeline.name), "dataset": str(cfg.dataset.name), "stage": name,
            "preset": str(node.preset), "fingerprint": art.fingerprint, "git.commit": code["commit"] or "",
            "git.dirty": _text(code["dirty"]), "mlflow.source.git.commit": code["commit"] or "",
            "host": socket.gethostname(), "command": shlex.join([sys.executable, *sys.argv]),
            "artifacts_dir": str(art.dir), "model_path": str(art.model), **folders, **slurm_tags(),
            **{f"input.{kind}": a.fingerprint for kind, a in sorted(inputs.items())},
            **{f"resources.{k}": _text(v) for k, v in _plain(resources).items() if v is not None}}
    pointer = {"uri": target.uri, "experiment": target.experiment, "artifact_location": target.artifact_location,
               "lock": target.lock, "log_models": target.log_models, "chain": chain(cfg, target.experiment, overrides),
               "name": name, "tags": {k: v for k, v in tags.items() if v != ""}, "params": params(cfg, name, inputs),
               "experiment_id": None, "parent_run_id": None, "run_id": None, "state": PENDING, "error": None}
    before = read_pointer(art.dir)
    if before and before.get("uri") == target.uri and before.get("experiment") == target.experiment \
            and before.get("state") != COMPLETE:
        for key in ("experiment_id", "parent_run_id", "run_id"):
            pointer[key] = before.get(key)
    return pointer


def _plain(node: Any) -> dict[str, Any]:
    from omegaconf import OmegaConf

    if OmegaConf.is_config(node):
        try:
            return OmegaConf.to_container(node, resolve=True)
        except Exception:  # a resolver the plain config lacks: resources are tags, never worth failing for
            return {}
    return dict(node)


# ---------------------------------------------------------------- metrics from a stage's files

def epoch_metrics(metrics: dict[str, Any]) -> dict[str, list[float]]:
    """Each per-epoch (or per-step) series of metrics.json, by its MLflow metric name."""
    history = (metrics.get("training") or {}).get("history") or {}
    return {EPOCH_NAMES.get(k, k): [float(v) for v in values] for k, values in history.items()}


def epoch_row(row: dict[str, float]) -> dict[str, float]:
    """One epoch's values (a row of the history) under their MLflow names."""
    return {EPOCH_NAMES.get(k, k): float(v) for k, v in row.items()}


def final_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The numbers of metrics.json: per split (`val.f1`, `test_dos.f1`, ...), the models inside a fusion
    (`components.gat.test_dos.f1`), parameters, training seconds and peak memory; not the history."""
    doc = {k: v for k, v in metrics.items() if k not in ("splits", "training")}
    doc.update(metrics.get("splits") or {})
    training = {k: v for k, v in (metrics.get("training") or {}).items() if k != "history"}
    doc["training"] = training
    out = {}
    for key, value in flatten(doc).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and "confusion_matrix" not in key:
            out[key] = float(value)
    return out


def logged_files(stage_dir: Path, log_models: bool) -> list[Path]:
    """The files a stage's run holds as artifacts: its figures, metrics.json, config.yaml (and its model)."""
    stage_dir = Path(stage_dir)
    files = sorted(stage_dir.glob(FIGURES)) + [stage_dir / n for n in LOGGED_FILES]
    if log_models:
        files.append(stage_dir / "model.pt")
    return [f for f in files if f.is_file()]
