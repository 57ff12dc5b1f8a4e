"""`kdgat report`: rows, CSV, Markdown and figures from made-up sweeps, and once from a real tiny sweep."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path

import pytest
import yaml

from conftest import run_train
from kdgat import report, sweeps
from kdgat.cli import main
from hydra_plugins.kdgat_chain_launcher import (
    MANIFEST,
    ChainRecord,
    JobInfo,
    Manifest,
    StageRecord,
    read_manifest,
    write_manifest,
)

RESOURCES = {"walltime": "01:00:00", "mem": "1G", "cpus": 1, "gpus": 0}
TEACHER = {"autoencoder": ("autoencoder", []), "curriculum": ("curriculum", ["autoencoder"]),
           "fusion": ("fusion", ["autoencoder", "curriculum"])}
PNG = b"\x89PNG\r\n\x1a\n"


def scores(f1: float, splits=("val", "test_dos", "test_fuzzing"), auc: float | None = 0.99) -> dict:
    return {s: {"accuracy": round(f1 + 0.01, 6), "f1": f1, "roc_auc": auc, "precision": 1.0, "recall": f1,
                "confusion_matrix": [[9, 0], [1, 9]], "n": 19, "positives": 10, "threshold": 0.5} for s in splits}


def trained(art: Path, dataset: str, stage: str, seed: int, f1: float, *, splits=None, parameters=1000,
            peak: float | None = 512.0, teacher: Path | None = None) -> Path:
    """A finished stage's metrics.json and done.json, as kdgat.stages writes them; returns the marker."""
    fp = f"{stage}{seed}{dataset}"[:16].ljust(16, "0")
    folder = art / dataset / stage / fp
    folder.mkdir(parents=True)
    metrics = {"stage": stage, "preset": stage, "dataset": dataset, "fingerprint": fp, "seconds": 12.5,
               "parameters": parameters, "splits": scores(f1, **({"splits": splits} if splits else {}))}
    if peak is not None:
        metrics["peak_rss_mib"] = peak
    inputs = {"teacher": {"stage": teacher.parent.name, "fingerprint": teacher.name,
                          "dir": str(teacher.parent / "latest")}} if teacher else {}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    digest = hashlib.sha256((folder / "metrics.json").read_bytes()).hexdigest()
    (folder / "done.json").write_text(json.dumps({"stage": stage, "seed": seed, "fingerprint": fp, "seconds": 12.5,
                                                  "inputs": inputs, "slurm_job": None,
                                                  "files": {"metrics.json": digest}}))
    return folder / "done.json"


def chain(sweep: Path, num: int, dataset: str, seed: int, stages: dict, markers: dict) -> None:
    """A chain's frozen config and manifest entry as the kdgat_chain launcher writes them (only what a report
    reads): the marker of each stage, found at submit time, is in the manifest."""
    nodes = {name: {"preset": preset, "needs": needs, "resources": RESOURCES} for name, (preset, needs) in stages.items()}
    (sweep / str(num)).mkdir(parents=True)
    (sweep / str(num) / "config.yaml").write_text(yaml.safe_dump(
        {"seed": seed, "dataset": {"name": dataset}, "pipeline": {"name": "teacher", "stages": nodes}}))
    manifest = read_manifest(sweep) if (sweep / MANIFEST).is_file() else Manifest(str(sweep), "", "slurm")
    manifest.chains.append(ChainRecord(num, [], [
        StageRecord(name, "done", marker=str(markers.get(name) or sweep / "nowhere" / name / "done.json"))
        for name in stages]))
    write_manifest(manifest)


@pytest.fixture
def sweep(tmp_path) -> Path:
    """Two chains of the teacher pipeline: hcrl_sa seed 0 finished, set_01 seed 1 with fusion not finished."""
    art, sweep = tmp_path / "art", tmp_path / "multirun" / "day" / "time"
    done0 = {s: trained(art, "hcrl_sa", s, 0, f1) for s, f1 in (("autoencoder", 0.5), ("curriculum", 0.75),
                                                                   ("fusion", 0.875))}
    done1 = {s: trained(art, "set_01", s, 1, 0.25, splits=("val", "test_dos", "test_suppress"), peak=None)
             for s in ("autoencoder", "curriculum")}
    chain(sweep, 0, "hcrl_sa", 0, dict(reversed(TEACHER.items())), done0)  # written fusion first: order by needs
    chain(sweep, 1, "set_01", 1, TEACHER, done1)
    (sweep / "multirun.yaml").write_text("{}\n")
    return sweep


