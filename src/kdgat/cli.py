"""The `kdgat` command: tools around the Hydra app (train.py runs the pipelines)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from kdgat.errors import KdgatError


def cmd_synth(args: argparse.Namespace) -> int:
    from kdgat.console import show_progress
    from kdgat.data import synth

    out = synth.generate(Path(args.out), like=args.like, frames=args.frames, seed=args.seed,
                         overwrite=args.overwrite, progress=show_progress(not args.quiet))
    print(f"wrote synthetic {args.like}-like dataset to {out}")
    return 0


def cmd_data_info(args: argparse.Namespace) -> int:
    """Per file: format, frames, injected frames and unparseable rows; then totals and windows."""
    import logging

    from kdgat.data.info import dataset_info, render

    info = dataset_info(Path(args.dir), args.window, args.stride)
    print(render(info, args.window, args.stride))
    for message in info.overlaps.messages():
        logging.getLogger("kdgat.data.info").warning("%s: %s", info.root, message)
    if not info.rows or sum(row[2] for row in info.rows) == 0:
        print(f"kdgat: error: no usable frame in {info.root}", file=sys.stderr)
        return 1
    if info.unusable:
        print(f"kdgat: error: {len(info.unusable)} of {len(info.rows)} files in {info.root} are unusable, so "
              f"training would refuse the dataset; first: {info.unusable[0]}", file=sys.stderr)
        return 1
    return 0


def cmd_data_import(args: argparse.Namespace) -> int:
    """A download of a real dataset made into kdgat's dataset folders under paths.data."""
    from kdgat.config import command_path
    from kdgat.data.importer import import_download, summary

    out = Path(command_path(args.out or os.environ.get("KDGAT_DATA") or "data"))
    names = [n.strip() for n in args.dataset.split(",") if n.strip()] if args.dataset else None
    for imported in import_download(Path(command_path(args.source)), out, names, args.train_fraction):
        print(summary(imported) + "\n")
    return 0


