"""Everything kdgat does through MLflow's client: the store, a chain's parent run, a stage's run, and completing it.

Imported only where runs are written (a stage's tracking process, `kdgat track
sync`), never by the launcher, `--cfg job` or a dry run. Every step can be done
again without harm, so a run interrupted anywhere (a dead server, a requeued
job) is completed later from the stage's own files:

- the embedded SQLite store is set up once, under a file lock (several jobs
  creating its tables at once leave it unusable);
- a chain's parent run is found by its `kdgat.chain` tag, made under a lock,
  and where two jobs on different hosts made one each, both keep the oldest;
- a stage's run is continued when its pointer names one (params are the
  fingerprinted settings, equal in every attempt, so logging them again is
  allowed), and per-epoch points and final metrics already there are not sent
  twice.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from kdgat.atomic import locked
from kdgat.tracking.record import COMPLETE, FAILED, RUNNING, epoch_metrics, final_metrics, logged_files
from kdgat.tracking.settings import sqlite_path

READY = ".ready"  # beside an embedded store's database, once its tables exist
BATCH = 100  # of each kind per log_batch call (MLflow takes at most 100 params and 1000 entities in all)
LOCK_TIMEOUT_S = 300.0


def client_for(pointer: dict[str, Any]) -> MlflowClient:
    """A client of the pointer's store; an embedded store is set up first, once, under its lock."""
    uri = pointer["uri"]
    db = sqlite_path(uri)
    if db is not None and not (db.parent / READY).is_file():
        db.parent.mkdir(parents=True, exist_ok=True)
        with locked(pointer["lock"], timeout=LOCK_TIMEOUT_S):
            if not (db.parent / READY).is_file():
                MlflowClient(tracking_uri=uri).search_experiments(max_results=1)  # creates the tables
                (db.parent / READY).write_text("")
    return MlflowClient(tracking_uri=uri)


def experiment_id(client: MlflowClient, pointer: dict[str, Any]) -> str:
    name = pointer["experiment"]
    exp = client.get_experiment_by_name(name)
    if exp is None:
        try:
            return client.create_experiment(name, artifact_location=pointer.get("artifact_location"))
        except MlflowException:  # another job made it meanwhile
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
    if exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    return exp.experiment_id


def _chain_runs(client: MlflowClient, exp_id: str, key: str) -> list[Any]:
    runs = client.search_runs([exp_id], filter_string=f"tags.`kdgat.chain` = '{key}'", max_results=50)
    return sorted(runs, key=lambda r: (r.info.start_time, r.info.run_id))


def parent_run(client: MlflowClient, exp_id: str, pointer: dict[str, Any]) -> str:
    """The chain's parent run: the one the pointer names, else the oldest with the chain's tag, else a new one."""
    chain = pointer["chain"]
    if pointer.get("parent_run_id"):
        try:
            run = client.get_run(pointer["parent_run_id"])
            if run.info.lifecycle_stage == "active":
                return _running(client, run)
        except MlflowException:
            pass
    found = _chain_runs(client, exp_id, chain["key"])
    if not found:
        with locked(pointer["lock"], timeout=LOCK_TIMEOUT_S):
            found = _chain_runs(client, exp_id, chain["key"])
            if not found:
                mine = client.create_run(exp_id, tags={**chain["tags"], MLFLOW_RUN_NAME: chain["name"]},
                                         run_name=chain["name"]).info.run_id
                found = _chain_runs(client, exp_id, chain["key"])
                if found and found[0].info.run_id != mine:  # a job on another host was first
                    client.delete_run(mine)
                found = found or [client.get_run(mine)]
    return _running(client, found[0])


def _running(client: MlflowClient, run: Any) -> str:
    if run.info.status != "RUNNING":  # a chain finished before, now training a stage again
        client.update_run(run.info.run_id, status="RUNNING")
    return run.info.run_id


def open_run(client: MlflowClient, pointer: dict[str, Any]) -> dict[str, Any]:
    """Start the stage's run, or continue the one its pointer names; returns the pointer with the run ids."""
    exp_id = experiment_id(client, pointer)
    parent = parent_run(client, exp_id, pointer)
    run_id = pointer.get("run_id")
    if run_id:
        try:
            if client.get_run(run_id).info.lifecycle_stage != "active":
                run_id = None
        except MlflowException:  # not in this store (it was reset, or the pointer came from elsewhere)
            run_id = None
    tags = {**pointer["tags"], MLFLOW_PARENT_RUN_ID: parent, MLFLOW_RUN_NAME: pointer["name"]}
    if run_id is None:
        run_id = client.create_run(exp_id, tags=tags, run_name=pointer["name"]).info.run_id
    else:
        client.update_run(run_id, status="RUNNING")
    log_batch(client, run_id, params=[Param(k, v) for k, v in pointer["params"].items()],
              tags=[RunTag(k, v) for k, v in tags.items()])
    return {**pointer, "experiment_id": exp_id, "parent_run_id": parent, "run_id": run_id, "state": RUNNING,
            "error": None}


def log_batch(client: MlflowClient, run_id: str, metrics: list[Metric] = (), params: list[Param] = (),
              tags: list[RunTag] = ()) -> None:
    metrics, params, tags = list(metrics), list(params), list(tags)
    for i in range(0, max(len(metrics), len(params), len(tags)), BATCH):
        client.log_batch(run_id, metrics=metrics[i:i + BATCH], params=params[i:i + BATCH], tags=tags[i:i + BATCH])


def log_epoch(client: MlflowClient, run_id: str, step: int, values: dict[str, float], timestamp_ms: int) -> None:
    log_batch(client, run_id, metrics=[Metric(k, v, timestamp_ms, step) for k, v in values.items()])


def complete(client: MlflowClient, pointer: dict[str, Any], stage_dir: Path, ok: bool,
             chain_done: bool = False) -> dict[str, Any]:
    """Make the run hold everything the stage's folder holds, and end it; returns the updated pointer.

    Per-epoch points (step = epoch, from 1) are sent where the run lacks that step, final metrics where it
    lacks that value, and the files are uploaded again (same names: nothing doubles)."""
    run_id = pointer["run_id"]
    metrics_file = Path(stage_dir) / "metrics.json"
    if ok and metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text())
        now = int(time.time() * 1000)
        batch = []
        for key, values in epoch_metrics(metrics).items():
            have = {m.step for m in client.get_metric_history(run_id, key)}
            batch += [Metric(key, v, now, step) for step, v in enumerate(values, start=1) if step not in have]
        latest = client.get_run(run_id).data.metrics
        batch += [Metric(k, v, now, 0) for k, v in final_metrics(metrics).items() if latest.get(k) != v]
        log_batch(client, run_id, metrics=batch)
        for path in logged_files(stage_dir, pointer.get("log_models", False)):
            client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, "FINISHED" if ok else "FAILED")
    if ok and chain_done and pointer.get("parent_run_id"):
        client.set_terminated(pointer["parent_run_id"], "FINISHED")
    return {**pointer, "state": COMPLETE if ok else FAILED, "error": None}


def describe(err: BaseException) -> str:
    """An exception as one short line for a warning (MLflow's can hold a whole HTTP trace)."""
    text = str(err).strip().splitlines()
    line = text[0] if text else type(err).__name__
    return (line[:300] + "...") if len(line) > 300 else line
