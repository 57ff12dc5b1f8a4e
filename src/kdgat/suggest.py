"""Requests learned from a finished sweep: `kdgat status --suggest > my_resources.yaml`, then
`python train.py ... resources_file=my_resources.yaml` asks each stage for what it used, with a margin.

The file is an ordinary config fragment (`pipeline.stages.<name>.resources`), applied as each stage's own
request where the command line left it unset: a per-stage override on the command line still wins.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

from hydra_plugins.kdgat_chain_launcher import format_memory, format_walltime, slurm_seconds
from kdgat.errors import KdgatError

MARGIN = 1.5  # half again what the stage used


def with_margin(used_mb: float | None, used_seconds: float | None) -> dict[str, str]:
    """The requests (`mem`, `walltime`) for a job that used this much: half again as margin, memory rounded up
    to a whole G and walltime to a whole hour, in the forms sbatch reads. An unknown use (None or 0) asks nothing."""
    request = {}
    if used_mb:
        request["mem"] = format_memory(max(1, math.ceil(used_mb * MARGIN / 1024)) * 1024)
    if used_seconds:
        request["walltime"] = format_walltime(max(1, math.ceil(used_seconds * MARGIN / 3600)) * 3600)
    return request


def suggestions(rows: list[Any]) -> dict[str, dict[str, str]]:
    """Per stage, from its completed jobs (`kdgat.status` rows with job infos): the largest use across
    chains, with the margin of `with_margin`."""
    out: dict[str, dict[str, float]] = {}
    for stage, info in rows:
        if info.state != "COMPLETED":
            continue
        used = out.setdefault(stage, {"mem": 0.0, "seconds": 0.0})
        used["mem"] = max(used["mem"], info.max_rss_mb or 0.0)
        used["seconds"] = max(used["seconds"], float(slurm_seconds(info.elapsed) or 0))
    requests = {}
    for stage, used in out.items():
        request = with_margin(used["mem"], used["seconds"])
        if request:
            requests[stage] = request
    return requests


def as_yaml(requests: dict[str, dict[str, str]], sweep: Path) -> str:
    import yaml

    body = yaml.safe_dump({"pipeline": {"stages": {s: {"resources": r} for s, r in requests.items()}}},
                          sort_keys=False, default_style=None)
    return (f"# What each stage of {sweep} used, half again as margin (memory to a whole G, walltime to a whole\n"
            f"# hour). Apply it: python train.py ... resources_file=<this file>\n{body}")


def apply(cfg: Any, command_path: Callable[[object], str]) -> None:
    """Fill each stage's unset per-stage request from the config's `resources_file`, then forget the file (the
    frozen config of a launched chain holds the result, so its stage jobs never read the file again).
    `command_path` (kdgat.config's) makes the file's name absolute where the command was typed."""
    import yaml
    from omegaconf import OmegaConf, open_dict

    name = cfg.get("resources_file")
    if not name:
        return
    path = Path(command_path(name))
    try:
        stages = (yaml.safe_load(path.read_text()) or {}).get("pipeline", {}).get("stages", {})
    except (OSError, yaml.YAMLError, AttributeError) as err:
        raise KdgatError(f"resources_file={name}: cannot read it ({type(err).__name__}): write it with "
                         "kdgat status --suggest > FILE") from None
    for stage, node in stages.items():
        if stage not in cfg.pipeline.stages:
            continue
        own = cfg.pipeline.stages[stage].resources
        for key, value in ((node or {}).get("resources") or {}).items():
            if key in own.keys() and OmegaConf.is_missing(own, key):  # (`in` alone misses a ??? key)
                own[key] = value
    with open_dict(cfg):
        cfg.resources_file = None
