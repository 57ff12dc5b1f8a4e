"""The stage presets and what each one reads: the one table of stage dependencies.

Named pipelines write their `needs` in YAML (tests check them against this
table); custom pipelines get theirs computed from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kdgat.errors import KdgatError

PRESETS = ("autoencoder", "gat_normal", "curriculum", "fusion", "distillation")
SCALES = (0.25, 0.5, 0.75)

# For each preset, the artifacts it reads, each with the presets that can make
# it, first choice first. Distillation's teacher is chosen by the stage's
# `teacher` setting; it is usually trained by another pipeline.
READS: dict[str, dict[str, tuple[str, ...]]] = {
    "autoencoder": {},
    "gat_normal": {},
    "curriculum": {"vgae": ("autoencoder",)},
    "fusion": {"vgae": ("autoencoder",), "gat": ("curriculum", "gat_normal")},
    "distillation": {"teacher": ("curriculum", "gat_normal")},
}


# The model each preset trains, a key of the config's `models` node.
MODEL_OF = {"autoencoder": "vgae", "gat_normal": "gat", "curriculum": "gat", "distillation": "gat"}


def scale_gat(base: dict, scale: float = 1.0) -> dict:
    """GAT sizes with hidden width and embedding multiplied by `scale` (the student's 0.25, 0.5, 0.75)."""
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    return {**base, "hidden": max(1, round(base["hidden"] * scale)),
            "embedding": max(1, round(base["embedding"] * scale))}


@dataclass(frozen=True)
class PresetEntry:
    """One entry of a custom list: the stage it becomes."""

    stage: str
    preset: str
    dataset: str | None = None
    scale: float | None = None


_ENTRY = re.compile(rf"^(?P<preset>{'|'.join(PRESETS)})(?:_(?P<rest>.*))?$")
_SCALE = re.compile(r"^(?:(?P<dataset>.+)_)?scale_(?P<scale>\d+(?:[._]\d+)?)$")


def parse_entry(entry: str, datasets: list[str]) -> PresetEntry:
    """`distillation_hcrl_sa_scale_0.25` -> stage `distillation_scale_0_25`, preset distillation.

    Accepts the original tool's names (preset, then dataset, then scale) and
    plain preset names. Stage names never hold dots, which would break
    `pipeline.stages.<name>...` overrides.
    """
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
    if dataset is not None and dataset not in datasets:
        raise KdgatError(f"preset {entry!r} names dataset {dataset!r}; datasets are {', '.join(datasets)}")
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
        for kind, makers in READS[e.preset].items():
            if kind == "teacher":
                makers = (teacher,)
            maker = next((by_preset[p] for p in makers if p in by_preset), None)
            if maker is not None:
                needs[e.stage].append(maker)
    return needs