def cmd_pipelines(args: argparse.Namespace) -> int:
    """Every pipeline with its stages, what each needs, and the resources each gets by default."""
    from hydra_plugins.kdgat_chain_launcher import format_table, plan_stages
    from kdgat.config import compose, group_options
    from kdgat.stages.registry import STAGES

    def elsewhere(node, needs) -> str:
        """What a stage reads that no stage of its pipeline makes: trained by an earlier run."""
        presets = {cfg.pipeline.stages[n].preset for n in needs}
        kinds = [f"{kind} ({node.teacher if kind == 'teacher' else '/'.join(makers)})"
                 for kind, makers in STAGES[node.preset].reads.items()
                 if not presets & ({node.teacher} if kind == "teacher" else set(makers))]
        return ", ".join(kinds) or "-"

    for name in group_options("pipeline"):
        if name == "custom":
            print("custom:\n  any presets, 'pipeline.presets=[autoencoder,gat_normal,fusion]', each with its own "
                  "default resources, ordered by what each reads\n")
            continue
        cfg = compose([f"pipeline={name}"])
        rows = [(s.name, cfg.pipeline.stages[s.name].preset, ",".join(s.needs) or "-",
                 elsewhere(cfg.pipeline.stages[s.name], s.needs), s.resources.walltime, s.resources.mem,
                 s.resources.cpus, s.resources.gpus) for s in plan_stages(cfg.pipeline, cfg.resources)]
        table = format_table(("stage", "preset", "needs", "reads from earlier runs", "walltime", "mem", "cpus", "gpus"),
                             rows)
        print(f"{name}:\n" + "\n".join("  " + line for line in table.splitlines()) + "\n")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Per chain and stage: job id, state, elapsed, memory used, and why it waits or was cancelled."""
    from hydra_plugins.kdgat_chain_launcher import SlurmToolsMissing, format_table
    from kdgat.status import attempts_of, current_jobs, describe
    from kdgat.sweeps import find_sweep, load

    sweep = find_sweep(args.sweep, launched=True)
    manifest, backend = load(sweep)
    attempts = attempts_of(manifest)
    jobs = current_jobs(manifest, attempts)
    try:
        infos = backend.states(list(jobs.values()))
    except SlurmToolsMissing as err:
        raise KdgatError(str(err)) from None
    if args.suggest:
        from kdgat.suggest import as_yaml, suggestions

        print(as_yaml(suggestions([(stage, infos[job]) for (_, stage), job in jobs.items()]), sweep), end="")
        return 0
    rows = describe(manifest, infos, attempts)
    print(f"sweep {sweep} ({manifest.cluster})")
    print(format_table(("job", "stage", "job id", "state", "elapsed", "memory", ""),
                       [(r.chain, r.stage, r.job_id, r.state, r.elapsed, r.memory, r.note) for r in rows]))
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from kdgat.status import attempts_of, to_cancel
    from kdgat.sweeps import find_sweep, load

    sweep = find_sweep(args.sweep, launched=True)
    manifest, backend = load(sweep)
    guards, ids = to_cancel(manifest, args.stage, attempts_of(manifest))
    try:
        backend.cancel(guards)  # first: a guard must not retry a stage being cancelled
        backend.cancel(ids)
    except RuntimeError as err:
        raise KdgatError(str(err)) from None
    print(f"cancelled {len(ids)} jobs of {sweep}: {' '.join(ids) or '-'}"
          + (f" (and {len(guards)} retry guards)" if guards else ""))
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    from kdgat.status import log_path
    from kdgat.sweeps import find_sweep, load

    path = log_path(load(find_sweep(args.sweep, launched=True))[0], args.stage, args.chain)
    if args.follow:
        os.execvp("tail", ["tail", "-F", str(path)])
    if not path.is_file():
        raise KdgatError(f"{path} does not exist yet: the job has not started")
    sys.stdout.write(path.read_text())
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Every chain's stage metrics as report.md, report.csv and PNG figures in the sweep; the table on stdout."""
    from kdgat.report import write_report
    from kdgat.sweeps import find_sweep

    sweep = find_sweep(args.sweep, launched=False)
    tables = write_report(sweep)
    print(tables, end="")
    print(f"kdgat: wrote {sweep / 'report.md'}, report.csv and the figures beside it", file=sys.stderr)
    return 0