def test_one_row_per_chain_and_stage_in_dependency_order_with_the_numbers_of_metrics_json(sweep):
    rows = report.gather(sweep)
    assert [(r.job, r.dataset, r.seed, r.stage, r.state) for r in rows] == [
        (0, "hcrl_sa", 0, "autoencoder", "done"), (0, "hcrl_sa", 0, "curriculum", "done"),
        (0, "hcrl_sa", 0, "fusion", "done"), (1, "set_01", 1, "autoencoder", "done"),
        (1, "set_01", 1, "curriculum", "done"), (1, "set_01", 1, "fusion", "not finished")]
    curriculum = rows[1]
    assert curriculum.splits["test_dos"] == {"accuracy": 0.76, "f1": 0.75, "roc_auc": 0.99}
    assert (curriculum.parameters, curriculum.seconds, curriculum.peak_mib) == (1000, 12.5, 512.0)
    assert rows[3].peak_mib is None and rows[5].splits == {} and rows[5].artifacts is None
    assert report.split_names(rows) == ["val", "test_dos", "test_fuzzing", "test_suppress"]


def test_csv_holds_every_split_and_metric_and_leaves_blanks_for_what_is_not_there(sweep):
    report.write_report(sweep)
    with open(sweep / "report.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:9] == ["job", "dataset", "seed", "stage", "preset", "state", "val_accuracy", "val_f1",
                                 "val_roc_auc"]
    assert list(rows[0])[-5:] == ["parameters", "seconds", "peak_mem_mib", "artifacts", "mlflow_run_id"]
    fusion = rows[2]
    assert (fusion["stage"], fusion["val_f1"], fusion["test_fuzzing_roc_auc"], fusion["peak_mem_mib"]) == \
        ("fusion", "0.875", "0.99", "512.0")
    assert fusion["test_suppress_f1"] == ""  # hcrl_sa has no such scenario
    assert rows[3]["test_suppress_f1"] == "0.25" and rows[3]["peak_mem_mib"] == ""
    unfinished = rows[5]
    assert unfinished["state"] == "not finished" and unfinished["val_f1"] == unfinished["parameters"] == ""


def test_markdown_table_shows_accuracy_f1_auc_per_split_and_the_unfinished_stage(sweep, tmp_path):
    printed = report.write_report(sweep)
    text = (sweep / "report.md").read_text()
    assert printed in text and "## Figures" in text and "## Figures" not in printed
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert lines[0] == ("| job | dataset | seed | stage | preset | state | val | test_dos | test_fuzzing | "
                        "test_suppress | parameters | time | peak memory |")
    assert lines[2] == ("| 0 | hcrl_sa | 0 | curriculum | curriculum | done | 0.7600 / 0.7500 / 0.9900 | "
                        "0.7600 / 0.7500 / 0.9900 | 0.7600 / 0.7500 / 0.9900 |  | 1,000 | 12.5 s | 512 MiB |")
    assert lines[-1].startswith("| 1 | set_01 | 1 | fusion | fusion | not finished |")
    assert "5 of 6 stages done, in 2 chains" in text
    assert "Teacher and student" not in text and not (sweep / report.TEACHER_FIGURE).exists()
    assert (sweep / report.F1_FIGURE).read_bytes().startswith(PNG)


def test_roc_auc_of_a_single_class_split_is_na_in_markdown_and_blank_in_csv(tmp_path):
    sweep, art = tmp_path / "sweep", tmp_path / "art"
    marker = trained(art, "hcrl_ch", "autoencoder", 0, 0.5)
    metrics = json.loads((marker.parent / "metrics.json").read_text())
    metrics["splits"]["test_dos"]["roc_auc"] = None
    (marker.parent / "metrics.json").write_text(json.dumps(metrics))
    record = json.loads(marker.read_text())  # as the stage itself would have vouched for it
    record["files"]["metrics.json"] = hashlib.sha256((marker.parent / "metrics.json").read_bytes()).hexdigest()
    marker.write_text(json.dumps(record))
    chain(sweep, 0, "hcrl_ch", 0, {"autoencoder": ("autoencoder", [])}, {"autoencoder": marker})
    printed = report.write_report(sweep)
    assert "| 0.5100 / 0.5000 / n/a |" in printed
    assert next(csv.DictReader(open(sweep / "report.csv")))["test_dos_roc_auc"] == ""


def test_a_sweep_with_nothing_finished_still_gets_a_report_that_says_so(tmp_path):
    sweep = tmp_path / "sweep"
    chain(sweep, 0, "hcrl_sa", 0, TEACHER, {})
    printed = report.write_report(sweep)
    assert "Nothing has finished yet: 3 stages of 1 chain, none done." in printed
    assert printed.count("| not finished |") == 3
    assert len(list(csv.DictReader(open(sweep / "report.csv")))) == 3
    assert not list(sweep.glob("*.png"))


