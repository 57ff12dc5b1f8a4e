"""kdgat.tracking's pure parts: where runs go, which store is refused, what a run holds (no MLflow, no training)."""

from __future__ import annotations

import pytest

from kdgat.tracking import record, settings

MOUNTS = """\
/dev/sda1 / ext4 rw,relatime 0 0
server:/export /shared nfs4 rw,relatime 0 0
/dev/sdb1 /shared/local xfs rw 0 0
fs@o2ib:/lustre /lus lustre rw 0 0
"""


@pytest.mark.parametrize("path, kind", [("/home/u/x", "ext4"), ("/shared/exp/runs", "nfs4"),
                                        ("/shared/local/runs", "xfs"), ("/sharedfoo", "ext4"), ("/lus/a", "lustre")])
def test_the_filesystem_of_a_path_is_its_longest_mount_point(path, kind):
    assert settings.filesystem_type(path, MOUNTS) == kind


def test_a_sqlite_store_on_a_network_filesystem_is_refused_with_what_to_do():
    why = settings.unsafe_store("sqlite:////shared/exp/mlflow/mlflow.db", MOUNTS)
    assert "network filesystem (nfs4)" in why and "tracking.uri=http://HOST:5000" in why
    assert settings.unsafe_store("sqlite:////lus/mlflow.db", MOUNTS) is not None
    assert settings.unsafe_store("sqlite:////shared/local/mlflow.db", MOUNTS) is None
    assert settings.unsafe_store("http://server:5000", MOUNTS) is None  # a server keeps its own store


