"""The launcher's pure planning rules: resource formats, stage order, cycles."""

import pytest

from hydra_plugins.kdgat_chain_launcher import (
    PlanError,
    format_memory,
    format_walltime,
    parse_count,
    parse_memory,
    parse_walltime,
    plan_stages,
    resolve_request,
    slurm_megabytes,
    slurm_seconds,
)


@pytest.mark.parametrize("text, seconds", [
    ("30", 30 * 60),
    ("08:00:00", 8 * 3600),
    ("36:00:00", 36 * 3600),
    ("1-12:30:05", 86400 + 12 * 3600 + 30 * 60 + 5),
])
def test_walltime_formats(text, seconds):
    assert parse_walltime(text) == seconds


@pytest.mark.parametrize("bad", ["25:61:00", "abc", "-1", "0", "10:00", "1-10", "", "00:00:00"])
def test_malformed_walltimes_are_refused(bad):
    with pytest.raises(PlanError, match="walltime|longer than zero"):
        parse_walltime(bad)


def test_integer_walltime_from_yaml_is_refused_with_the_reason():
    # YAML 1.1 reads an unquoted 10:00:00 as 36000; SLURM would read minutes.
    with pytest.raises(PlanError, match="quote it"):
        parse_walltime(36000)


def test_walltime_round_trips_to_sbatch_form():
    assert format_walltime(parse_walltime("1-02:03:04")) == "1-02:03:04"
    assert format_walltime(parse_walltime("90")) == "01:30:00"


@pytest.mark.parametrize("text, mb", [("96G", 96 * 1024), ("96000M", 96000), ("1T", 1024 * 1024), ("512MB", 512)])
def test_memory_formats(text, mb):
    assert parse_memory(text) == mb


@pytest.mark.parametrize("bad", ["lots", "0G", "96", 96, "1.5G", "-1G"])
def test_bad_memory_is_refused(bad):
    with pytest.raises(PlanError, match="mem"):
        parse_memory(bad)


def test_cpu_and_gpu_counts():
    assert parse_count(16, "cpus", 1) == 16
    assert parse_count(0, "gpus", 0) == 0
    for bad in (0, -1, 2.5, True, "4"):
        with pytest.raises(PlanError, match="cpus"):
            parse_count(bad, "cpus", 1)
    for bad in (-1, 2.5):
        with pytest.raises(PlanError, match="gpus"):
            parse_count(bad, "gpus", 0)


def _res(**kw):
    return {"walltime": "01:00:00", "mem": "1G", "cpus": 1, "gpus": 0, **kw}


def test_stages_come_after_what_they_need_and_otherwise_keep_their_order():
    pipeline = {"stages": {
        "fusion": {"needs": ["vgae", "gat"], "resources": _res()},
        "vgae": {"needs": [], "resources": _res()},
        "gat": {"needs": [], "resources": _res()},
        "report": {"needs": [], "resources": _res()},
    }}
    assert [s.name for s in plan_stages(pipeline)] == ["vgae", "gat", "fusion", "report"]


def test_cycle_is_named():
    pipeline = {"stages": {"a": {"needs": ["b"], "resources": _res()}, "b": {"needs": ["a"], "resources": _res()}}}
    with pytest.raises(PlanError, match="cycle: a -> b -> a"):
        plan_stages(pipeline)


def test_unknown_need_empty_pipeline_and_dotted_names():
    with pytest.raises(PlanError, match="needs 'x'"):
        plan_stages({"stages": {"a": {"needs": ["x"], "resources": _res()}}})
    with pytest.raises(PlanError, match="no stages"):
        plan_stages({"stages": {}})
    with pytest.raises(PlanError, match="letters, digits"):
        plan_stages({"stages": {"distillation_0.25": {"needs": [], "resources": _res()}}})


def test_bad_resource_names_its_stage():
    with pytest.raises(PlanError, match=r"pipeline.stages.a.resources.mem='lots'"):
        plan_stages({"stages": {"a": {"needs": [], "resources": _res(mem="lots")}}})