def test_slurm_is_asked_only_about_unfinished_stages_and_missing_figures(sweep):
    manifest = read_manifest(sweep)
    for record, job in zip(manifest.chains[1].stages, ("11", "12_1", "13")):
        record.action, record.job_id = "submitted", job
    write_manifest(manifest)
    asked = []

    def lookup(ids):
        asked.append(ids)
        return {"11": JobInfo("11", "COMPLETED", elapsed="00:10:00", max_rss_mb=3000.0),
                "12_1": JobInfo("12_1", "GONE"), "13": JobInfo("13", "PENDING", reason="Dependency")}

    rows = {(r.job, r.stage): r for r in report.gather(sweep, lookup)}
    assert asked == [["11", "12_1", "13"]]  # chain 0 has every figure; chain 1 recorded no peak memory
    assert rows[(1, "autoencoder")].peak_mib == 3000.0 and rows[(1, "autoencoder")].seconds == 12.5
    assert rows[(1, "curriculum")].peak_mib is None  # SLURM forgot it: left blank, not guessed
    assert rows[(1, "fusion")].state == "not finished (PENDING)"


def test_teacher_against_student_uses_the_teacher_the_student_was_distilled_from(tmp_path):
    art, sweep = tmp_path / "art", tmp_path / "sweep"
    old_teacher = trained(art, "hcrl_sa", "curriculum", 0, 0.9, parameters=1_000_000).parent
    newer = trained(art, "hcrl_sa", "curriculum", 1, 0.1, parameters=1_000_000).parent
    (art / "hcrl_sa" / "curriculum" / "latest").symlink_to(newer.name)  # the link moved on since
    students = {"autoencoder": ("autoencoder", []), "distillation": ("distillation", [])}
    markers = {"autoencoder": trained(art, "hcrl_sa", "autoencoder", 0, 0.5),
               "distillation": trained(art, "hcrl_sa", "distillation", 0, 0.8, parameters=20_000,
                                       teacher=old_teacher)}
    chain(sweep, 0, "hcrl_sa", 0, students, markers)
    printed = report.write_report(sweep)
    section = printed.split("## Teacher and student")[1]
    assert (f"| hcrl_sa | 0 | distillation | curriculum ({old_teacher.name}) | 1,000,000 / 20,000 | "
            "0.9000 / 0.8000 |") in section
    for figure in (report.F1_FIGURE, report.TEACHER_FIGURE):
        assert (sweep / figure).read_bytes().startswith(PNG)
        assert f"![{figure}]({figure})" in (sweep / "report.md").read_text()
    # a teacher whose files changed since it finished is not compared against
    (old_teacher / "metrics.json").write_text((old_teacher / "metrics.json").read_text().replace("0.9", "0.99"))
    assert "## Teacher and student" not in report.write_report(sweep)


def test_hydra_saved_config_resolves_its_paths_where_the_job_ran(tmp_path, monkeypatch):
    ran_in, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    ran_in.mkdir(), elsewhere.mkdir()
    hydra_dir = tmp_path / "sweep" / "0" / ".hydra"
    hydra_dir.mkdir(parents=True)
    (hydra_dir / "config.yaml").write_text("paths:\n  artifacts: ${kdgat.abspath:experimentruns}\n  data: mine\n")
    (hydra_dir / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"cwd": str(ran_in),
                                                                                 "output_dir": "/x"},
                                                                     "job": {"chdir": None}}}))
    monkeypatch.chdir(elsewhere)
    assert sweeps.chain_configs(tmp_path / "sweep") == {0: hydra_dir / "config.yaml"}
    cfg = report.load_config(hydra_dir / "config.yaml")
    assert (cfg.paths.artifacts, cfg.paths.data) == (str(ran_in / "experimentruns"), str(ran_in / "mine"))
    assert Path.cwd() == elsewhere


def test_without_an_argument_the_newest_sweep_is_reported_whatever_the_launcher(tmp_path, monkeypatch):
    older, newer = tmp_path / "multirun" / "d" / "1", tmp_path / "multirun" / "d" / "2"
    chain(older, 0, "hcrl_sa", 0, TEACHER, {})
    (newer / "0" / ".hydra").mkdir(parents=True)
    (newer / "0" / ".hydra" / "config.yaml").write_text("{}\n")
    (tmp_path / "multirun" / "d" / "3").mkdir()  # a dry run's folder: no chains
    for age, folder in ((200, older), (100, newer)):
        (folder / "multirun.yaml").write_text("{}\n")
        os.utime(folder / "multirun.yaml", (1e9 - age, 1e9 - age))
    monkeypatch.chdir(tmp_path)
    assert sweeps.find_sweep(None, launched=False) == Path("multirun/d/2")
    os.utime(older, None)  # a report written into the older sweep does not make it the newest
    assert sweeps.find_sweep(None, launched=False) == Path("multirun/d/2")


