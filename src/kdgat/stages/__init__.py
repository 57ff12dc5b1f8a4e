"""The five training stages, one module each; `run_stage` runs one by name.

Every stage follows one contract (kdgat.stages.common): refuse to start when
an input is missing, train with checkpoints, then write the model, the
resolved config, metrics.json and figures, and last the completion marker.
"""

from __future__ import annotations

from typing import Any


def runner(preset: str):
    """The function that trains `preset` (modules are imported only when a stage runs)."""
    import importlib

    module = {"autoencoder": "autoencoder", "gat_normal": "classifier", "curriculum": "classifier",
              "fusion": "fusion", "distillation": "distillation"}[preset]
    return getattr(importlib.import_module(f"kdgat.stages.{module}"), preset)


def run_stage(cfg: Any, name: str, data: Any) -> dict:
    from kdgat.stages.common import execute

    return execute(cfg, name, data, runner(cfg.pipeline.stages[name].preset))
