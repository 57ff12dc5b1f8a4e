"""`kdgat report [SWEEP_DIR]`: how every model of a sweep did, as one table, a CSV file and a few figures.

A sweep directory holds one folder per chain (Hydra's job number) with that
chain's config: `<num>/config.yaml`, frozen at submit by the kdgat_chain
launcher (which also writes manifest.json with the SLURM job ids), or
`<num>/.hydra/config.yaml`, saved unresolved by Hydra's own launcher. From a
config, kdgat.artifacts says where each stage's artifacts are; done.json there
says the stage finished, and metrics.json what it scored. Gathering rows is
plain file reading (no torch), so it stays fast and testable on made-up sweeps.
"""

from __future__ import annotations

import dataclasses
import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kdgat.errors import KdgatError
from kdgat.status import attempts_of, current_jobs, load_config

METRICS = ("accuracy", "f1", "roc_auc")
DONE = "done"
NOT_FINISHED = "not finished"
F1_FIGURE = "report_f1.png"
TEACHER_FIGURE = "report_teacher_student.png"


@dataclass
class Row:
    """One stage of one chain: what it scored, or that it has not finished."""

    job: int  # Hydra's job number: the sweep's <num> folder
    dataset: str
    seed: Any
    stage: str
    preset: str
    state: str = NOT_FINISHED
    splits: dict[str, dict[str, float | None]] = field(default_factory=dict)
    parameters: int | None = None
    seconds: float | None = None
    peak_mib: float | None = None
    artifacts: Path | None = None
    teacher: Path | None = None  # for a distilled student: the teacher GAT it learned from
    job_id: str | None = None  # the SLURM job, when the launcher's manifest names one
    mlflow: dict[str, Any] | None = None  # the stage's link to its MLflow run (kdgat.tracking.record's pointer)

    @property
    def done(self) -> bool:
        return self.state == DONE


def _launched(sweep: Path) -> tuple[dict[tuple[int, str], Any], Any]:
    """The launcher's record of each (job number, stage), and its backend, when the launcher made the sweep."""
    from kdgat.sweeps import has_manifest, load

    if not has_manifest(sweep):
        return {}, None
    manifest, backend = load(sweep)
    jobs = current_jobs(manifest, attempts_of(manifest))  # a retried stage: its latest attempt's job
    return {(c.num, s.stage): dataclasses.replace(s, job_id=jobs.get((c.num, s.stage), s.job_id))
            for c in manifest.chains for s in c.stages}, backend


# ---------------------------------------------------------------- gathering rows

def gather(sweep: Path, lookup: Callable[[list[str]], dict[str, Any]] | None = None) -> list[Row]:
    """One row per chain and stage, by job number and then in dependency order.

    `lookup` (default: the sweep's backend) is asked only about jobs of stages that are not finished,
    or finished without recording their wall time or peak memory."""
    from hydra_plugins.kdgat_chain_launcher import plan_stages
    from kdgat.sweeps import chain_configs

    records, backend = _launched(sweep)
    rows = []
    for num, path in chain_configs(sweep).items():
        cfg, memo = load_config(path), {}  # memo: each stage of the chain fingerprinted once
        for stage in plan_stages(cfg.pipeline, cfg.get("resources")):
            rows.append(_row(num, cfg, stage.name, records.get((num, stage.name)), memo))
    if lookup is None and backend is not None:
        lookup = backend.states
    _ask_backend(rows, lookup)
    return rows


def _stage_dir(cfg: Any, name: str, record: Any, memo: dict) -> Path | None:
    """Where the stage's artifacts are: the marker the launcher recorded at submit, else computed now."""
    from kdgat import artifacts

    if record is not None and record.marker:
        return Path(record.marker).parent
    if cfg.pipeline.stages[name].get("marker"):  # a sweep of the launcher before version 2 froze it here
        return Path(cfg.pipeline.stages[name].marker).parent
    try:
        return artifacts.stage_artifacts(cfg, name, memo).dir
    except KdgatError:  # its dataset, or an input trained elsewhere, is not there (yet)
        return None


