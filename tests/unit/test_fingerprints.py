"""Golden fingerprints: configs hash exactly as they did before the stage registry (issue 11), so no
finished stage is trained again because its preset moved from YAML to Python.

The raw data's identity is fixed here (it depends on the files) and the student's teacher is a stand-in;
everything else is the real config tree. A changed value means every user's finished stages would be
retrained: change it only on purpose, and say so in the README.
"""

from pathlib import Path

import pytest

from conftest import compose
from kdgat import artifacts

GOLDEN = {
    ("pipeline=teacher",): {"autoencoder": "95c5c021e84ed4dd", "curriculum": "27d0d0c2d22dd656",
                            "fusion": "d24335ba5611bdc6"},
    ("pipeline=teacher", "dataset=hcrl_sa", "seed=3"): {"autoencoder": "2739efe81eb15c7f",
                                                        "curriculum": "2a5b8e30ef913b4e", "fusion": "a2d26fea3adfebe4"},
    ("pipeline=student",): {"autoencoder": "539f684c96675a95", "distillation": "93c90c9fc1e1afd2"},
    ("pipeline=supervised_only", "dataset=set_02"): {"autoencoder": "67b2729759e0c335",
                                                     "gat_normal": "3a20627e4d3962b3", "fusion": "cb5afaaa43f7a49c"},
    ("pipeline=curriculum_only",): {"autoencoder": "95c5c021e84ed4dd", "curriculum": "27d0d0c2d22dd656"},
    ("pipeline=custom", "pipeline.presets=[autoencoder,gat_normal,fusion,distillation_scale_0.25]"): {
        "autoencoder": "95c5c021e84ed4dd", "gat_normal": "8d72cc749cc23f0e", "fusion": "239e4bbff2171656",
        "distillation_scale_0_25": "8d7cefd855efba3b"},
    ("pipeline=teacher", "pipeline.stages.autoencoder.lr=0.01", "models.gat.teacher.hidden=32",
     "train.batch_size=32", "resources.mem=10G"): {"autoencoder": "22c626bd83ecb544",
                                                   "curriculum": "8fe0f93b8c49b930", "fusion": "7fb716578782d1d4"},
}


@pytest.fixture
def fixed_data(monkeypatch):
    monkeypatch.setattr(artifacts, "data_key", lambda cfg: "DATAKEY")
    monkeypatch.setattr(artifacts, "trained_elsewhere", lambda cfg, reader, kind, makers: artifacts.StageArtifacts(
        stage=makers[0], preset=makers[0], dir=Path("/x"), fingerprint="TEACHERFP"))


@pytest.mark.parametrize("overrides", list(GOLDEN), ids=lambda o: " ".join(o))
def test_fingerprints_are_those_of_the_yaml_presets(fixed_data, overrides):
    cfg = compose(*overrides)
    assert {name: artifacts.stage_artifacts(cfg, name).fingerprint for name in cfg.pipeline.stages} == \
        GOLDEN[overrides]


def test_resources_and_the_launchers_keys_never_enter_a_fingerprint(fixed_data):
    base = compose("pipeline=teacher")
    moved = compose("pipeline=teacher", "resources.cpus=2", "pipeline.stages.fusion.resources.mem=1G",
                    "pipeline.stages.fusion.uses_gpus=2", "pipeline.stages.curriculum.needs=[autoencoder]")
    assert [artifacts.stage_artifacts(moved, n).fingerprint for n in moved.pipeline.stages] == \
        [artifacts.stage_artifacts(base, n).fingerprint for n in base.pipeline.stages]