@pytest.mark.parametrize("path, says", [("not-there", "does not exist"), ("art", "is not a sweep"),
                                        ("multirun/day/time/0", "is not a sweep")])
@pytest.mark.parametrize("command", ["report", "status"])
def test_a_path_that_is_not_a_sweep_is_one_line_and_exit_status_2(sweep, tmp_path, monkeypatch, capsys, path, says,
                                                                    command):
    monkeypatch.chdir(tmp_path)
    assert main([command, path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"kdgat: error: {path} {says}")


def test_command_prints_the_table_and_writes_the_files(sweep, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["report"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"# Sweep report: {sweep}") and "| 1 | set_01 | 1 | fusion |" in out
    assert {p.name for p in sweep.glob("report*")} == {"report.md", "report.csv", report.F1_FIGURE}


@pytest.mark.slow
def test_report_of_a_real_two_seed_teacher_sweep_matches_every_metrics_json(tmp_path, monkeypatch, capsys):
    sweep, art = tmp_path / "sweep", tmp_path / "art"
    out = run_train("-m", "pipeline=teacher", "dataset=synthetic", "dataset.synthetic.frames=20000",
                    "train.max_epochs=1", "seed=0,1", "progress=false", f"paths.artifacts={art}",
                    f"paths.data={tmp_path / 'data'}", f"hydra.sweep.dir={sweep}", cwd=tmp_path, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(sweep)]) == 0
    assert capsys.readouterr().out.count("| done |") == 6

    with open(sweep / "report.csv", newline="") as f:
        rows = {(r["stage"], int(r["seed"])): r for r in csv.DictReader(f)}
    assert sorted(rows) == sorted((s, seed) for s in TEACHER for seed in (0, 1))
    checked = 0
    for marker in art.glob("synthetic/*/*/done.json"):
        if marker.parent.name == "latest":
            continue
        seed = json.loads(marker.read_text())["seed"]
        metrics = json.loads((marker.parent / "metrics.json").read_text())
        row = rows[(metrics["stage"], seed)]
        assert row["artifacts"] == str(marker.parent)
        assert (int(row["parameters"]), float(row["seconds"]), float(row["peak_mem_mib"])) == \
            (metrics["parameters"], metrics["seconds"], metrics["peak_rss_mib"])
        for split, values in metrics["splits"].items():
            for m in report.METRICS:
                cell = row[f"{split}_{m}"]
                assert (float(cell) if cell else None) == values[m], (split, m)
                checked += 1
    assert checked == 6 * 5 * 3  # six stages, validation and four test scenarios, three metrics
    png = (sweep / report.F1_FIGURE).read_bytes()
    assert png.startswith(PNG) and png[12:16] == b"IHDR" and len(png) > 5000


def test_each_chain_gets_its_mlflow_runs_and_a_link_to_its_parent_run(sweep, tmp_path):
    """The stages' pointers (kdgat.tracking.record) give each row its run id and each chain its parent run."""
    from kdgat.tracking.record import write_pointer

    server = "http://tracking.example:5000"
    for n, marker in enumerate(sorted((tmp_path / "art" / "hcrl_sa").glob("*/*/done.json"))):
        write_pointer(marker.parent, {"uri": server, "experiment_id": "7", "parent_run_id": "p0",
                                      "run_id": f"r{n}", "state": "complete"})
    pending = next((tmp_path / "art" / "set_01").glob("autoencoder/*/done.json")).parent
    write_pointer(pending, {"uri": "sqlite:////x/mlflow.db", "experiment_id": None, "parent_run_id": None,
                            "run_id": None, "state": "pending"})
    printed = report.write_report(sweep)
    section = printed.split("## MLflow", 1)[1]
    assert "`open http://tracking.example:5000`; `mlflow ui --backend-store-uri sqlite:////x/mlflow.db`" in section
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    assert lines[1] == ("| 0 | hcrl_sa | 0 | p0 | autoencoder r0, curriculum r1, fusion r2 | "
                        "http://tracking.example:5000/#/experiments/7/runs/p0 |")
    assert lines[2] == "| 1 | set_01 | 1 | - | autoencoder (not sent: kdgat track sync) | - |"
    with open(sweep / "report.csv", newline="") as f:
        ids = [r["mlflow_run_id"] for r in csv.DictReader(f)]
    assert ids == ["r0", "r1", "r2", "", "", ""]


def test_a_sweep_without_tracking_has_no_mlflow_section(sweep):
    assert "## MLflow" not in report.write_report(sweep)