def _row(num: int, cfg: Any, name: str, record: Any, memo: dict) -> Row:
    from kdgat.artifacts import StageArtifacts
    from kdgat.tracking.record import read_pointer

    node = cfg.pipeline.stages[name]
    job_id = record.job_id if record is not None and record.job_id != "-" and record.action != "done" else None
    row = Row(job=num, dataset=str(cfg.dataset.name), seed=cfg.seed, stage=name, preset=str(node.preset),
              job_id=job_id)
    folder = _stage_dir(cfg, name, record, memo)
    row.mlflow = read_pointer(folder) if folder else None
    art = folder and StageArtifacts(stage=name, preset=str(node.preset), dir=folder, fingerprint=folder.name)
    if not art or not art.done():  # not finished, or its files no longer match what it wrote
        return row
    record = art.record()
    metrics = json.loads(art.metrics.read_text())
    teacher = record.get("inputs", {}).get("teacher")  # by fingerprint: its "dir" may be the moving `latest` link
    row.state, row.artifacts = DONE, folder
    row.splits = {split: {k: m.get(k) for k in METRICS} for split, m in metrics.get("splits", {}).items()}
    row.parameters = metrics.get("parameters")
    row.seconds = metrics.get("seconds", record.get("seconds"))
    row.peak_mib = metrics.get("peak_rss_mib")
    row.teacher = Path(teacher["dir"]).parent / teacher["fingerprint"] if teacher else None
    return row


def _ask_backend(rows: list[Row], lookup: Callable[[list[str]], dict[str, Any]] | None) -> None:
    """The state of an unfinished stage's job; wall time and peak memory where a stage recorded none."""
    from hydra_plugins.kdgat_chain_launcher import SlurmToolsMissing, slurm_seconds

    wanted = [r for r in rows if r.job_id and (not r.done or r.peak_mib is None or r.seconds is None)]
    if not wanted or lookup is None:
        return
    try:
        infos = lookup(sorted({r.job_id for r in wanted}))
    except SlurmToolsMissing:  # a report from files alone, on a machine that cannot ask SLURM
        return
    for r in wanted:
        info = infos.get(r.job_id)
        if info is None or info.state == "GONE":
            continue
        if not r.done:
            r.state = f"{NOT_FINISHED} ({info.state})"
            continue
        r.peak_mib = r.peak_mib if r.peak_mib is not None else info.max_rss_mb
        r.seconds = r.seconds if r.seconds is not None else slurm_seconds(info.elapsed)


def split_names(rows: list[Row]) -> list[str]:
    """Validation first, then every test scenario any row has, in the order first met."""
    names: list[str] = []
    for r in rows:
        names += [s for s in r.splits if s not in names]
    return sorted(names, key=lambda s: s != "val")


def teacher_pairs(rows: list[Row]) -> list[tuple[Row, dict[str, Any]]]:
    """Each finished student with the metrics of the very teacher GAT it was distilled from."""
    from kdgat.artifacts import StageArtifacts

    pairs = []
    for r in rows:
        if not r.done or r.teacher is None:
            continue
        teacher = StageArtifacts(stage="teacher", preset="", dir=r.teacher, fingerprint=r.teacher.name)
        if teacher.done():  # its files as it wrote them
            pairs.append((r, json.loads(teacher.metrics.read_text())))
    return pairs


# ---------------------------------------------------------------- CSV and Markdown

def to_csv(rows: list[Row]) -> str:
    """Every number as metrics.json holds it (csv writes None as empty), one column per split and metric."""
    splits = split_names(rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["job", "dataset", "seed", "stage", "preset", "state",
                     *[f"{s}_{m}" for s in splits for m in METRICS],
                     "parameters", "seconds", "peak_mem_mib", "artifacts", "mlflow_run_id"])
    for r in rows:
        cells = [r.splits.get(s, {}).get(m) for s in splits for m in METRICS]
        writer.writerow([r.job, r.dataset, r.seed, r.stage, r.preset, r.state, *cells,
                         r.parameters, r.seconds, r.peak_mib, r.artifacts, (r.mlflow or {}).get("run_id")])
    return out.getvalue()


