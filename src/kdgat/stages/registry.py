"""The stages kdgat trains: adding one is one entry in STAGES (its settings, what it reads, which model,
which function trains it, its default resources).

Each stage's settings are a torch-free dataclass; hydra-zen builds the
`preset` config group from them (kdgat.stages.presets: `builds(..., populate_full_signature=True)`),
so a preset's config and the code that reads it cannot drift apart. Pipelines
and datasets stay YAML (conf/), where users write their own; a pipeline picks
a stage with `- /preset@stages.<name>: <preset>`. A user's own YAML preset in
`--config-dir` can extend a stored one under a name of its own (a stored name is refused,
kdgat.config.refuse_shadowed_presets): `defaults: [autoencoder, _self_]`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from hydra_plugins.kdgat_chain_launcher import StageNode

# Every stage's default request unless its entry says otherwise; the walltime and memory are per stage.
DEFAULT_RESOURCES = {"cpus": 16, "gpus": 1, "partition": None}
ALL_GPUS = "all"
# A stage's settings: a dataclass whose fields and defaults are its preset's keys (hydra-zen builds the preset
# from its signature). Nothing compares or prints one, so it gets no __eq__ or __repr__, which every command
# would otherwise spend time generating.
settings = dataclass(repr=False, eq=False)


@settings
class Autoencoder(StageNode):
    """VGAE trained on normal windows only; its reconstruction error scores anomalies."""

    preset: str = "autoencoder"
    size: str = "teacher"  # teacher or student model sizes (the config's `models.vgae`)
    epochs: int = "${oc.select:dataset.epochs.autoencoder,100}"  # type: ignore[assignment]
    lr: float = 0.001


@settings
class GatNormal(StageNode):
    """GAT classifier trained by plain cross-entropy on every training window."""

    preset: str = "gat_normal"
    size: str = "teacher"
    epochs: int = "${oc.select:dataset.epochs.gat_normal,100}"  # type: ignore[assignment]
    lr: float = 0.001


@settings
class Curriculum(StageNode):
    """The same GAT, trained on all attacks plus the normals the VGAE finds hardest: each epoch sees
    every attack window plus the normal windows the VGAE scores as most anomalous, normal:attack rising
    linearly from start_ratio to end_ratio."""

    preset: str = "curriculum"
    size: str = "teacher"
    epochs: int = "${oc.select:dataset.epochs.curriculum,100}"  # type: ignore[assignment]
    lr: float = 0.001
    start_ratio: int = 1
    end_ratio: int = 10


@settings
class Fusion(StageNode):
    """DQN agent that weighs the GAT's probability against the VGAE's score, in one-step episodes
    (gamma = 0) on the validation split's outputs of both."""

    preset: str = "fusion"
    steps: int = "${oc.select:dataset.epochs.fusion_steps,4000}"  # type: ignore[assignment]
    lr: float = 0.001
    # Reward = +1 / -1 for a right / wrong decision, plus margin x the fused score's signed distance from 0.5
    # (in [-margin, margin]): among the weights that all decide right on a validation window, the agent
    # prefers the one that is confidently right, instead of picking among equal rewards at random.
    margin: float = 0.5
    # Reward - prior x |alpha - the weight of the input better on validation|: where the validation windows do
    # not show that mixing in the weaker input pays, the agent keeps to the stronger one.
    prior: float = 0.1
    batch_size: int = 256
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05


@settings
class Distillation(StageNode):
    """Student GAT distilled from the teacher GAT of the same dataset:
    loss = alpha * T^2 * KL(teacher/T || student/T) + (1 - alpha) * CE."""

    preset: str = "distillation"
    size: str = "student"
    scale: float = 0.5  # 0.25, 0.5 or 0.75: multiplies the student's hidden width and embedding
    # Which trained teacher GAT to distil: the curriculum GAT of the teacher pipeline, or gat_normal.
    teacher: str = "curriculum"
    epochs: int = "${oc.select:dataset.epochs.distillation,100}"  # type: ignore[assignment]
    lr: float = 0.001
    temperature: float = 4.0
    alpha: float = 0.7  # weight of the teacher's softened targets against the labels


@dataclass(frozen=True, eq=False)
class StageKind:
    """One trainable stage."""

    settings: type  # its settings dataclass: the preset's config, built by hydra-zen
    train: str  # "module:function" that trains it, given a kdgat.stages.common.StageRun
    model: str | None  # the key of the config's `models` node it sizes its model from
    # The artifacts it reads, each with the presets that can make it, first choice first. "teacher" is
    # chosen by the stage's `teacher` setting instead, and usually trained by another pipeline.
    reads: dict[str, tuple[str, ...]] = field(default_factory=dict)
    walltime: str = "08:00:00"
    mem: str = "96G"
    # GPUs its training uses: "all", data-parallel over every GPU its job is given, one process each
    # (kdgat.distributed); or a number (asking for more is a warning at submit).
    uses_gpus: int | str = ALL_GPUS

    @property
    def data_parallel(self) -> bool:
        return self.uses_gpus == ALL_GPUS

    def resources(self) -> dict[str, Any]:
        return {"walltime": self.walltime, "mem": self.mem, **DEFAULT_RESOURCES}

    def trainer(self) -> Callable[[Any], dict[str, Any]]:
        """The training function, imported only when a stage runs (it imports torch)."""
        module, _, name = self.train.partition(":")
        return getattr(importlib.import_module(module), name)


STAGES: dict[str, StageKind] = {
    "autoencoder": StageKind(Autoencoder, "kdgat.stages.autoencoder:autoencoder", model="vgae"),
    "gat_normal": StageKind(GatNormal, "kdgat.stages.classifier:gat_normal", model="gat",
                            walltime="10:00:00", mem="128G"),
    "curriculum": StageKind(Curriculum, "kdgat.stages.classifier:curriculum", model="gat",
                            reads={"vgae": ("autoencoder",)}, walltime="12:00:00", mem="128G"),
    # The DQN agent is small (a few thousand parameters, trained on the validation split's two scores): one
    # process, one GPU at most.
    "fusion": StageKind(Fusion, "kdgat.stages.fusion:fusion", model=None,
                        reads={"vgae": ("autoencoder",), "gat": ("curriculum", "gat_normal")}, walltime="10:00:00",
                        uses_gpus=1),
    "distillation": StageKind(Distillation, "kdgat.stages.distillation:distillation", model="gat",
                              reads={"teacher": ("curriculum", "gat_normal")}),
}
PRESETS = tuple(STAGES)


def kind(preset: str) -> StageKind:
    try:
        return STAGES[preset]
    except KeyError:
        raise ValueError(f"unknown stage preset {preset!r}; presets are {', '.join(PRESETS)}") from None


def scale_gat(base: dict, scale: float = 1.0) -> dict:
    """GAT sizes with hidden width and embedding multiplied by `scale` (the student's 0.25, 0.5, 0.75)."""
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    return {**base, "hidden": max(1, round(base["hidden"] * scale)),
            "embedding": max(1, round(base["embedding"] * scale))}
