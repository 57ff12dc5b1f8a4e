"""What the tests share: kdgat's config composed as train.py composes it, and kdgat run as a user runs it.

The tests are grouped by what they need: `unit/` (pure and fast), `integration/` (processes, training on
tiny data, the local backend) and `cluster/` (real jobs on a SLURM cluster: CI starts
scripts/local-slurm.sh). Running commands and asking SLURM is bench/cluster.py's, which the reliability
benchmark uses too.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from cluster import (  # noqa: E402,F401  (re-exported for the tests)
    APP,
    FINAL,
    HAS_SLURM,
    ROOT,
    attempt_states,
    cancel,
    guards,
    job_ids,
    kdgat,
    queued_ids,
    run_app,
    run_train,
    scontrol,
    squeue,
    states,
    statuses,
    synth,
)


def compose(*overrides: str, resolve: bool = True):
    """The job config train.py would run for these command-line overrides."""
    from kdgat.config import compose as kdgat_compose

    return kdgat_compose(list(overrides), resolve=resolve)


def on_slurm(test):
    """Marks a test that submits real jobs: slow, and run where a cluster answers (CI starts one)."""
    for mark in (pytest.mark.slurm, pytest.mark.slow,
                 pytest.mark.skipif(not HAS_SLURM, reason="sbatch is not on PATH: start scripts/local-slurm.sh")):
        test = mark(test)
    return test


@pytest.fixture
def compose_cfg():
    return compose


@pytest.fixture
def torch_probe(tmp_path_factory):
    """Environment for a child process that prints TORCH_IMPORTED=<bool> to stderr when it exits."""
    probe = tmp_path_factory.mktemp("probe")
    (probe / "sitecustomize.py").write_text(
        "import atexit, sys\n"
        "atexit.register(lambda: sys.stderr.write('TORCH_IMPORTED=%s\\n' % ('torch' in sys.modules)))\n")
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(probe), os.environ.get("PYTHONPATH", "")) if p)}


@pytest.fixture(autouse=True)
def no_guard_left_behind(request):
    """A cluster test that cancels its stage jobs by hand would leave their retry guard to run for nothing on
    the shared cluster: it is cancelled when the test ends."""
    watched = HAS_SLURM and request.node.get_closest_marker("slurm") and "tmp_path" in request.fixturenames
    folder = str(request.getfixturevalue("tmp_path")) if watched else None
    yield
    if folder is None:
        return
    rows = (line.split("|", 2) for line in squeue("-o", "%i|%j|%Z").splitlines() if line.count("|") >= 2)
    cancel([job for job, name, workdir in rows if name.startswith("guard_") and folder in workdir])


class MlflowServer:
    """A real `mlflow server` on a free local port, with its own SQLite database and artifact folder, started
    in its own process group so that stopping it stops its workers too. Killed and started again on the same
    port and database, it is the same server to a client that knew it."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait_s: float = 90) -> "MlflowServer":
        """Start it and wait for /health: on a busy 2-core machine that can take 20 s or more."""
        self.folder.mkdir(parents=True, exist_ok=True)
        log = open(self.folder / "server.log", "ab")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", "1", "--backend-store-uri", f"sqlite:///{self.folder / 'server.db'}",
             "--artifacts-destination", str(self.folder / "artifacts")],
            stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(self.folder / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=5) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"mlflow server did not answer /health in {wait_s} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


@pytest.fixture
def mlflow_server(tmp_path):
    server = MlflowServer(tmp_path / "mlflow-server").start()
    yield server
    server.stop()


# ---------------------------------------------------------------- MLflow runs, as a user's client sees them

PARENT = "mlflow.parentRunId"


def client_of(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def embedded(workdir: Path) -> str:
    return f"sqlite:///{workdir / 'experimentruns' / 'mlflow' / 'mlflow.db'}"


def runs_of(client, experiment: str) -> list:
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id]) if exp else []


def assert_run_holds_its_stage(client, run) -> dict:
    """The run has every epoch of the stage's history (step = epoch, from 1), every final metric of its
    metrics.json, its figures, metrics.json and config.yaml; returns the metrics."""
    folder = Path(run.data.tags["artifacts_dir"])
    metrics = json.loads((folder / "metrics.json").read_text())
    history = metrics["training"]["history"]
    if "epochs_run" in metrics["training"]:
        assert len(history["train_loss"]) == metrics["training"]["epochs_run"]
    for key, values in history.items():
        points = client.get_metric_history(run.info.run_id, "epoch_seconds" if key == "seconds" else key)
        last = {p.step: p.value for p in sorted(points, key=lambda p: p.timestamp)}  # a resumed epoch: the last
        assert last == {step: v for step, v in enumerate(values, start=1)}, key
    for split, m in metrics["splits"].items():
        for name in ("f1", "accuracy", "roc_auc"):
            assert run.data.metrics[f"{split}.{name}"] == m[name]
    assert run.data.metrics["seconds"] == metrics["seconds"]
    assert run.data.metrics["peak_rss_mib"] == metrics["peak_rss_mib"]
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert files == {p.name for p in folder.glob("*.png")} | {"metrics.json", "config.yaml"}
    assert any(name.startswith("confusion_") for name in files)
    assert run.data.tags["model_path"] == str(folder / "model.pt") and run.data.tags["fingerprint"] == folder.name
    assert run.info.status == "FINISHED"
    return metrics