def test_the_default_target_is_the_embedded_store_under_paths_artifacts(compose_cfg, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = compose_cfg("pipeline=student", f"paths.artifacts={tmp_path}")
    where = settings.target(cfg)
    assert where.uri == f"sqlite:///{tmp_path}/mlflow/mlflow.db" and where.experiment == "student"
    assert where.artifact_location == (tmp_path / "mlflow" / "artifacts").as_uri() and where.embedded
    assert settings.sqlite_path(where.uri) == tmp_path / "mlflow" / "mlflow.db"
    assert settings.target(compose_cfg("tracking=none")) is None


def test_a_server_comes_from_the_setting_or_the_environment(compose_cfg, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:5000")
    assert settings.target(compose_cfg()).uri == "http://env:5000"
    where = settings.target(compose_cfg("tracking.uri=http://team:5000", "tracking.experiment=mine"))
    assert (where.uri, where.experiment, where.embedded) == ("http://team:5000", "mine", False)
    assert settings.client_environment(where) == {"MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
                                                  "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
                                                  "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}


def test_links_and_the_ui_command():
    assert settings.run_link("http://h:5000/", "3", "abc") == "http://h:5000/#/experiments/3/runs/abc"
    assert settings.run_link("sqlite:////x/db", "3", "abc") == "http://127.0.0.1:5000/#/experiments/3/runs/abc"
    assert settings.run_link("http://h:5000", None, "abc") is None
    assert settings.ui_command("sqlite:////x/db") == "mlflow ui --backend-store-uri sqlite:////x/db"


def test_a_chain_is_named_by_its_pipeline_dataset_and_other_overrides_in_any_order(compose_cfg):
    cfg = compose_cfg("pipeline=teacher", "dataset=hcrl_sa")
    a = record.chain(cfg, "teacher", ["pipeline=teacher", "dataset=hcrl_sa", "seed=1", "train.batch_size=32"])
    b = record.chain(cfg, "teacher", ["train.batch_size=32", "seed=1", "resources.mem=96G", "tracking.uri=x",
                                      "pipeline.stages.fusion.resources.mem=8G", "progress=false"])
    assert a == b and a["name"] == "teacher hcrl_sa seed=1 train.batch_size=32"
    assert a["tags"] == {"kdgat.chain": a["key"], "pipeline": "teacher", "dataset": "hcrl_sa",
                         "overrides": "seed=1 train.batch_size=32"}
    assert record.chain(cfg, "teacher", ["seed=2", "train.batch_size=32"])["key"] != a["key"]
    assert record.chain(cfg, "other", ["seed=1", "train.batch_size=32"])["key"] != a["key"]


METRICS = {
    "stage": "curriculum", "fingerprint": "f" * 16, "seconds": 12.5, "peak_rss_mib": 800.0, "parameters": 1000,
    "splits": {"val": {"f1": 0.5, "roc_auc": None, "confusion_matrix": [[1, 2], [3, 4]]},
               "test_dos": {"f1": 0.75, "accuracy": 0.8}},
    "components": {"gat": {"val": {"f1": 0.25}}},
    "training": {"epochs_run": 2, "best_epoch": 2, "history": {"train_loss": [1.0, 0.5], "seconds": [3, 4],
                                                                "lr": [0.001, 0.0005]}},
}


def test_final_metrics_are_every_number_of_metrics_json_but_the_history():
    assert record.final_metrics(METRICS) == {
        "seconds": 12.5, "peak_rss_mib": 800.0, "parameters": 1000.0, "val.f1": 0.5, "test_dos.f1": 0.75,
        "test_dos.accuracy": 0.8, "components.gat.val.f1": 0.25, "training.epochs_run": 2.0,
        "training.best_epoch": 2.0}


def test_epoch_metrics_are_the_history_with_the_epoch_seconds_named_so():
    assert record.epoch_metrics(METRICS) == {"train_loss": [1.0, 0.5], "epoch_seconds": [3.0, 4.0],
                                             "lr": [0.001, 0.0005]}
    assert record.epoch_row({"val_f1": 0.5, "seconds": 2}) == {"val_f1": 0.5, "epoch_seconds": 2.0}
    assert record.epoch_metrics({"training": {}}) == {}


def test_params_are_the_fingerprinted_settings_flattened(compose_cfg, tmp_path, monkeypatch):
    import kdgat.artifacts as artifacts

    monkeypatch.setattr(artifacts, "data_key", lambda cfg: "d" * 16)  # the raw files' identity, not made here
    cfg = compose_cfg("pipeline=teacher", "seed=3", "resources.mem=8G")
    params = record.params(cfg, "curriculum", {})
    assert params["seed"] == "3" and params["data_key"] == "d" * 16 and params["stage.lr"] == "0.001"
    assert params["model.heads"] == "8" and params["preprocess.window"] == "100"
    assert params["train.max_epochs"] == "null" and params["train.batch_size"] == "64"
    assert not [k for k in params if "resources" in k or k.startswith(("inputs", "train.device", "train.slow"))]


def test_a_stage_continues_the_run_of_its_unfinished_attempt_and_only_for_the_same_store(compose_cfg, tmp_path,
                                                                                         monkeypatch):
    import kdgat.artifacts as artifacts

    monkeypatch.setattr(artifacts, "data_key", lambda cfg: "d" * 16)
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    cfg = compose_cfg("pipeline=teacher", f"paths.artifacts={tmp_path}", "resources.mem=8G")
    art = artifacts.stage_artifacts(cfg, "autoencoder")
    art.dir.mkdir(parents=True)
    where = settings.target(cfg)
    first = record.stage_pointer(cfg, "autoencoder", art, {}, where)
    assert first["run_id"] is None and first["state"] == record.PENDING
    assert first["tags"]["slurm.job_id"] == "4242" and first["tags"]["resources.mem"] == "8G"
    assert first["tags"]["fingerprint"] == art.fingerprint and first["tags"]["stage"] == "autoencoder"
    record.write_pointer(art.dir, {**first, "run_id": "r1", "parent_run_id": "p1", "state": record.RUNNING})
    again = record.stage_pointer(cfg, "autoencoder", art, {}, where)
    assert (again["run_id"], again["parent_run_id"]) == ("r1", "p1")
    elsewhere = settings.target(compose_cfg("pipeline=teacher", f"paths.artifacts={tmp_path}",
                                            "tracking.uri=http://other:5000"))
    assert record.stage_pointer(cfg, "autoencoder", art, {}, elsewhere)["run_id"] is None
    record.write_pointer(art.dir, {**first, "run_id": "r1", "state": record.COMPLETE})  # trained, then damaged
    assert record.stage_pointer(cfg, "autoencoder", art, {}, where)["run_id"] is None


def test_sync_finds_finished_stages_under_a_folder_and_refuses_an_unsafe_store(tmp_path, monkeypatch):
    from kdgat.tracking import sync

    finished, unfinished = tmp_path / "synthetic" / "autoencoder" / "a", tmp_path / "synthetic" / "curriculum" / "b"
    for folder in (finished, unfinished):
        folder.mkdir(parents=True)
        record.write_pointer(folder, {"uri": "sqlite:////nfs/mlflow.db", "state": record.PENDING, "run_id": None})
    (finished / "done.json").write_text('{"files": {}}')
    assert sync.finished_stages(tmp_path) == [(None, finished, False)]
    monkeypatch.setattr(sync, "unsafe_store", lambda uri: f"{uri} is on nfs")
    (result,) = sync.sync(tmp_path)
    assert (result.stage_dir, result.ok) == (finished, False)
    assert result.outcome == "failed: sqlite:////nfs/mlflow.db is on nfs; or send it elsewhere with --uri"
    assert record.read_pointer(finished)["state"] == record.PENDING