def _num(value: Any, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _table(header: list[str], lines: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(out + ["| " + " | ".join(line) + " |" for line in lines]) + "\n"


def to_markdown(rows: list[Row], sweep: Path, pairs: list[tuple[Row, dict[str, Any]]]) -> str:
    """The report: a summary line, the table of every chain and stage, teacher against student (`pairs`)."""
    splits = split_names(rows)
    done, chains = sum(r.done for r in rows), len({r.job for r in rows})
    chains_text = f"{chains} chain" + "s" * (chains != 1)
    text = [f"# Sweep report: {sweep.absolute()}\n"]
    if done == 0:
        text.append(f"Nothing has finished yet: {len(rows)} stages of {chains_text}, none done.\n")
    else:
        text.append(f"{done} of {len(rows)} stages done, in {chains_text}. Cells: accuracy / "
                    f"F1 / ROC-AUC; time: the stage's training; memory: peak resident memory of the process that "
                    f"trained it.\n")
    lines = [[str(r.job), r.dataset, str(r.seed), r.stage, r.preset, r.state,
              *[" / ".join(_num(r.splits[s][m]) for m in METRICS) if s in r.splits else "" for s in splits],
              f"{r.parameters:,}" if r.parameters is not None else "", _duration(r.seconds),
              f"{r.peak_mib:,.0f} MiB" if r.peak_mib is not None else ""] for r in rows]
    text.append(_table(["job", "dataset", "seed", "stage", "preset", "state", *splits, "parameters", "time",
                        "peak memory"], lines))
    if pairs:
        text.append("## Teacher and student\n\nF1 of the teacher GAT each student was distilled from, "
                    "then the student's.\n")
        lines = [[r.dataset, str(r.seed), r.stage, f"{t.get('stage')} ({r.teacher.name})",
                  f"{t.get('parameters', 0):,} / {r.parameters or 0:,}",
                  *[f"{_num(t['splits'][s]['f1'])} / {_num(r.splits[s]['f1'])}"
                    if s in r.splits and s in t.get("splits", {}) else "" for s in splits]] for r, t in pairs]
        text.append(_table(["dataset", "seed", "student", "teacher", "parameters (teacher / student)",
                            *[f"{s} F1" for s in splits]], lines))
    text += mlflow_section(rows)
    return "\n".join(text)


def mlflow_section(rows: list[Row]) -> list[str]:
    """Each chain's MLflow runs: its parent run with a link to it, and its stages' runs (none: nothing tracked)."""
    from kdgat.tracking.settings import run_link, ui_command

    chains: dict[int, list[Row]] = {}
    for r in rows:
        if r.mlflow and r.mlflow.get("uri"):
            chains.setdefault(r.job, []).append(r)
    if not chains:
        return []
    lines, uris = [], set()
    for job, rs in chains.items():
        linked = next((r.mlflow for r in rs if r.mlflow.get("parent_run_id")), rs[0].mlflow)
        uris.add(linked["uri"])
        stages = ", ".join(f"{r.stage} {r.mlflow.get('run_id') or '(not sent: kdgat track sync)'}" for r in rs)
        link = run_link(linked["uri"], linked.get("experiment_id"), linked.get("parent_run_id"))
        lines.append([str(job), rs[0].dataset, str(rs[0].seed), linked.get("parent_run_id") or "-", stages,
                      link or "-"])
    see = "; ".join(f"`{ui_command(u)}`" for u in sorted(uris))
    return [f"## MLflow\n\nEach chain is a parent run, its stages runs nested in it. To see them: {see}.\n",
            _table(["job", "dataset", "seed", "chain run", "stage runs", "link"], lines)]


# ---------------------------------------------------------------- figures

def _bars(ax: Any, groups: list[str], series: dict[str, list[list[float]]]) -> None:
    """Grouped bars: one group per `groups` entry, one bar per series; the mean of each cell's values (seeds),
    with a line from the lowest to the highest where there are several."""
    import numpy as np

    width = 0.8 / max(1, len(series))
    for i, (label, cells) in enumerate(series.items()):
        x = np.arange(len(groups)) - 0.4 + width * (i + 0.5)
        means = np.array([np.mean(c) if c else np.nan for c in cells])
        low = np.array([means[j] - min(c) if len(c) > 1 else 0 for j, c in enumerate(cells)])
        high = np.array([max(c) - means[j] if len(c) > 1 else 0 for j, c in enumerate(cells)])
        ax.bar(x, means, width, label=label, yerr=[low, high], capsize=2, error_kw={"linewidth": 0.8})
    ax.set_xticks(range(len(groups)), labels=groups)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("F1")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))


