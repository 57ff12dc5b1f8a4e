"""The launcher's pure planning: job names, sbatch parameters, GPU warnings (no SLURM)."""

from hydra_plugins.kdgat_chain_launcher import Resources, Stage
from hydra_plugins.kdgat_chain_launcher._plan import forced_stages, gpu_warnings, job_name, resume_actions
from hydra_plugins.kdgat_chain_launcher._slurm import sbatch_parameters


def stage(name="vgae", needs=(), gpus=1, partition=None, sbatch=None, uses_gpus=None):
    return Stage(name=name, needs=tuple(needs), resources=Resources.of(
        walltime_s=8 * 3600, mem_mb=96 * 1024, cpus=16, gpus=gpus, partition=partition, sbatch=sbatch or {}),
        uses_gpus=uses_gpus)


def test_job_name_fills_config_keys_and_drops_missing_ones():
    values = {"dataset.name": "hcrl_sa"}
    assert job_name("{stage}_{dataset.name}", "fusion", values.get) == "fusion_hcrl_sa"
    assert job_name("{stage}_{dataset.name}", "fusion", {}.get) == "fusion"
    assert job_name("{stage}_{x}", "a", {"x": "we ird;rm"}.get) == "a_we_ird_rm"


def test_every_resource_reaches_the_sbatch_parameters():
    params = sbatch_parameters(stage(needs=("a", "b")).resources, {"partition": "gpu", "account": "lab", "qos": None,
                                                          "additional_parameters": {"exclude": "n1"}},
                               "vgae_hcrl_sa", ["101", "102"])
    assert params["time"] == 480 and params["mem"] == "96G"  # minutes
    assert params["cpus_per_task"] == 16 and params["gres"] == "gpu:1"
    assert params["partition"] == "gpu" and params["account"] == "lab" and "qos" not in params
    assert params["additional_parameters"] == {"exclude": "n1", "dependency": "afterok:101:102",
                                               "kill-on-invalid-dep": "yes"}


def test_cpu_only_stage_own_partition_and_options_win():
    params = sbatch_parameters(stage(gpus=0, partition="cpu", sbatch={"exclude": "n2"}).resources,
                               {"partition": "gpu", "gpu_type": "a100", "additional_parameters": {"exclude": "n1"}},
                               "x", [])
    assert "gres" not in params and params["partition"] == "cpu"
    assert params["additional_parameters"] == {"exclude": "n2"}
    typed = sbatch_parameters(stage(gpus=2).resources, {"gpu_type": "a100"}, "x", [])
    assert typed["gres"] == "gpu:a100:2" and "additional_parameters" not in typed


def test_more_gpus_than_the_code_uses_is_a_warning():
    assert gpu_warnings([stage("vgae", gpus=1, uses_gpus=1), stage("gat", gpus=4)]) == []
    (warning,) = gpu_warnings([stage("vgae", gpus=2, uses_gpus=1)])
    assert "asks for 2 GPUs but its training uses 1" in warning


def test_resume_skips_done_attaches_queued_and_reruns_dependents():
    a, b, c = stage("a"), stage("b", needs=("a",)), stage("c", needs=("a", "b"))
    markers = {"a": "A", "b": "B", "c": None}
    done = {"A"}.__contains__
    queued = {"B": "77"}.get
    assert resume_actions([a, b, c], markers, done, queued, set()) == {
        "a": ("done", None), "b": ("attached", "77"), "c": ("submit", None)}
    # rerun=a forces a, and b and c which need it, whatever their markers say
    assert forced_stages([a, b, c], {"a"}) == {"a", "b", "c"}
    assert resume_actions([a, b, c], markers, done, queued, {"b"}) == {
        "a": ("done", None), "b": ("submit", None), "c": ("submit", None)}
