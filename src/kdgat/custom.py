"""Pipelines made of a list of stage presets: `pipeline=custom 'pipeline.presets=[autoencoder,gat_normal,fusion]'`,
or any pipeline YAML of a user's that holds `presets: [...]`.

Each entry becomes a stage composed like a named pipeline's, needing the
listed stages it reads. Entries may also be the original tool's names, dataset
and scale included: `distillation_hcrl_sa_scale_0.25` becomes stage
`distillation_scale_0_25` (a dot would break `pipeline.stages.<name>...`
overrides). On the command line the stages are added before Hydra composes
(so that per-stage overrides apply to them); wherever else the list is set (a
YAML file, the Python API), `complete` adds them to the composed config.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from kdgat.errors import KdgatError
from kdgat.stages.registry import PRESETS, STAGES

SCALES = (0.25, 0.5, 0.75)
_ENTRY = re.compile(rf"^(?P<preset>{'|'.join(PRESETS)})(?:_(?P<rest>.*))?$")
_SCALE = re.compile(r"^(?:(?P<dataset>.+)_)?scale_(?P<scale>\d+(?:[._]\d+)?)$")


@dataclass(frozen=True)
class PresetEntry:
    """One entry of a custom list: the stage it becomes."""

    stage: str
    preset: str
    dataset: str | None = None
    scale: float | None = None


def parse_entry(entry: str) -> PresetEntry:
    """`distillation_hcrl_sa_scale_0.25` -> stage `distillation_scale_0_25`, preset distillation."""
    m = _ENTRY.match(entry)
    if not m:
        raise KdgatError(f"unknown stage preset {entry!r}; presets are {', '.join(PRESETS)} "
                         f"(optionally followed by _<dataset> and, for distillation, _scale_<0.25|0.5|0.75>)")
    preset, rest = m["preset"], m["rest"]
    dataset = scale = None
    if rest:
        sm = _SCALE.match(rest)
        if sm:
            dataset, scale = sm["dataset"], float(sm["scale"].replace("_", "."))
        else:
            dataset = rest
    if scale is not None:
        if preset != "distillation":
            raise KdgatError(f"preset {entry!r}: only distillation takes a scale")
        if scale not in SCALES:
            raise KdgatError(f"preset {entry!r}: scale {scale} is not one of {', '.join(map(str, SCALES))}")
    stage = preset if scale is None else f"{preset}_scale_{str(scale).replace('.', '_')}"
    return PresetEntry(stage=stage, preset=preset, dataset=dataset, scale=scale)


def needs_within(entries: list[PresetEntry], teacher: str = "curriculum") -> dict[str, list[str]]:
    """Each entry's needs among the listed stages; inputs not listed are read from earlier runs."""
    by_preset: dict[str, str] = {}
    for e in entries:
        by_preset.setdefault(e.preset, e.stage)
    needs: dict[str, list[str]] = {}
    for e in entries:
        needs[e.stage] = []
        for kind, makers in STAGES[e.preset].reads.items():
            if kind == "teacher":
                makers = (teacher,)
            maker = next((by_preset[p] for p in makers if p in by_preset), None)
            if maker is not None:
                needs[e.stage].append(maker)
    return needs


def parse_list(presets: object) -> list[PresetEntry]:
    if not isinstance(presets, (list, tuple)) or not presets:
        raise KdgatError("pipeline.presets must be a non-empty list, such as '[autoencoder,gat_normal,fusion]' "
                         f"(presets: {', '.join(PRESETS)})")
    entries = [parse_entry(str(p)) for p in presets]
    seen: set[str] = set()
    for e in entries:
        if e.stage in seen:
            raise KdgatError(f"pipeline.presets lists stage {e.stage} twice")
        seen.add(e.stage)
    return entries


def stage_overrides(presets: object) -> list[str]:
    """The command-line overrides that add each listed preset as a stage of the pipeline."""
    entries = parse_list(presets)
    out: list[str] = []
    for e in entries:
        out.append(f"+preset@pipeline.stages.{e.stage}={e.preset}")
        if e.scale is not None:
            out.append(f"pipeline.stages.{e.stage}.scale={e.scale}")
    for stage, needs in needs_within(entries).items():
        if needs:
            out.append(f"pipeline.stages.{stage}.needs=[{','.join(needs)}]")
    return out


def complete(cfg: Any) -> None:
    """Add the stages of a pipeline's `presets` list that composition did not (a list from a YAML file or
    the API), and check the list against the dataset. A pipeline without `presets` is left as it is."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf, open_dict

    pipeline = cfg.get("pipeline")
    if pipeline is None or "presets" not in pipeline.keys():  # (`in` alone misses a key left at ???)
        return
    if OmegaConf.is_missing(pipeline, "presets"):
        raise KdgatError(f"pipeline={pipeline.get('name', 'custom')} needs its stages: add "
                         f"'pipeline.presets=[autoencoder,gat_normal,fusion]' (presets: {', '.join(PRESETS)})")
    entries = parse_list(OmegaConf.to_container(pipeline.presets, resolve=True))
    for e in entries:
        if e.dataset is not None and e.dataset != cfg.dataset.name:
            raise KdgatError(f"preset {e.stage} was named for dataset {e.dataset}, but dataset={cfg.dataset.name}")
    needs = needs_within(entries)
    with open_dict(cfg):
        for e in entries:
            if e.stage in pipeline.stages:
                continue  # added on the command line, with the user's per-stage overrides
            node = copy.deepcopy(ConfigStore.instance().load(f"preset/{e.preset}.yaml").node)
            node.needs = needs[e.stage]
            if e.scale is not None:
                node.scale = e.scale
            pipeline.stages[e.stage] = node
