"""`kdgat status / cancel / logs`: a submitted sweep told in words, from its manifest and SLURM.

The launcher's manifest.json says which job runs which stage of which chain;
kdgat.slurm says what became of each job. Everything here reads; `cancel`
is the only thing that acts.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from kdgat.errors import KdgatError

FAILED_STATES = {"FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "PREEMPTED"}


def find_sweep(sweep: str | None, root: Path = Path("multirun")) -> Path:
    """The sweep directory given, or the newest one under ./multirun with a manifest."""
    if sweep:
        path = Path(sweep)
        if not (path / "manifest.json").is_file():
            raise KdgatError(f"{path} holds no manifest.json: not a sweep submitted with hydra/launcher=kdgat_chain")
        return path
    return newest_sweep(root, lambda p: (p / "manifest.json").is_file(), "submitted sweep")


def newest_sweep(root: Path, accepts: Callable[[Path], bool], what: str) -> Path:
    """The most recently launched of the sweeps under root that `accepts` takes."""
    sweeps = [p for p in root.glob("*/*") if p.is_dir() and accepts(p)]
    if not sweeps:
        raise KdgatError(f"no {what} under {root.absolute()}; give its directory")
    return max(sweeps, key=_started)


def _started(sweep: Path) -> float:
    """When the sweep was launched; not the folder's own time, which writing a report into it changes."""
    for name in ("multirun.yaml", "manifest.json"):
        if (sweep / name).is_file():
            return (sweep / name).stat().st_mtime
    return sweep.stat().st_mtime


def load_manifest(sweep: Path) -> dict[str, Any]:
    return json.loads((sweep / "manifest.json").read_text())


@dataclass
class Row:
    chain: int
    stage: str
    job_id: str
    state: str
    elapsed: str
    memory: str
    note: str


def _seconds(text: str) -> int | None:
    """SLURM's [D-]HH:MM:SS or MM:SS as seconds."""
    if not text or text in ("UNLIMITED", "INVALID"):
        return None
    days, _, rest = text.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    return (int(days or 0) * 24 + parts[0]) * 3600 + parts[1] * 60 + parts[2]


def suggestion(elapsed: str, used_mb: float | None) -> str:
    """Requests for the next run: what was used with half again as margin, rounded up."""
    out = []
    secs = _seconds(elapsed)
    if secs is not None:
        hours = max(1, math.ceil(secs * 1.5 / 3600))
        out.append(f"walltime={hours:02d}:00:00")
    if used_mb:
        out.append(f"mem={max(1, math.ceil(used_mb * 1.5 / 1024))}G")
    return ("next time " + " ".join(out)) if out else ""


SIGNALS = {9: "SIGKILL, as the out-of-memory killer sends: more memory?", 15: "SIGTERM", 6: "SIGABRT",
           11: "SIGSEGV"}


def _ending(info: Any) -> str:
    """How a job ended, in words: `exit 1`, or `killed by signal 9 (SIGKILL, ...)` when a step died of a signal."""
    if info.signal:
        return f"killed by signal {info.signal} ({SIGNALS.get(info.signal, 'see man 7 signal')})"
    return f"exit {info.exit_code.split(':')[0] or '?'}"


def describe(manifest: dict[str, Any], infos: dict[str, Any]) -> list[Row]:
    """One row per stage, with the reason a job waits or was cancelled in a user's words."""
    rows = []
    for chain in manifest["chains"]:
        by_stage = {s["stage"]: s for s in chain["stages"]}
        for s in chain["stages"]:
            if s["status"].startswith("skipped"):
                rows.append(Row(chain["num"], s["stage"], "-", "DONE", "", "",
                                "already trained; not submitted" + s["status"].partition(")")[2]))
                continue
            info = infos[s["job_id"]]
            note, memory = "", ""
            if info.state == "PENDING":
                waiting = [n for n in s.get("needs", []) if infos.get(by_stage[n]["job_id"]) is not None
                           and infos[by_stage[n]["job_id"]].state != "COMPLETED"]
                note = f"waiting for {', '.join(waiting)}" if waiting and "Depend" in info.reason \
                    else f"waiting: {info.reason or 'in the queue'}"
            elif info.state == "CANCELLED":
                culprits = [n for n in s.get("needs", []) if infos[by_stage[n]["job_id"]].state in FAILED_STATES]
                if culprits:
                    up = by_stage[culprits[0]]
                    upinfo = infos[up["job_id"]]
                    note = (f"cancelled because {culprits[0]} {upinfo.state.lower().replace('cancelled', 'was cancelled')}"
                            f" ({_ending(upinfo)}, see {up['log']})")
                else:
                    note = "cancelled"
            elif info.state in FAILED_STATES:
                note = f"{info.state.lower()} ({_ending(info)}, see {s['log']})"
            elif info.state == "COMPLETED":
                used = f"{info.max_rss_mb / 1024:.1f}G" if info.max_rss_mb is not None else "?"
                memory = f"{used} of {s['mem']}"
                note = f"used {info.elapsed} of {s['walltime']}; " + suggestion(info.elapsed, info.max_rss_mb)
            elif info.state == "GONE":
                note = "SLURM no longer knows this job (accounting off, and it ended over MinJobAge ago)"
            rows.append(Row(chain["num"], s["stage"], s["job_id"], info.state, info.elapsed, memory, note))
    return rows


def to_cancel(manifest: dict[str, Any], stage: str | None) -> list[str]:
    """The sweep's job ids, or those of `stage` and every stage that needs it, in each chain."""
    ids = []
    for chain in manifest["chains"]:
        chosen = {s["stage"] for s in chain["stages"]} if stage is None else {stage}
        for s in chain["stages"]:  # in dependency order
            if stage is not None and set(s.get("needs", [])) & chosen:
                chosen.add(s["stage"])
            if s["stage"] in chosen and s["status"] == "submitted":
                ids.append(s["job_id"])
    if stage is not None and not any(stage == s["stage"] for c in manifest["chains"] for s in c["stages"]):
        raise KdgatError(f"no stage {stage!r} in this sweep")
    return ids


def log_path(manifest: dict[str, Any], stage: str, chain: int | None) -> Path:
    matches = [s for c in manifest["chains"] for s in c["stages"]
               if s["stage"] == stage and (chain is None or c["num"] == chain) and s["log"] != "-"]
    if not matches:
        raise KdgatError(f"no submitted stage {stage!r}" + (f" in chain {chain}" if chain is not None else ""))
    if len(matches) > 1:
        raise KdgatError(f"stage {stage} is in {len(matches)} chains: choose one with --chain N")
    return Path(matches[0]["log"])