def _by_dataset(rows: list[Row]) -> dict[str, list[Row]]:
    """Finished rows per dataset, each trained model once (chains of one sweep may share a stage)."""
    out: dict[str, dict[Path, Row]] = {}
    for r in rows:
        if r.done:
            out.setdefault(r.dataset, {}).setdefault(r.artifacts, r)
    return {d: list(models.values()) for d, models in out.items()}


def f1_figure(rows: list[Row], path: Path) -> None:
    """F1 per dataset and stage: one panel per dataset, a group of bars per stage, a bar per split."""
    from kdgat.plots import new_figure, save_figure

    datasets = _by_dataset(rows)
    widest = max(len({r.stage for r in rs}) * len(split_names(rs)) for rs in datasets.values())
    fig = new_figure(max(8.0, 3.5 + 0.35 * widest), 3.6 * len(datasets))  # room for the legend
    for i, (dataset, rs) in enumerate(datasets.items()):
        stages = list(dict.fromkeys(r.stage for r in rs))
        splits = split_names(rs)
        ax = fig.add_subplot(len(datasets), 1, i + 1)
        _bars(ax, stages, {s: [[r.splits[s]["f1"] for r in rs if r.stage == st and s in r.splits] for st in stages]
                           for s in splits})
        ax.set_title(f"{dataset}: F1 per stage, mean of {len({r.seed for r in rs})} seeds (lines: min to max)")
    save_figure(fig, path)


def teacher_figure(pairs: list[tuple[Row, dict[str, Any]]], path: Path) -> None:
    """Teacher against student F1 on each split: one panel per dataset, a bar per model."""
    from kdgat.plots import new_figure, save_figure

    datasets = list(dict.fromkeys(r.dataset for r, _ in pairs))
    fig = new_figure(10.0, 3.6 * len(datasets))
    for i, dataset in enumerate(datasets):
        mine = [(r, t) for r, t in pairs if r.dataset == dataset]
        splits = split_names([r for r, _ in mine])
        teachers = list({r.teacher: t for r, t in mine}.values())  # each once, however many students it taught
        label = f"teacher {teachers[0].get('stage')}, {teachers[0].get('parameters', 0):,} parameters"
        series = {label: [[t["splits"][s]["f1"] for t in teachers if s in t.get("splits", {})] for s in splits]}
        for stage in dict.fromkeys(r.stage for r, _ in mine):
            students = [r for r, _ in mine if r.stage == stage]
            series[f"student {stage}, {students[0].parameters or 0:,} parameters"] = [
                [r.splits[s]["f1"] for r in students if s in r.splits] for s in splits]
        ax = fig.add_subplot(len(datasets), 1, i + 1)
        _bars(ax, splits, series)
        ax.set_title(f"{dataset}: teacher versus student F1 ({len({r.seed for r, _ in mine})} seeds)")
    save_figure(fig, path)


# ---------------------------------------------------------------- the command

def write_report(sweep: Path, lookup: Callable[[list[str]], dict[str, Any]] | None = None) -> str:
    """Write report.md, report.csv and the figures into the sweep; return the tables as Markdown."""
    from kdgat.atomic import write_text_atomic

    rows = gather(sweep, lookup)
    figures = []
    if any(r.done for r in rows):
        f1_figure(rows, sweep / F1_FIGURE)
        figures.append(F1_FIGURE)
    pairs = teacher_pairs(rows)
    if pairs:
        teacher_figure(pairs, sweep / TEACHER_FIGURE)
        figures.append(TEACHER_FIGURE)
    tables = to_markdown(rows, sweep, pairs)
    pictures = "\n## Figures\n\n" + "\n".join(f"![{name}]({name})" for name in figures) + "\n" if figures else ""
    write_text_atomic(sweep / "report.csv", to_csv(rows))
    write_text_atomic(sweep / "report.md", tables + pictures)
    return tables
