"""`kdgat status --suggest` and `resources_file=`: requests learned from what stages used."""

import yaml

from conftest import compose
from hydra_plugins.kdgat_chain_launcher import JobInfo
from kdgat.suggest import as_yaml, suggestions, with_margin


def test_the_largest_use_across_chains_with_half_again_as_margin():
    rows = [("vgae", JobInfo("1", "COMPLETED", elapsed="01:10:00", max_rss_mb=20 * 1024)),
            ("vgae", JobInfo("2", "COMPLETED", elapsed="00:10:00", max_rss_mb=30 * 1024)),
            ("gat", JobInfo("3", "FAILED", elapsed="00:01:00", max_rss_mb=99 * 1024)),  # not a measure of need
            ("gat", JobInfo("4", "RUNNING", elapsed="00:01:00"))]
    assert suggestions(rows) == {"vgae": {"mem": "45G", "walltime": "02:00:00"}}


def test_the_margin_rounds_up_to_a_whole_g_and_hour_and_skips_what_is_unknown():
    assert with_margin(1000.0, 60) == {"mem": "2G", "walltime": "01:00:00"}
    assert with_margin(None, 24 * 3600) == {"walltime": "1-12:00:00"}
    assert with_margin(0, None) == {}


def test_a_suggestion_file_applies_where_the_command_line_left_a_stage_unset(tmp_path, monkeypatch):
    text = as_yaml({"autoencoder": {"mem": "4G", "walltime": "01:00:00"}, "curriculum": {"mem": "5G"},
                    "gone": {"mem": "1G"}}, tmp_path)
    assert yaml.safe_load(text)["pipeline"]["stages"]["curriculum"] == {"resources": {"mem": "5G"}}
    (tmp_path / "mine.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    cfg = compose("pipeline=teacher", "resources_file=mine.yaml", "pipeline.stages.curriculum.resources.mem=7G")
    stages = cfg.pipeline.stages
    assert (stages.autoencoder.effective_resources.mem, stages.autoencoder.effective_resources.walltime) == \
        ("4G", "01:00:00")
    assert stages.curriculum.effective_resources.mem == "7G"  # the command line wins
    assert stages.fusion.effective_resources.mem == "96G" and cfg.resources_file is None
