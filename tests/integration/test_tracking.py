"""MLflow tracking end to end: the embedded store, a real server that dies, twenty writers at once."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import PARENT, assert_run_holds_its_stage, client_of, embedded, kdgat, run_train, runs_of

TINY = ("dataset.synthetic.frames=20000", "train.max_epochs=2", "progress=false")


@pytest.mark.slow
def test_an_in_process_teacher_pipeline_is_a_parent_run_with_its_three_stages_and_a_rerun_adds_none(tmp_path):
    out = run_train("pipeline=teacher", *TINY, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "WARNING" not in out.stdout, out.stdout
    client = client_of(embedded(tmp_path))
    runs = runs_of(client, "teacher")
    (parent,) = [r for r in runs if PARENT not in r.data.tags]
    children = {r.data.tags["stage"]: r for r in runs if PARENT in r.data.tags}
    assert set(children) == {"autoencoder", "curriculum", "fusion"}
    assert parent.data.tags["pipeline"] == "teacher" and parent.info.status == "FINISHED"
    for stage, run in children.items():
        assert run.data.tags[PARENT] == parent.info.run_id and run.info.run_name == stage
        assert_run_holds_its_stage(client, run)
        assert run.data.params["seed"] == "0" and run.data.params["train.max_epochs"] == "2"
        assert run.data.params["stage.preset"] == stage and run.data.params["dataset"] == "synthetic"
        assert run.data.tags["git.commit"] and run.data.tags["host"] and "pipeline=teacher" in run.data.tags["command"]
        assert "resources.mem" in run.data.tags and "resources.mem" not in run.data.params
    assert children["curriculum"].data.tags["input.vgae"] == children["autoencoder"].data.tags["fingerprint"]
    assert len(client.get_metric_history(children["curriculum"].info.run_id, "lr")) == 2

    again = run_train("pipeline=teacher", *TINY, cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.count("already trained") == 3
    assert sorted(r.info.run_id for r in runs_of(client, "teacher")) == sorted(r.info.run_id for r in runs)


@pytest.mark.slow
def test_a_server_killed_before_the_stage_ends_costs_nothing_and_sync_completes_the_run(tmp_path, mlflow_server):
    stage = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve().parents[2] / "train.py"), "pipeline=custom",
         "pipeline.presets=[autoencoder]", "dataset.synthetic.frames=20000", "train.max_epochs=3",
         "train.slow_epoch_s=6", "progress=false", f"tracking.uri={mlflow_server.uri}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    client = client_of(mlflow_server.uri)
    deadline = time.monotonic() + 240
    run = None
    while time.monotonic() < deadline and stage.poll() is None:  # until the run has its first epoch
        runs = [r for r in runs_of(client, "custom") if PARENT in r.data.tags]
        if runs and client.get_metric_history(runs[0].info.run_id, "train_loss"):
            run = runs[0]
            break
        time.sleep(1)
    assert run is not None, "the stage's run never got its first epoch"
    mlflow_server.stop()
    out, _ = stage.communicate(timeout=300)
    assert stage.returncode == 0, out[-3000:]
    assert "stage autoencoder trained" in out
    warnings = [line for line in out.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and f"MLflow tracking to {mlflow_server.uri} failed" in warnings[0], warnings
    assert "kdgat track sync" in warnings[0]
    (done,) = [p for p in (tmp_path / "experimentruns" / "synthetic" / "autoencoder").glob("*/done.json")
               if p.parent.name != "latest"]
    assert json.loads((done.parent / "mlflow_run.json").read_text())["state"] != "complete"

    mlflow_server.start()
    synced = kdgat("track", "sync", str(tmp_path / "experimentruns"), cwd=tmp_path)
    assert synced.returncode == 0, synced.stderr
    assert f"sent (run {run.info.run_id})" in synced.stdout
    (after,) = [r for r in runs_of(client, "custom") if PARENT in r.data.tags]
    assert after.info.run_id == run.info.run_id
    metrics = assert_run_holds_its_stage(client, after)
    assert metrics["training"]["epochs_run"] == 3
    again = kdgat("track", "sync", str(tmp_path / "experimentruns"), cwd=tmp_path)
    assert again.returncode == 0 and "already complete" in again.stdout


def _writer_files(art: Path, num: int, stage: str, uri: str) -> Path:
    """A finished stage's folder as a stage job leaves it, with the pointer its tracking writes."""
    folder = art / "synthetic" / stage / f"{stage[:4]}{num:012d}"
    folder.mkdir(parents=True)
    history = {"train_loss": [1.0 / (e + num + 1) for e in range(3)], "seconds": [1.0, 1.0, 1.0]}
    metrics = {"seconds": 3.0 + num, "peak_rss_mib": 100.0, "parameters": 10,
               "splits": {"val": {"f1": num / 20}}, "training": {"epochs_run": 3, "history": history}}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "config.yaml").write_text(f"seed: {num}\n")
    (folder / "training_curves.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    store = art / "mlflow"
    chain = {"key": f"chain{num // 2}", "name": f"chain {num // 2}", "tags": {"kdgat.chain": f"chain{num // 2}"}}
    pointer = {"uri": uri, "experiment": "many", "artifact_location": (store / "artifacts").as_uri(),
               "lock": str(store / "setup"), "log_models": False, "chain": chain, "name": stage,
               "tags": {"stage": stage, "artifacts_dir": str(folder)}, "params": {"seed": str(num)},
               "experiment_id": None, "parent_run_id": None, "run_id": None, "state": "pending", "error": None}
    (folder / "mlflow_run.json").write_text(json.dumps(pointer))
    return folder


@pytest.mark.slow
def test_twenty_stage_jobs_finishing_together_on_a_fresh_default_store_lose_and_corrupt_nothing(tmp_path):
    """Twenty tracking processes, as twenty stage jobs start them (two stages of each of ten chains), all at
    once against a store nobody has set up yet: every run is there, whole, under its chain's one parent."""
    art = tmp_path / "experimentruns"
    uri = f"sqlite:///{art / 'mlflow' / 'mlflow.db'}"
    folders = [_writer_files(art, n, ("autoencoder", "curriculum")[n % 2], uri) for n in range(20)]
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    writers = [subprocess.Popen([sys.executable, "-m", "kdgat.tracking.worker"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, env=env) for _ in folders]
    for proc, folder in zip(writers, folders):
        lines = [{"op": "start", "key": str(folder)}]
        lines += [{"op": "epoch", "key": str(folder), "step": e, "values": {"train_loss": 1.0 / (e + int(folder.name[-2:]))},
                   "ts": 1} for e in (1, 2)]
        lines.append({"op": "finish", "key": str(folder), "ok": True, "chain_done": False})
        proc.stdin.write("".join(json.dumps(line) + "\n" for line in lines))
        proc.stdin.close()
    replies = [json.loads(proc.stdout.read()) for proc in writers]
    for proc in writers:
        proc.wait(timeout=300)
    assert [r["ok"] for r in replies] == [True] * 20, [r["error"] for r in replies if not r["ok"]]

    with sqlite3.connect(art / "mlflow" / "mlflow.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    client = client_of(uri)
    runs = runs_of(client, "many")
    parents = {r.data.tags["kdgat.chain"]: r.info.run_id for r in runs if PARENT not in r.data.tags}
    assert sorted(parents) == [f"chain{c}" for c in range(10)]
    children = [r for r in runs if PARENT in r.data.tags]
    assert len(children) == 20
    for run in children:
        folder = Path(run.data.tags["artifacts_dir"])
        num = int(folder.name[-12:])
        assert run.data.tags[PARENT] == parents[f"chain{num // 2}"] and run.data.params["seed"] == str(num)
        points = {p.step: p.value for p in client.get_metric_history(run.info.run_id, "train_loss")}
        assert points == {e + 1: 1.0 / (e + num + 1) for e in range(3)}
        assert run.data.metrics["val.f1"] == num / 20 and run.info.status == "FINISHED"
        assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"metrics.json", "config.yaml",
                                                                           "training_curves.png"}
        assert json.loads((folder / "mlflow_run.json").read_text())["state"] == "complete"


def test_the_launcher_cfg_job_and_a_dry_run_never_import_mlflow(tmp_path):
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "sitecustomize.py").write_text(
        "import atexit, sys\n"
        "atexit.register(lambda: sys.stderr.write('MLFLOW_IMPORTED=%s\\n' % ('mlflow' in sys.modules)))\n")
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(probe), os.environ.get("PYTHONPATH", "")) if p)}
    for args in (["--cfg", "job", "--resolve"],
                 ["hydra/launcher=kdgat_chain", "hydra.launcher.dry_run=true", f"hydra.sweep.dir={tmp_path}/s"]):
        out = run_train("pipeline=teacher", *args, cwd=tmp_path, env=env, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        assert "MLFLOW_IMPORTED=False" in out.stderr
