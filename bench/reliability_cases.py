"""The reliability catalogue: bad input is refused before it costs anything, and a fault loses no
finished work. One function per case, in one list, `CASES`; tests/cluster/test_reliability.py and
tests/integration/test_reliability_local.py run each as a test and bench/reliability.py prints them as a table.

The cases live beside this list, by kind: reliability_refusals.py (bad input), reliability_cluster_faults.py
(faults on the cluster) and reliability_damaged_files.py (damaged files, no cluster); reliability_sandbox.py holds
the folder each case runs in, `run_case`, and how a case's columns are measured.
"""

from __future__ import annotations

import re

from reliability_cluster_faults import (
    daemon_restart,
    fault_in_a_stage,
    identical_submissions,
    out_of_memory,
    out_of_time,
    sacct_unavailable,
)
from reliability_damaged_files import damaged_checkpoint_and_cache, damaged_model
from reliability_refusals import (
    bad_request,
    cluster_limit,
    gpus_zero_is_valid,
    shell_values_in_a_dataset_name,
    shell_values_in_names_and_paths,
    unusable_dataset,
)
from reliability_sandbox import Case, Result, Sandbox, run_case

__all__ = ["CASES", "Case", "Result", "Sandbox", "run_case"]  # what bench/reliability.py and the tests use


WALLTIME_FORMS = "HH:MM:SS"  # named by every walltime error, with MM and D-HH:MM:SS


def refuse(name: str, *args: str, names: list[str], needs: str = "nothing", **kw) -> Case:
    """A bad-input case: `train.py ARGS` must be refused with one line matching each of `names`."""
    return Case(name, "bad input", needs, bad_request(*args, names=names, **kw))


def too_big(name: str, override: str, bad: str, limit: str) -> Case:
    return Case(name, "bad input", "cluster", cluster_limit(override, bad, limit))


CASES: list[Case] = [
    refuse("unknown pipeline", "pipeline=nope", names=["'nope'", "teacher"]),
    refuse("unknown dataset", "dataset=nope", names=["'nope'", "hcrl_sa"]),
    refuse("unknown preset", "pipeline=custom", "pipeline.presets=[autoencoder,nope]", names=["'nope'", "gat_normal"]),
    refuse("empty custom pipeline", "pipeline=custom", "pipeline.presets=[]", names=["presets", "autoencoder"]),
    refuse("cyclic custom pipeline", "pipeline=custom", "pipeline.presets=[autoencoder,curriculum]",
           "pipeline.stages.autoencoder.needs=[curriculum]", names=["cycle", "autoencoder -> curriculum"]),
    refuse("walltime 25:61:00", "resources.walltime=25:61:00", names=["25:61:00", WALLTIME_FORMS]),
    refuse("walltime abc", "resources.walltime=abc", names=["'abc'", WALLTIME_FORMS]),
    refuse("walltime -1", "resources.walltime=-1", names=["=-1", WALLTIME_FORMS]),
    refuse("memory lots", "resources.mem=lots", names=["'lots'", "96G"]),
    refuse("memory 0G", "resources.mem=0G", names=["'0G'", "at least"]),
    *(refuse(f"cpus {n}", f"resources.cpus={n}", names=[f"cpus={re.escape(n)}", ">= 1"]) for n in ("0", "-1", "2.5")),
    *(refuse(f"gpus {n}", f"resources.gpus={n}", names=[f"gpus={re.escape(n)}", ">= 0"]) for n in ("-1", "2.5")),
    Case("gpus 0 (valid)", "bad input", "nothing", gpus_zero_is_valid),
    too_big("more GPUs than any node", "resources.gpus=3", r"\b3\b", r"\b2\b"),
    too_big("more memory than any node", "resources.mem=400G", r"400G|409600", r"192G|196608"),
    too_big("more CPUs than any node", "resources.cpus=64", r"\b64\b", r"\b48\b"),
    too_big("unknown partition", "resources.partition=nosuch", "nosuch", r"\bmain\b"),
    too_big("walltime over the partition limit", "resources.walltime=8-00:00:00", r"8-00:00:00",
            r"7-00:00:00|7 days|10080"),
    refuse("missing dataset folder", "dataset=hcrl_sa", names=["hcrl_sa", "not found", "kdgat synth"]),
    refuse("dataset without a usable frame", "dataset=hcrl_sa", names=[r"normal\.csv|dos\.csv", "format|frame"],
           data=unusable_dataset),
    refuse("student pipeline without a teacher", "pipeline=student", names=["distillation", "pipeline=teacher"]),
    Case("shell characters in a dataset name", "bad input", "nothing", shell_values_in_a_dataset_name),
    Case("shell characters in paths and job names", "bad input", "cluster", shell_values_in_names_and_paths),
    Case("stage raises", "fault", "cluster", fault_in_a_stage("raise")),
    Case("stage killed with SIGKILL", "fault", "cluster", fault_in_a_stage("sigkill")),
    Case("failing setup line", "fault", "cluster", fault_in_a_stage("setup")),
    Case("slurmctld restarted mid-chain", "fault", "cluster", daemon_restart("ctld")),
    Case("slurmd killed and restarted mid-stage", "fault", "cluster", daemon_restart("slurmd")),
    Case("sacct unavailable", "fault", "cluster", sacct_unavailable),
    Case("two identical submissions at once", "fault", "cluster", identical_submissions),
    Case("stage killed for memory", "fault", "cluster",
         out_of_memory(("pipeline.stages.autoencoder.resources.mem=2G", "hydra.launcher.retry.mem_factor=2"),
                       2048, expect_retried=True)),
    Case("memory beyond every retry", "fault", "cluster",
         out_of_memory(("pipeline.stages.autoencoder.resources.mem=1G", "hydra.launcher.retry.oom=1"),
                       3072, expect_retried=False)),
    Case("out of time after its requeues", "fault", "cluster", out_of_time),
    Case("damaged checkpoint and data cache", "fault", "time", damaged_checkpoint_and_cache),
    Case("damaged model of a finished stage", "fault", "time", damaged_model),
]
