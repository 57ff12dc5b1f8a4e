"""kdgat's config tree composed as train.py composes it: pipelines, resources, custom lists."""


import pytest

from conftest import compose, run_train
from hydra_plugins.kdgat_chain_launcher import PlanError, plan_stages
from kdgat.config import group_options
from kdgat.errors import KdgatError
from kdgat.stages.registry import STAGES

# The pipelines as the README lists them: stages in order, with walltime / memory per stage.
PIPELINES = {
    "teacher": [("autoencoder", "08:00:00", "96G"), ("curriculum", "12:00:00", "128G"), ("fusion", "10:00:00", "96G")],
    "student": [("autoencoder", "06:00:00", "64G"), ("distillation", "08:00:00", "96G")],
    "supervised_only": [("autoencoder", "08:00:00", "96G"), ("gat_normal", "10:00:00", "128G"),
                        ("fusion", "10:00:00", "96G")],
    "curriculum_only": [("autoencoder", "08:00:00", "96G"), ("curriculum", "12:00:00", "128G")],
}


def pipeline_of(cfg):
    """What the launcher plans from: the pipeline node and the global resources."""
    return cfg.pipeline, cfg.resources


def test_groups_hold_exactly_the_spec_names():
    assert group_options("pipeline") == ["curriculum_only", "custom", "student", "supervised_only", "teacher"]
    assert group_options("dataset") == ["hcrl_ch", "hcrl_sa", "set_01", "set_02", "set_03", "set_04", "synthetic"]


def test_defaults_are_synthetic_teacher():
    cfg = compose()
    assert (cfg.dataset.name, cfg.pipeline.name) == ("synthetic", "teacher")


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
def test_named_pipelines_match_the_spec(pipeline):
    stages = plan_stages(*pipeline_of(compose(f"pipeline={pipeline}")))
    assert [(s.name, s.resources.walltime, s.resources.mem) for s in stages] == PIPELINES[pipeline]
    assert all((s.resources.cpus, s.resources.gpus) == (16, 1) for s in stages)


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
def test_named_pipelines_need_what_their_presets_read(pipeline):
    cfg = compose(f"pipeline={pipeline}")
    presets = {name: st.preset for name, st in cfg.pipeline.stages.items()}
    for name, stage in cfg.pipeline.stages.items():
        needed = {presets[n] for n in stage.needs}
        readable = {p for makers in STAGES[stage.preset].reads.values() for p in makers}
        assert needed <= readable, f"{pipeline}.{name} needs {needed}, reads only {readable}"
        # Every input this pipeline itself trains must be waited for.
        for kind, makers in STAGES[stage.preset].reads.items():
            made_here = [p for p in makers if p in presets.values() and kind != "teacher"]
            if made_here:
                assert made_here[0] in needed, f"{pipeline}.{name} does not wait for its {kind}"


def test_precedence_builtin_pipeline_global_stage():
    # student's autoencoder: the pipeline's 6h/64G beats the preset's 8h/96G ...
    stages = {s.name: s for s in plan_stages(*pipeline_of(compose("pipeline=student")))}
    assert (stages["autoencoder"].resources.walltime, stages["autoencoder"].resources.mem) == ("06:00:00", "64G")
    # ... a global override beats both, for every stage ...
    cfg = compose("pipeline=student", "resources.walltime=10:00:00", "resources.mem=200G", "resources.cpus=4",
                  "resources.gpus=0")
    for s in plan_stages(*pipeline_of(cfg)):
        assert (s.resources.walltime, s.resources.mem, s.resources.cpus, s.resources.gpus) == ("10:00:00", "200G", 4, 0)
    # ... and a per-stage override beats the global one, for that stage only.
    cfg = compose("pipeline=teacher", "resources.mem=96G", "pipeline.stages.curriculum.resources.mem=192G",
                  "pipeline.stages.fusion.resources.gpus=0", "pipeline.stages.fusion.resources.partition=cpu")
    stages = {s.name: s for s in plan_stages(*pipeline_of(cfg))}
    assert [stages[n].resources.mem for n in ("autoencoder", "curriculum", "fusion")] == ["96G", "192G", "96G"]
    assert (stages["fusion"].resources.gpus, stages["fusion"].resources.partition) == (0, "cpu")
    assert stages["curriculum"].resources.partition is None


