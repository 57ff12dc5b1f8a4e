"""A stage's tracking process: `python -m kdgat.tracking.worker`, started by the stage job (kdgat.tracking.session).

It imports MLflow and talks to the store while the stage trains, so the stage job never waits for MLflow's import nor for
a slow server: the stage sends one JSON line per event on stdin and waits only
at its end, a bounded time, for the one-line answer to `finish`. At the first
failure (server down, store locked) it stops talking to the store for the rest
of the process; the stage's pointer then says what is missing, for `kdgat track
sync`.

Lines in:  {"op": "start", "key": STAGE_DIR}
           {"op": "epoch", "key": STAGE_DIR, "step": N, "values": {...}, "ts": MS}
           {"op": "finish", "key": STAGE_DIR, "ok": BOOL, "chain_done": BOOL}
Lines out: {"key": STAGE_DIR, "ok": BOOL, "run_id": ID or null, "error": TEXT or null}  (one per finish)
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from kdgat.tracking.record import read_pointer, write_pointer


def _quiet() -> None:
    """MLflow's and alembic's INFO lines (creating tables, ...) would fill every stage's log."""
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


class Worker:
    def __init__(self) -> None:
        self.broken: str | None = None  # why nothing more is sent, after the first failure
        self.runs: dict[str, tuple[Any, dict[str, Any]]] = {}  # stage dir -> (client, pointer)
        try:
            from kdgat.tracking import runs

            self.api = runs
            _quiet()
        except ImportError as err:
            self.broken = f"MLflow cannot be imported ({err}): install kdgat's dependencies, or set tracking=none"

    def fail(self, err: BaseException) -> None:
        self.broken = self.api.describe(err)

    def start(self, key: str) -> None:
        pointer = read_pointer(Path(key))
        if pointer is None:
            raise RuntimeError(f"no tracking pointer in {key}")
        client = self.api.client_for(pointer)
        pointer = self.api.open_run(client, pointer)
        write_pointer(Path(key), pointer)
        self.runs[key] = (client, pointer)

    def epoch(self, key: str, step: int, values: dict[str, float], ts: int) -> None:
        client, pointer = self.runs[key]
        self.api.log_epoch(client, pointer["run_id"], step, values, ts)

    def finish(self, key: str, ok: bool, chain_done: bool) -> dict[str, Any]:
        if self.broken is None and key in self.runs:
            client, pointer = self.runs.pop(key)
            try:
                write_pointer(Path(key), self.api.complete(client, pointer, Path(key), ok, chain_done))
                return {"key": key, "ok": True, "run_id": pointer["run_id"], "error": None}
            except Exception as err:
                self.fail(err)
        pointer = read_pointer(Path(key)) or {}
        if pointer:
            write_pointer(Path(key), {**pointer, "error": self.broken})
        return {"key": key, "ok": False, "run_id": pointer.get("run_id"), "error": self.broken}

    def handle(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        op, key = msg.get("op"), msg.get("key")
        if op == "finish":
            return self.finish(key, bool(msg.get("ok")), bool(msg.get("chain_done")))
        if self.broken is not None:
            return None
        try:
            if op == "start":
                self.start(key)
            elif op == "epoch" and key in self.runs:
                self.epoch(key, int(msg["step"]), msg["values"], int(msg["ts"]))
        except Exception as err:
            self.fail(err)
        return None


def main() -> None:
    worker = Worker()  # at the stage's own priority: a lower one starves it on a busy machine (tracking.wait_s)
    for line in sys.stdin:
        if not line.strip():
            continue
        reply = worker.handle(json.loads(line))
        if reply is not None:
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
