"""kdgat.api: the command line's overrides from Python, errors raised rather than exits."""

from pathlib import Path

import pytest
import yaml

from hydra_plugins.kdgat_chain_launcher import LaunchError
from kdgat import api
from kdgat.errors import KdgatError

TINY = ("dataset.synthetic.frames=20000", "train.max_epochs=1", "progress=false")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KDGAT_DATA", str(tmp_path / "data"))
    return tmp_path


def test_compose_takes_custom_presets_as_the_command_line_does():
    cfg = api.compose("pipeline=custom", "pipeline.presets=[autoencoder,gat_normal,fusion]")
    assert list(cfg.pipeline.stages) == ["autoencoder", "gat_normal", "fusion"]
    assert list(cfg.pipeline.stages.fusion.needs) == ["autoencoder", "gat_normal"]


def test_compose_takes_each_override_as_an_argument(workdir):
    cfg = api.compose("pipeline=student", "dataset=hcrl_sa")
    assert cfg.pipeline.name == "student" and cfg.dataset.name == "hcrl_sa"
    assert list(cfg.pipeline.stages) == ["autoencoder", "distillation"]


def test_a_dry_run_prints_the_plan_and_returns_nothing(workdir, capsys):
    assert api.submit("pipeline=teacher", "dataset=synthetic", dry_run=True) is None
    out = capsys.readouterr().out
    assert "would submit 3 jobs in 3 submissions" in out and "#SBATCH --dependency='afterok:<autoencoder>'" in out
    assert not list(workdir.rglob("manifest.json"))


def test_bad_input_raises_instead_of_exiting(workdir):
    with pytest.raises(LaunchError, match="walltime='abc' is not a walltime"):
        api.submit("resources.walltime=abc", dry_run=True)
    with pytest.raises(KdgatError, match="unknown pipeline 'nope'"):
        api.run("pipeline=nope")


@pytest.mark.slow
def test_run_trains_here_and_returns_each_stages_metrics(workdir):
    metrics = api.run("pipeline=curriculum_only", *TINY)
    assert list(metrics) == ["autoencoder", "curriculum"]
    assert 0.0 <= metrics["curriculum"]["splits"]["val"]["f1"] <= 1.0


@pytest.mark.slow
def test_submit_locally_runs_the_chain_and_returns_its_manifest(workdir):
    manifest = api.submit("pipeline=curriculum_only", *TINY, cluster="local")
    assert manifest.cluster == "local"
    assert [(s.stage, s.action) for s in manifest.chains[0].stages] == [("autoencoder", "submitted"),
                                                                         ("curriculum", "submitted")]
    frozen = yaml.safe_load((Path(manifest.sweep_dir) / "0" / "config.yaml").read_text())
    shown = frozen["pipeline"]["stages"]["curriculum"]["effective_resources"]  # the planner's request
    record = manifest.chains[0].stages[1]
    assert (shown["walltime"], shown["mem"], shown["cpus"]) == (record.walltime, record.mem, record.cpus)
    again = api.submit("pipeline=curriculum_only", *TINY, cluster="local")  # both trained: nothing to do
    assert [s.action for s in again.chains[0].stages] == ["done", "done"]