def test_integer_walltime_override_is_refused():
    cfg = compose("pipeline.stages.autoencoder.resources.walltime=36000", resolve=False)
    with pytest.raises(PlanError, match="quote it"):
        plan_stages(*pipeline_of(cfg))


def test_custom_list_becomes_stages_ordered_by_what_they_read():
    cfg = compose("pipeline=custom", "dataset=hcrl_sa",
                  "pipeline.presets=[fusion,autoencoder_hcrl_sa,curriculum,distillation_hcrl_sa_scale_0.25]",
                  "pipeline.stages.fusion.resources.mem=1G")
    stages = plan_stages(*pipeline_of(cfg))
    assert [s.name for s in stages] == ["autoencoder", "curriculum", "fusion", "distillation_scale_0_25"]
    by_name = {s.name: s for s in stages}
    assert by_name["fusion"].needs == ("autoencoder", "curriculum")
    assert by_name["distillation_scale_0_25"].needs == ("curriculum",)
    assert cfg.pipeline.stages.distillation_scale_0_25.scale == 0.25
    assert by_name["fusion"].resources.mem == "1G"
    assert by_name["curriculum"].resources.walltime == "12:00:00"


@pytest.mark.parametrize("overrides, message", [
    (["pipeline=custom"], "needs its stages"),
    (["pipeline=custom", "pipeline.presets=[]"], "non-empty list"),
    (["pipeline=custom", "pipeline.presets=[autoencoder,autoencoder]"], "twice"),
    (["pipeline=custom", "pipeline.presets=[vgae]"], "unknown stage preset 'vgae'"),
    (["pipeline=custom", "pipeline.presets=[gat_normal_set_09]"], "named for dataset set_09, but dataset=synthetic"),
    (["pipeline=custom", "dataset=set_01", "pipeline.presets=[autoencoder_hcrl_sa]"], "dataset=set_01"),
    (["pipeline=custom", "pipeline.presets=[distillation_scale_0.3]"], "scale 0.3"),
    (["pipeline=teacher", "pipeline.presets=[autoencoder]"], "autoencoder appears more than once"),
    (["pipeline=teachr"], "unknown pipeline 'teachr'; choose one of: curriculum_only, custom"),
    (["dataset=set_09"], "unknown dataset 'set_09'"),
])
def test_bad_command_lines_are_one_clear_error(overrides, message):
    with pytest.raises(KdgatError, match=message):
        compose(*overrides)


def test_data_path_follows_kdgat_data_and_is_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert compose().dataset.path == f"{tmp_path}/data/synthetic"
    assert compose().paths.artifacts == f"{tmp_path}/experimentruns"
    monkeypatch.setenv("KDGAT_DATA", str(tmp_path))
    assert compose("dataset=set_02").dataset.path == f"{tmp_path}/set_02"


def test_cfg_job_shows_merged_resources_without_importing_torch(tmp_path, torch_probe):
    out = run_train("pipeline=teacher", "dataset=hcrl_sa", "resources.mem=200G",
                    "pipeline.stages.fusion.resources.walltime=01:00:00", "--cfg", "job", "--resolve",
                    cwd=tmp_path, env=torch_probe, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "TORCH_IMPORTED=False" in out.stderr
    text = out.stdout
    assert text.count("mem: 200G") == 4  # three stages and the global node
    assert "walltime: 01:00:00" in text and "walltime: '12:00:00'" in text


def test_train_py_rejects_unknown_pipeline_in_one_line(tmp_path):
    out = run_train("pipeline=nope", cwd=tmp_path, timeout=60)
    assert out.returncode != 0
    assert out.stderr.strip().splitlines() == [
        "kdgat: error: unknown pipeline 'nope'; choose one of: curriculum_only, custom, student, supervised_only, teacher"]
    assert "Traceback" not in out.stderr
