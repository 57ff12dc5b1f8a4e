"""The training stages, one module each; `run_stage` runs one by name.

Every stage follows one contract (kdgat.stages.common): refuse to start when
an input is missing, train with checkpoints, then write the model, the
resolved config, metrics.json and figures, and last the completion marker.
Which function trains which preset is kdgat.stages.registry's.
"""

from __future__ import annotations

from typing import Any


def run_stage(cfg: Any, name: str, data: Any) -> dict:
    from kdgat.stages.common import execute
    from kdgat.stages.registry import kind

    return execute(cfg, name, data, kind(cfg.pipeline.stages[name].preset).trainer())
