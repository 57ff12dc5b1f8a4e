"""`kdgat status / cancel / logs`: a launched sweep told in words, from its manifest and its backend.

The launcher's manifest.json says which job runs which stage of which chain;
the backend it names (SLURM, or this machine) says what became of each job.
Everything here reads; `cancel` is the only thing that acts.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from hydra_plugins.kdgat_chain_launcher import Attempt, Manifest, read_attempts, slurm_seconds
from kdgat.errors import KdgatError
from kdgat.suggest import with_margin

FAILED_STATES = {"FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "PREEMPTED"}
SIGNALS = {9: "SIGKILL, as the out-of-memory killer sends: more memory?", 15: "SIGTERM", 6: "SIGABRT",
           11: "SIGSEGV"}


@dataclass
class Row:
    chain: int
    stage: str
    job_id: str
    state: str
    elapsed: str
    memory: str
    note: str


def suggestion(elapsed: str, used_mb: float | None) -> str:
    """Requests for the next run, as `kdgat status --suggest` would make them (`kdgat.suggest.with_margin`)."""
    request = with_margin(used_mb, slurm_seconds(elapsed))
    out = [f"{key}={request[key]}" for key in ("walltime", "mem") if key in request]
    return ("next time " + " ".join(out)) if out else ""


def _ending(info: Any) -> str:
    """How a job ended, in words: `exit 1`, or `killed by signal 9 (SIGKILL, ...)` when a step died of a signal."""
    if info.signal:
        return f"killed by signal {info.signal} ({SIGNALS.get(info.signal, 'see man 7 signal')})"
    return f"exit {info.exit_code.split(':')[0] or '?'}"


def attempts_of(manifest: Manifest) -> dict[int, list[Attempt]]:
    """Each chain's attempts (the launcher's submission, then each retry a guard made), by job number."""
    return {c.num: read_attempts(Path(manifest.sweep_dir) / str(c.num)) for c in manifest.chains}


def current_jobs(manifest: Manifest, attempts: dict[int, list[Attempt]]) -> dict[tuple[int, str], str]:
    """The job that now runs each submitted stage: its latest attempt's."""
    out = {}
    for chain in manifest.chains:
        latest = attempts.get(chain.num, [])[-1:]
        for s in chain.stages:
            if s.submitted:
                out[(chain.num, s.stage)] = latest[0].jobs.get(s.stage, s.job_id) if latest else s.job_id
    return out


def _attempt_note(stage: str, attempts: list[Attempt]) -> str:
    """How many times a stage ran, why it ran again, and why it was not, when it was retried or refused."""
    tries = [a for i, a in enumerate(attempts) if i == 0 or a.jobs.get(stage) != attempts[i - 1].jobs.get(stage)]
    notes = [f"attempt {len(tries)}: {tries[-1].cause}"] if len(tries) > 1 else []
    last = attempts[-1] if attempts else None
    if last is not None and last.outcome.startswith("not retried") and f"stage {stage} " in last.outcome:
        notes.append(last.outcome)
    return "; ".join(notes)


def describe(manifest: Manifest, infos: dict[str, Any], attempts: dict[int, list[Attempt]] | None = None) -> list[Row]:
    """One row per stage, with the reason a job waits or was cancelled in a user's words."""
    attempts = attempts or {}
    jobs = current_jobs(manifest, attempts)
    rows = []
    for chain in manifest.chains:
        by_stage = {s.stage: s for s in chain.stages}
        for s in chain.stages:
            if s.action == "done":
                rows.append(Row(chain.num, s.stage, "-", "DONE", "", "",
                                "already trained; not submitted" + (f"; {s.note}" if s.note else "")))
                continue
            job = jobs[(chain.num, s.stage)]
            info = infos[job]
            note, memory = "", ""
            if info.state == "PENDING":
                waiting = [n for n in s.needs if infos.get(jobs.get((chain.num, n))) is not None
                           and infos[jobs[(chain.num, n)]].state != "COMPLETED"]
                note = f"waiting for {', '.join(waiting)}" if waiting and "Depend" in info.reason \
                    else f"waiting: {info.reason or 'in the queue'}"
            elif info.state == "CANCELLED":
                culprits = [n for n in s.needs if jobs.get((chain.num, n)) in infos
                            and infos[jobs[(chain.num, n)]].state in FAILED_STATES]
                if culprits:
                    up = by_stage[culprits[0]]
                    upinfo = infos[jobs[(chain.num, up.stage)]]
                    note = (f"cancelled because {culprits[0]} {upinfo.state.lower().replace('cancelled', 'was cancelled')}"
                            f" ({_ending(upinfo)}, see {up.log})")
                else:
                    note = "cancelled" + (f": {info.reason}" if info.reason else "")
            elif info.state in FAILED_STATES:
                note = f"{info.state.lower()} ({_ending(info)}, see {s.log})"
            elif info.state == "COMPLETED":
                used = f"{info.max_rss_mb / 1024:.1f}G" if info.max_rss_mb is not None else "?"
                memory = f"{used} of {s.mem}"
                note = f"used {info.elapsed} of {s.walltime}; " + suggestion(info.elapsed, info.max_rss_mb)
            elif info.state == "RUNNING":
                note = mlflow_run_note(stage_folder(manifest, chain.num, s))
            elif info.state == "GONE":
                note = "no longer known (accounting off, and it ended long ago; or its records were removed)"
            retried = _attempt_note(s.stage, attempts.get(chain.num, []))
            note = "; ".join(n for n in (retried, note) if n)
            rows.append(Row(chain.num, s.stage, job, info.state, info.elapsed, memory, note))
    return rows


