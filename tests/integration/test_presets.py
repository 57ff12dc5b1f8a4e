"""The `preset` group built by hydra-zen, and the same nodes loaded from the user's cache by a later command."""

import pickle

import cloudpickle
import pytest
from omegaconf import OmegaConf, ValidationError

from conftest import run_train
from kdgat.stages.presets import build_presets, cache_key
from kdgat.stages.registry import STAGES

# What a command that found the presets in its cache says about itself, printed at exit.
PROBE = ("import atexit, sys\n"
         "atexit.register(lambda: sys.stderr.write('ZEN_IMPORTED=%s\\n' % ('hydra_zen' in sys.modules)))\n")


@pytest.fixture
def cache_env(tmp_path):
    """A fresh cache folder (XDG_CACHE_HOME) and a probe that says whether hydra-zen was imported."""
    (tmp_path / "probe").mkdir()
    (tmp_path / "probe" / "sitecustomize.py").write_text(PROBE)
    return {"XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(tmp_path / "probe")}


def test_pickled_nodes_are_the_built_ones_with_their_types():
    built = build_presets()
    loaded = pickle.loads(cloudpickle.dumps(built))
    assert [e["name"] for e in loaded] == list(STAGES)
    for fresh, kept in zip(built, loaded):
        assert {k: v for k, v in kept.items() if k != "node"} == {k: v for k, v in fresh.items() if k != "node"}
        assert OmegaConf.to_yaml(kept["node"]) == OmegaConf.to_yaml(fresh["node"])
        assert OmegaConf.get_type(kept["node"]).__name__ == OmegaConf.get_type(fresh["node"]).__name__
        for node in (fresh["node"], kept["node"]):  # typed fields refuse a value of the wrong type
            with pytest.raises(ValidationError):
                node.lr = "abc"


def test_the_key_is_stable_and_names_the_cache_file():
    assert cache_key() == cache_key() and len(cache_key()) == 20


def test_a_later_command_loads_the_presets_without_hydra_zen_and_composes_the_same_config(tmp_path, cache_env):
    args = ("pipeline=supervised_only", "--cfg", "job", "--resolve")
    first = run_train(*args, cwd=tmp_path, env=cache_env, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "ZEN_IMPORTED=True" in first.stderr
    cached = list((tmp_path / "cache" / "kdgat").glob("presets-*.pickle"))
    assert [p.name for p in cached] == [f"presets-{cache_key()}.pickle"]

    second = run_train(*args, cwd=tmp_path, env=cache_env, timeout=120)
    assert second.returncode == 0, second.stderr
    assert "ZEN_IMPORTED=False" in second.stderr
    assert second.stdout == first.stdout and "_target_: kdgat.stages.registry.GatNormal" in second.stdout

    refused = run_train("pipeline.stages.curriculum.lr=abc", "--cfg", "job", cwd=tmp_path, env=cache_env, timeout=120)
    assert refused.returncode == 2 and "ZEN_IMPORTED=False" in refused.stderr
    assert ("kdgat: error: Error merging override pipeline.stages.curriculum.lr=abc: Value 'abc' of type 'str' could not "
            "be converted to Float") in refused.stderr


def test_a_damaged_cache_is_built_again(tmp_path, cache_env):
    folder = tmp_path / "cache" / "kdgat"
    folder.mkdir(parents=True)
    (folder / f"presets-{cache_key()}.pickle").write_bytes(b"half a pickle")
    out = run_train("--cfg", "job", cwd=tmp_path, env=cache_env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "ZEN_IMPORTED=True" in out.stderr and "preset: curriculum" in out.stdout
    assert len(pickle.loads((folder / f"presets-{cache_key()}.pickle").read_bytes())) == len(STAGES)


def test_an_unwritable_cache_costs_only_the_build(tmp_path, cache_env):
    (tmp_path / "cache").write_text("a file where the cache folder would be")
    out = run_train("--cfg", "job", cwd=tmp_path, env=cache_env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "ZEN_IMPORTED=True" in out.stderr and "preset: fusion" in out.stdout


def users_conf(tmp_path, preset_name: str):
    """A user's config dir: a preset extending kdgat's autoencoder under `preset_name`, and a pipeline using it."""
    conf = tmp_path / "conf"
    (conf / "preset").mkdir(parents=True)
    (conf / "pipeline").mkdir()
    (conf / "preset" / f"{preset_name}.yaml").write_text("defaults:\n  - autoencoder\n  - _self_\nlr: 0.01\n")
    (conf / "pipeline" / "mine.yaml").write_text(
        f"defaults:\n  - /preset@stages.autoencoder: {preset_name}\n  - _self_\nname: mine\nstages: {{}}\n")
    return conf


def test_a_users_preset_with_a_name_of_its_own_extends_a_stored_one(tmp_path):
    conf = users_conf(tmp_path, "my_autoencoder")
    out = run_train("--config-dir", str(conf), "pipeline=mine", "--cfg", "job", cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "lr: 0.01" in out.stdout and "_target_: kdgat.stages.registry.Autoencoder" in out.stdout
    typed = run_train("--config-dir", str(conf), "pipeline=mine", "pipeline.stages.autoencoder.lr=abc", "--cfg", "job",
                      cwd=tmp_path, timeout=120)
    assert typed.returncode == 2 and "could not be converted to Float" in typed.stderr


@pytest.mark.parametrize("how", ["--config-dir", "-cd", "--config-dir=", "hydra.searchpath"])
def test_a_users_preset_named_like_a_stored_one_is_refused_in_one_line(tmp_path, how):
    conf = users_conf(tmp_path, "autoencoder")  # `defaults: [autoencoder]` in it: Hydra would recurse forever
    args = {"--config-dir": ["--config-dir", str(conf)], "-cd": ["-cd", "conf"],
            "--config-dir=": [f"--config-dir={conf}"], "hydra.searchpath": [f"hydra.searchpath=[file://{conf}]"]}[how]
    out = run_train(*args, "pipeline=mine", "--cfg", "job", cwd=tmp_path, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [
        f"kdgat: error: {'conf' if how == '-cd' else conf}/preset/autoencoder.yaml has the name of kdgat's own "
        "autoencoder preset, which Hydra would merge it into; give it a name of its own (e.g. my_autoencoder.yaml), "
        "extend kdgat's with `defaults: [autoencoder, _self_]`, and pick it in a pipeline with "
        "`- /preset@stages.autoencoder: my_autoencoder`"]
