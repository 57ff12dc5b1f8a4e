"""The artifact authority: fingerprints, where stages write, and missing inputs (no training here)."""

import pytest

from conftest import compose
from hydra_plugins.kdgat_chain_launcher import StageState
from kdgat import artifacts
from kdgat.data import synth
from kdgat.errors import KdgatError


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    synth.generate(root / "synthetic", frames=6000, seed=0, progress=False)
    return root


def cfg_for(data_root, tmp_path, *overrides):
    return compose(f"paths.data={data_root}", f"paths.artifacts={tmp_path}/runs", *overrides)


def fp(cfg, stage):
    return artifacts.stage_artifacts(cfg, stage).fingerprint


def test_stage_dir_is_dataset_stage_fingerprint(data_root, tmp_path):
    cfg = cfg_for(data_root, tmp_path)
    art = artifacts.stage_artifacts(cfg, "curriculum")
    assert art.dir == tmp_path / "runs" / "synthetic" / "curriculum" / art.fingerprint
    assert len(art.fingerprint) == 16 and not art.done()


def test_fingerprint_ignores_resources_paths_and_device(data_root, tmp_path):
    base = cfg_for(data_root, tmp_path)
    other = compose(f"paths.data={data_root}", f"paths.artifacts={tmp_path}/elsewhere", "resources.mem=1G",
                    "pipeline.stages.fusion.resources.walltime='5'", "train.device=cpu", "train.slow_epoch_s=3")
    for stage in ("autoencoder", "curriculum", "fusion"):
        assert fp(base, stage) == fp(other, stage)


def test_a_vgae_setting_changes_the_vgae_and_everything_downstream(data_root, tmp_path):
    base = cfg_for(data_root, tmp_path)
    changed = cfg_for(data_root, tmp_path, "pipeline.stages.autoencoder.lr=0.01")
    assert all(fp(base, s) != fp(changed, s) for s in ("autoencoder", "curriculum", "fusion"))
    gat_only = cfg_for(data_root, tmp_path, "pipeline.stages.curriculum.lr=0.01")
    assert fp(base, "autoencoder") == fp(gat_only, "autoencoder")
    assert fp(base, "curriculum") != fp(gat_only, "curriculum") and fp(base, "fusion") != fp(gat_only, "fusion")


def test_model_size_seed_and_preprocessing_are_fingerprinted(data_root, tmp_path):
    base = cfg_for(data_root, tmp_path)
    for override in ("models.vgae.teacher.latent=8", "seed=1", "preprocess.window=50", "train.max_epochs=1"):
        assert fp(base, "autoencoder") != fp(cfg_for(data_root, tmp_path, override), "autoencoder"), override
    # The GAT's size does not touch the VGAE.
    assert fp(base, "autoencoder") == fp(cfg_for(data_root, tmp_path, "models.gat.teacher.hidden=8"), "autoencoder")


def test_student_without_teacher_says_to_run_the_teacher_pipeline(data_root, tmp_path):
    cfg = cfg_for(data_root, tmp_path, "pipeline=student", "dataset.synthetic.frames=6000")
    with pytest.raises(KdgatError, match="run the teacher pipeline first: python train.py pipeline=teacher "
                                         "dataset=synthetic"):
        artifacts.stage_inputs(cfg, "distillation")


def test_missing_input_names_the_file_and_the_stage_that_makes_it(data_root, tmp_path):
    cfg = cfg_for(data_root, tmp_path)
    inputs = artifacts.stage_inputs(cfg, "fusion")
    assert set(inputs) == {"vgae", "gat"}
    assert (inputs["vgae"].stage, inputs["gat"].stage) == ("autoencoder", "curriculum")
    with pytest.raises(KdgatError, match=rf"needs {inputs['vgae'].model} \(vgae\), which stage autoencoder makes"):
        artifacts.require_finished("fusion", inputs)


def test_a_damaged_finished_input_is_refused_and_named_stale_for_the_launcher(data_root, tmp_path):
    cfg = cfg_for(data_root, tmp_path)
    vgae = artifacts.stage_artifacts(cfg, "autoencoder")
    vgae.dir.mkdir(parents=True)
    vgae.model.write_bytes(b"weights" * 100)
    vgae.metrics.write_text("{}\n")
    artifacts.finish(cfg, vgae, {}, {})
    inputs = {"vgae": vgae}
    artifacts.require_finished("curriculum", inputs)  # intact: accepted
    assert artifacts.stage_state(cfg, "autoencoder") == StageState(marker=str(vgae.marker))
    vgae.model.write_bytes(b"weighTs" * 100)  # same size, one byte changed
    with pytest.raises(KdgatError, match=r"stage autoencoder's files are damaged .*model.pt does not match"):
        artifacts.require_finished("curriculum", inputs)
    # the launcher keeps the real marker (to attach to a queued retrain) and learns why it must run again
    state = artifacts.stage_state(cfg, "autoencoder")
    assert state.marker == str(vgae.marker)
    assert "model.pt does not match its sha256" in state.stale


def test_the_launcher_learns_a_stage_could_never_run(data_root, tmp_path):
    """The student's distillation reads a teacher that no run has trained: said before anything is submitted."""
    cfg = cfg_for(data_root, tmp_path, "pipeline=student", "dataset.synthetic.frames=6000")
    state = artifacts.stage_state(cfg, "distillation")
    assert state.marker is None and "run the teacher pipeline first" in state.missing
    assert artifacts.stage_state(cfg, "autoencoder").missing is None
