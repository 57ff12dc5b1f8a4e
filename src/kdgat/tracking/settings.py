"""Where a stage's MLflow runs go: the `tracking` settings made into a target, and whether its store is safe there.

The embedded default is a SQLite database and an artifact folder under
`paths.artifacts/mlflow/`. SQLite's locking is unreliable on network
filesystems (NFS, Lustre, GPFS, ...), where many stage jobs of a cluster write at
once: there the store is refused, and a server (`tracking.uri`) is the answer.
Nothing here imports MLflow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

STORE_DIR = "mlflow"
DATABASE = "mlflow.db"
# Filesystem types (as /proc/mounts names them) whose file locks SQLite cannot trust.
NETWORK_FILESYSTEMS = {"nfs", "nfs4", "lustre", "gpfs", "cifs", "smb3", "smbfs", "beegfs", "ceph", "glusterfs",
                       "fuse.glusterfs", "fuse.sshfs", "9p", "afs", "panfs", "wekafs", "pvfs2", "orangefs"}
UI_PORT = 5000


@dataclass(frozen=True)
class Target:
    """Where one stage's run goes, and how patiently it is sent."""

    uri: str
    experiment: str
    artifact_location: str | None  # for an experiment created in the embedded store: its folder
    lock: str  # guarded by `<lock>.lock` (kdgat.atomic.locked): setting up the embedded store, finding a chain's run
    log_models: bool
    timeout_s: int
    retries: int
    wait_s: float

    @property
    def embedded(self) -> bool:
        return self.artifact_location is not None


def target(cfg: Any) -> Target | None:
    """The target of the composed config, or None when tracking is off."""
    from kdgat.artifacts import artifacts_root

    node = cfg.get("tracking")
    if node is None or not node.get("enabled", False):
        return None
    root = artifacts_root(cfg)
    uri = node.get("uri") or os.environ.get("MLFLOW_TRACKING_URI")
    store = root / STORE_DIR
    embedded = not uri
    if embedded:
        uri = f"sqlite:///{store / DATABASE}"
    return Target(uri=str(uri), experiment=str(node.get("experiment") or cfg.pipeline.name),
                  artifact_location=(store / "artifacts").as_uri() if embedded else None,
                  lock=str(store / "setup" if embedded else root / ".mlflow-chains"),
                  log_models=bool(node.get("log_models", False)), timeout_s=int(node.get("timeout_s", 10)),
                  retries=int(node.get("retries", 2)), wait_s=float(node.get("wait_s", 60)))


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI (absolute with four slashes), else None."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(unquote(uri[len("sqlite:///"):])).absolute()


def filesystem_type(path: Path, mounts: str | None = None) -> str:
    """The type of the filesystem that holds (or will hold) `path`, from /proc/mounts: that of the longest
    mount point above it, links resolved. '' where that cannot be told (not Linux)."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return ""
    path = os.path.realpath(path)
    best, kind = "", ""
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def unsafe_store(uri: str, mounts: str | None = None) -> str | None:
    """Why a SQLite store at `uri` must not be written (it is on a network filesystem), or None."""
    path = sqlite_path(uri)
    if path is None:
        return None
    kind = filesystem_type(path.parent, mounts)
    if kind.lower() not in NETWORK_FILESYSTEMS:
        return None
    return (f"the MLflow store {path} is on a network filesystem ({kind}), where SQLite can lose or corrupt runs "
            f"that many jobs write at once: start an MLflow server and set tracking.uri=http://HOST:{UI_PORT} "
            "(or MLFLOW_TRACKING_URI); tracking=none turns tracking off")


def ui_command(uri: str) -> str:
    """The command that shows the runs of `uri` in MLflow's UI."""
    if uri.startswith(("http://", "https://")):
        return f"open {uri}"
    return f"mlflow ui --backend-store-uri {uri}"


def run_link(uri: str, experiment_id: str | None, run_id: str | None) -> str | None:
    """The UI address of a run: on the server itself, or on `mlflow ui` (port 5000) for a local store."""
    if not experiment_id or not run_id:
        return None
    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else f"http://127.0.0.1:{UI_PORT}"
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


def client_environment(target: Target) -> dict[str, str]:
    """MLflow's HTTP settings for a stage's tracking process: its defaults (7 retries, 120 s per request)
    would hold a stage for minutes when a server is down."""
    return {"MLFLOW_HTTP_REQUEST_TIMEOUT": str(target.timeout_s),
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(target.retries),
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