def test_sinfo_partitions_take_the_largest_node_and_the_default():
    from hydra_plugins.kdgat_chain_launcher._plan import Partition
    from hydra_plugins.kdgat_chain_launcher._slurm_info import parse_sinfo

    parts = parse_sinfo("main*|7-00:00:00|48|196608|gpu:2\nbig|infinite|64+|512000|gpu:a100:4(S:0-1)\n"
                        "big|infinite|128|256000|(null)\n")
    assert parts == [Partition("main", True, 7 * 86400, 48, 196608, 2), Partition("big", False, None, 128, 512000, 4)]


@pytest.mark.parametrize("request_, partition, message", [
    (dict(gpus=3), None, "gpus 3: the largest node of partition main has 2"),
    (dict(cpus=64), None, "cpus 64: the largest node of partition main has 48"),
    (dict(mem_mb=400 * 1024), None, "mem 400G: the largest node of partition main has 192G (196608M)"),
    (dict(walltime_s=8 * 86400), None, "walltime 8-00:00:00 is over partition main's limit of 7-00:00:00"),
    (dict(), "nosuch", "partition 'nosuch' does not exist; the partitions are main, big"),
    (dict(walltime_s=30 * 86400, gpus=4, cpus=64), "big", None),
    (dict(gpus=2, cpus=48), None, None),
])
def test_a_request_beyond_the_cluster_names_what_it_allows(request_, partition, message):
    from hydra_plugins.kdgat_chain_launcher._plan import limit_problem
    from hydra_plugins.kdgat_chain_launcher._resources import Resources
    from hydra_plugins.kdgat_chain_launcher._slurm_info import parse_sinfo

    parts = parse_sinfo("main*|7-00:00:00|48|196608|gpu:2\nbig|infinite|128|512000|gpu:4\n")
    res = Resources.of(**{**dict(walltime_s=3600, mem_mb=1024, cpus=1, gpus=0), **request_})
    assert limit_problem(res, partition, parts) == message
    assert limit_problem(res, partition, []) is None  # sinfo silent: sbatch --test-only decides


def test_a_partition_limit_under_an_hour_is_read_from_sinfo_and_checked():
    """sinfo prints a 30-minute limit as MM:SS (30:00); once read as no limit, the walltime check was lost."""
    from hydra_plugins.kdgat_chain_launcher._plan import limit_problem
    from hydra_plugins.kdgat_chain_launcher._resources import Resources
    from hydra_plugins.kdgat_chain_launcher._slurm_info import parse_sinfo

    (short,) = parse_sinfo("debug*|30:00|4|8000|(null)\n")
    assert short.max_time_s == 30 * 60
    res = Resources.of(walltime_s=3600, mem_mb=1024, cpus=1, gpus=0)
    assert limit_problem(res, None, [short]) == "walltime 01:00:00 is over partition debug's limit of 00:30:00"


@pytest.mark.parametrize("text, seconds", [
    ("30:00", 1800), ("1:00:00", 3600), ("12:30:05", 45005), ("7-00:00:00", 7 * 86400), ("00:01:23.456", 83),
    ("UNLIMITED", None), ("infinite", None), ("Partition_Limit", None), ("", None), ("junk", None), ("45", 2700),
    ("2-12", 2 * 86400 + 12 * 3600), ("1-02:30", 86400 + 2 * 3600 + 30 * 60), ("1-", None), ("1:2:3:4", None),
])
def test_slurm_durations_are_read_in_every_form_slurm_prints(text, seconds):
    assert slurm_seconds(text) == seconds


def test_a_user_walltime_of_mm_ss_stays_refused():
    """`10:00` from a user is ambiguous (ten minutes or ten hours?), though SLURM's own output may say it."""
    with pytest.raises(PlanError, match="is not a walltime"):
        parse_walltime("10:00")
    assert slurm_seconds("10:00") == 600


@pytest.mark.parametrize("text, bare, mb", [
    ("96G", "M", 96 * 1024), ("4000Mn", "M", 4000), ("2000Mc", "M", 2000), ("1024K", "", 1), ("196608", "M", 196608),
    ("1048576", "", 1), ("1.5T", "M", 1.5 * 1024 * 1024), ("64+", "M", 64), ("?", "M", None), ("", "M", None),
])
def test_slurm_sizes_are_read_in_every_form_slurm_prints(text, bare, mb):
    assert slurm_megabytes(text, bare_unit=bare) == mb