def cmd_track_sync(args: argparse.Namespace) -> int:
    """Send the MLflow runs that tracking could not send (server down, store locked) from the stages' files."""
    from kdgat.sweeps import find_sweep, is_sweep
    from kdgat.tracking.sync import sync

    given = Path(args.sweep) if args.sweep else None
    path = given if given is not None and given.is_dir() and not is_sweep(given) else find_sweep(args.sweep,
                                                                                                  launched=False)
    results = sync(path, args.uri)
    for r in results:
        where = f"chain {r.chain} " if r.chain is not None else ""
        print(f"{where}{r.stage_dir}: {r.outcome}" + (f" (run {r.run_id})" if r.run_id else ""))
    failed = sum(not r.ok for r in results)
    print(f"kdgat: {len(results) - failed} of {len(results)} finished stages' runs complete in MLflow"
          + (f"; {failed} could not be sent" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


def _command(sub, name: str, text: str) -> argparse.ArgumentParser:
    """A subcommand whose --help page says what it does, as the list of commands does."""
    return sub.add_parser(name, help=text, description=text)


def build_parser() -> argparse.ArgumentParser:
    from kdgat.data.synth import LIKE

    parser = argparse.ArgumentParser(prog="kdgat", description=__doc__)
    parser.add_argument("--version", action="version", version=f"kdgat {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    synth = _command(sub, "synth", "write a synthetic dataset folder in a real dataset's file format")
    synth.add_argument("--like", required=True, choices=sorted(LIKE), help="dataset whose format and layout to copy")
    synth.add_argument("--out", required=True, help="dataset folder to create")
    synth.add_argument("--frames", type=int, default=200_000, help="approximate number of frames in all files")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(func=cmd_synth)

    pipelines = _command(sub, "pipelines", "list the pipelines, their stages, needs and default resources")
    pipelines.set_defaults(func=cmd_pipelines)

    status = _command(sub, "status", "what became of a submitted sweep's jobs (default: the newest)")
    status.add_argument("sweep", nargs="?", help="sweep directory (holds manifest.json)")
    status.add_argument("--suggest", action="store_true",
                        help="print per-stage requests learned from what the stages used, as a resources_file")
    status.set_defaults(func=cmd_status)
    cancel = _command(sub, "cancel", "cancel a sweep's jobs, or one stage and what depends on it")
    cancel.add_argument("sweep", nargs="?", help="sweep directory (default: the newest)")
    cancel.add_argument("--stage", help="only this stage and the stages that need it")
    cancel.set_defaults(func=cmd_cancel)
    report = _command(sub, "report", "a sweep's stage metrics as Markdown, CSV and figures (default: the newest)")
    report.add_argument("sweep", nargs="?", help="sweep directory (holds <job num>/config.yaml or .hydra/config.yaml)")
    report.set_defaults(func=cmd_report)
    track = _command(sub, "track", "MLflow tracking of the stages' runs")
    track_sub = track.add_subparsers(dest="track_command", required=True)
    track_sync = _command(track_sub, "sync", "send the runs tracking could not send (server down, store locked)")
    track_sync.add_argument("sweep", nargs="?", help="sweep directory (default: the newest), or a folder such as "
                            "paths.artifacts: every finished stage under it")
    track_sync.add_argument("--uri", help="send them to this MLflow server or store instead of the one they name")
    track_sync.set_defaults(func=cmd_track_sync)
    logs = _command(sub, "logs", "show a stage's SLURM log")
    logs.add_argument("sweep", help="sweep directory")
    logs.add_argument("stage")
    logs.add_argument("--chain", type=int, help="the job number, when the sweep has several chains")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing as the log grows")
    logs.set_defaults(func=cmd_logs)

    data = _command(sub, "data", "inspect CAN datasets, and import the real ones")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    info = _command(data_sub, "info", "formats, frames, injected and bad rows per file of a dataset folder")
    info.add_argument("dir")
    info.add_argument("--window", type=int, default=100)
    info.add_argument("--stride", type=int, default=100)
    info.set_defaults(func=cmd_data_info)
    load = _command(data_sub, "import", "make a download of a real dataset (can-train-and-test v1.5, HCRL "
                    "Car-Hacking, HCRL Survival) into kdgat's dataset folders")
    load.add_argument("source", help="the folder the download was unpacked into")
    load.add_argument("--dataset", help="which dataset(s) to make, by kdgat name, comma-separated (default: "
                      "every dataset of a v1.5 root; hcrl_ch; hcrl_sa, or hcrl_sa_<vehicle> for one vehicle)")
    load.add_argument("--out", help="the folder holding the dataset folders (default: paths.data, "
                      "that is $KDGAT_DATA or data/)")
    load.add_argument("--train-fraction", type=float, default=0.8,
                      help="share of each unsplit attack file's frames, in file order, that goes to training")
    load.set_defaults(func=cmd_data_import)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kdgat")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def main(argv: list[str] | None = None) -> int:
    from kdgat.console import setup_command_line
    from kdgat.sweeps import NotASweep

    args = build_parser().parse_args(argv)
    setup_command_line()
    try:
        return args.func(args)
    except NotASweep as err:  # a wrong argument, as argparse's own usage errors: exit status 2
        print(f"kdgat: error: {err}", file=sys.stderr)
        return 2
    except KdgatError as err:
        print(f"kdgat: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