def load_config(path: Path) -> Any:
    """A chain's config: the launcher's (frozen, complete) or Hydra's own (unresolved: its paths pinned to
    where the job ran, and a `presets` pipeline's stages filled in, as the job's own run did)."""
    from omegaconf import OmegaConf

    from kdgat.config import complete

    cfg = OmegaConf.load(path)
    if path.parent.name == ".hydra":
        _pin_paths(cfg, path.parent / "hydra.yaml")
        complete(cfg)
    return cfg


def _pin_paths(cfg: Any, hydra_yaml: Path) -> None:
    """Hydra saves a job's config unresolved, and `paths.*` are relative to the directory the job ran in:
    resolve them there, so that every artifact path computed from them is the one the job wrote."""
    from omegaconf import OmegaConf

    from kdgat.config import register_resolvers

    register_resolvers()
    ran_in = Path.cwd()
    if hydra_yaml.is_file():
        hydra = OmegaConf.load(hydra_yaml).hydra
        ran_in = Path(hydra.runtime.output_dir if hydra.job.get("chdir") else hydra.runtime.cwd)
    with _working_dir(ran_in if ran_in.is_dir() else Path.cwd()):
        paths = OmegaConf.to_container(cfg.paths, resolve=True)
    cfg.paths = {k: str(ran_in / v) if isinstance(v, str) else v for k, v in paths.items()}


@contextlib.contextmanager
def _working_dir(path: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def stage_folder(manifest: Manifest, num: int, s: Any) -> Path | None:
    """Where a stage writes its artifacts: beside the marker the launcher recorded, else (its dataset was not
    there yet at submit, as a synthetic one made by its first stage) computed from the chain's frozen config."""
    from kdgat import artifacts
    from kdgat.sweeps import chain_configs

    if s.marker:
        return Path(s.marker).parent
    config = chain_configs(Path(manifest.sweep_dir)).get(num)
    try:
        return artifacts.stage_artifacts(load_config(config), s.stage).dir if config else None
    except (KdgatError, OSError):
        return None


def mlflow_run_note(folder: Path | None) -> str:
    """The MLflow run a running stage writes (from the pointer its tracking keeps in its folder), in words."""
    from kdgat.tracking.record import read_pointer

    pointer = read_pointer(folder) if folder else None
    if not pointer or not pointer.get("run_id"):
        return ""
    return f"MLflow run {pointer['run_id']}"


def to_cancel(manifest: Manifest, stage: str | None,
              attempts: dict[int, list[Attempt]] | None = None) -> tuple[list[str], list[str]]:
    """(guards, jobs) to cancel, guards first so that none of them retries what is being cancelled: the whole
    sweep's, or `stage` and every stage that needs it, in each chain (every attempt's jobs)."""
    if stage is not None and not any(stage == s.stage for c in manifest.chains for s in c.stages):
        raise KdgatError(f"no stage {stage!r} in this sweep; its stages are {', '.join(_stage_names(manifest))}")
    attempts = attempts or {}
    guards, ids = [], []
    for chain in manifest.chains:
        tries = attempts.get(chain.num, [])
        guards += [g for g in [chain.guard, *(a.guard for a in tries)] if g and g not in guards]
        chosen = {s.stage for s in chain.stages} if stage is None else {stage}
        for s in chain.stages:  # in dependency order
            if stage is not None and set(s.needs) & chosen:
                chosen.add(s.stage)
            if s.stage in chosen and s.submitted:
                ids += [s.job_id, *(a.jobs.get(s.stage) for a in tries)]
    return guards, [j for j in dict.fromkeys(ids) if j]


def log_path(manifest: Manifest, stage: str, chain: int | None) -> Path:
    if stage not in _stage_names(manifest):
        raise KdgatError(f"no stage {stage!r} in this sweep; its stages are {', '.join(_stage_names(manifest))}")
    matches = [s for c in manifest.chains for s in c.stages
               if s.stage == stage and (chain is None or c.num == chain) and s.log != "-"]
    if not matches:
        raise KdgatError(f"stage {stage} was not submitted" + (f" in chain {chain}" if chain is not None else "")
                         + " (already trained, or attached to another sweep's job)")
    if len(matches) > 1:
        raise KdgatError(f"stage {stage} is in {len(matches)} chains: choose one with --chain N")
    return Path(matches[0].log)


def _stage_names(manifest: Manifest) -> list[str]:
    return list(dict.fromkeys(s.stage for c in manifest.chains for s in c.stages))
