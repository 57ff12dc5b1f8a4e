"""`kdgat track sync [SWEEP_DIR]`: complete the MLflow runs of finished stages that tracking could not send.

A stage whose tracking failed (server down, store locked, a store refused on a
network filesystem) still wrote all its files, and its pointer says its run is
not complete. Sync opens or continues each such run and fills in from the
files what the run lacks (kdgat.tracking.runs.complete), so running it twice
sends nothing twice. It finds the stages of a sweep's chains, or, given any
other folder (`paths.artifacts`, for runs without a sweep), every stage under it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kdgat.tracking.record import COMPLETE, POINTER, read_pointer, write_pointer
from kdgat.tracking.settings import unsafe_store


@dataclass
class Synced:
    stage_dir: Path
    run_id: str | None
    outcome: str  # "sent", "already complete", or why it failed
    chain: int | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in ("sent", "already complete")


def _finished(stage_dir: Path) -> bool:
    from kdgat.artifacts import StageArtifacts

    return StageArtifacts(stage="", preset="", dir=stage_dir, fingerprint=stage_dir.name).done()


def finished_stages(path: Path) -> list[tuple[int | None, Path, bool]]:
    """(chain number, stage folder, whether its chain is all finished) of every finished stage with a pointer."""
    from kdgat.report import gather
    from kdgat.sweeps import is_sweep

    if is_sweep(path):
        rows = gather(path, lookup=lambda ids: {})  # files only: SLURM's view adds nothing here
        chains = {r.job: all(x.done for x in rows if x.job == r.job) for r in rows}
        found, seen = [], set()
        for r in rows:
            if r.done and r.artifacts not in seen and (r.artifacts / POINTER).is_file():
                seen.add(r.artifacts)
                found.append((r.job, r.artifacts, chains[r.job]))
        return found
    return [(None, p.parent, False) for p in sorted(path.rglob(POINTER))
            if p.parent.name != "latest" and _finished(p.parent)]


def sync(path: Path, uri: str | None = None) -> list[Synced]:
    """Complete every finished stage's run under `path`; `uri` sends them to another store than they name."""
    from kdgat.tracking import runs

    out = []
    for chain, stage_dir, chain_done in finished_stages(path):
        pointer = read_pointer(stage_dir)
        if uri and uri != pointer.get("uri"):  # the run ids belong to the old store
            pointer = {**pointer, "uri": uri, "artifact_location": None, "state": "pending",
                       "experiment_id": None, "parent_run_id": None, "run_id": None}
        if pointer.get("state") == COMPLETE:
            out.append(Synced(stage_dir, pointer.get("run_id"), "already complete", chain))
            continue
        unsafe = unsafe_store(pointer["uri"])
        if unsafe:
            out.append(Synced(stage_dir, None, f"failed: {unsafe}; or send it elsewhere with --uri", chain))
            continue
        try:
            client = runs.client_for(pointer)
            pointer = runs.open_run(client, pointer)
            write_pointer(stage_dir, pointer)
            write_pointer(stage_dir, runs.complete(client, pointer, stage_dir, ok=True, chain_done=chain_done))
            out.append(Synced(stage_dir, pointer["run_id"], "sent", chain))
        except Exception as err:
            write_pointer(stage_dir, {**pointer, "error": runs.describe(err)})
            out.append(Synced(stage_dir, pointer.get("run_id"), f"failed: {runs.describe(err)}", chain))
    return out