def test_memory_is_formatted_as_sbatch_reads_it():
    assert [format_memory(mb) for mb in (96 * 1024, 96000, 1)] == ["96G", "96000M", "1M"]


# ---------------------------------------------------------------------- resource precedence

def _levels(*levels):
    return [(f"level{i}", level) for i, level in enumerate(levels)]


def test_each_level_wins_over_the_ones_below_field_by_field():
    """The stage's default < the pipeline's default for it < the global override < the per-stage override."""
    unset = {"walltime": "???", "mem": "???", "cpus": "???", "gpus": "???", "partition": "???"}
    levels = _levels({"walltime": "08:00:00", "mem": "96G", "cpus": 16, "gpus": 1, "partition": None},
                     {"walltime": "06:00:00", "mem": "64G"},
                     {**unset, "mem": "200G", "cpus": 4},
                     {**unset, "cpus": 2, "sbatch": {"constraint": "a100"}})
    assert resolve_request(levels).as_request() == {
        "walltime": "06:00:00", "mem": "200G", "cpus": 2, "gpus": 1, "partition": None,
        "sbatch": {"constraint": "a100"}, "retry": {}}
    assert resolve_request(levels[:2]).mem == "64G"
    assert resolve_request([levels[0], ("b", None), ("c", None), ("d", None)]).walltime == "08:00:00"


def test_null_is_a_value_and_only_unset_falls_through():
    """OmegaConf's ??? falls through to the level below; a null is kept (no partition: the launcher's)."""
    full = {"walltime": "1", "mem": "1G", "cpus": 1, "gpus": 0}
    res = resolve_request(_levels({**full, "partition": "gpu"}, {"partition": None, "walltime": "???"}))
    assert res.partition is None and res.walltime == "00:01:00"


def test_sbatch_options_merge_key_by_key():
    full = {"walltime": "1", "mem": "1G", "cpus": 1, "gpus": 0}
    res = resolve_request(_levels({**full, "sbatch": {"exclude": "n1", "constraint": "v100"}},
                                  {"sbatch": {"constraint": "a100"}}))
    assert res.sbatch == {"exclude": "n1", "constraint": "a100"}


def test_a_bad_value_is_named_by_the_level_that_gave_it():
    """A global `resources.walltime=10:00` is refused as that key, not as a stage's."""
    node = {"default_resources": _res(), "resources": {"walltime": "???"}}
    with pytest.raises(PlanError, match=r"^resources\.walltime='10:00' is not a walltime"):
        plan_stages({"stages": {"a": node}}, {"walltime": "10:00"})
    with pytest.raises(PlanError, match=r"^pipeline\.stages\.a\.pipeline_resources\.mem='lots' is not a memory"):
        plan_stages({"stages": {"a": {**node, "pipeline_resources": {"mem": "lots"}}}}, None)


def test_a_key_that_is_no_resource_is_refused_at_every_level():
    """A typo such as `memm` is refused, naming its level, instead of being dropped."""
    node = {"default_resources": _res()}
    for stage, global_resources, where in (
            ({**node, "pipeline_resources": {"memm": "1G"}}, None, "pipeline.stages.a.pipeline_resources.memm"),
            ({**node, "default_resources": {**_res(), "gpu": 1}}, None, "pipeline.stages.a.default_resources.gpu"),
            (node, {"time": "10:00:00"}, "resources.time")):
        with pytest.raises(PlanError, match=rf"^{where} is not a resource; use walltime, mem, cpus"):
            plan_stages({"stages": {"a": stage}}, global_resources)


def test_plan_stages_merges_the_levels_and_the_global_node():
    node = {"default_resources": _res(mem="96G"), "pipeline_resources": {"mem": "64G"},
            "resources": {"walltime": "???", "mem": "???", "cpus": 8, "gpus": "???", "partition": "???"}}
    (stage,) = plan_stages({"stages": {"a": node}}, {"walltime": "10:00:00", "mem": "???"})
    res = stage.resources
    assert (res.walltime, res.mem, res.cpus, res.gpus) == ("10:00:00", "64G", 8, 0)
