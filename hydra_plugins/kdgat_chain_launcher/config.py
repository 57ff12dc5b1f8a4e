"""`hydra/launcher=kdgat_chain`: the launcher's settings, cluster-wide only.

Resources (walltime, memory, CPUs, GPUs, partition per stage) are not here:
they live in the app's `pipeline` node, which can differ per job and per
stage. Field names follow hydra-submitit-launcher's where they mean the same.

Importing this module also registers the launcher's two resolvers (`_resolvers.py`):
`kdgat_chain_mode`, which an app's primary config uses so that selecting this
launcher switches Hydra to multirun by itself (Hydra builds a launcher only in
multirun mode, and a `hydra.mode` stored in the launcher's own config is
overridden), and `kdgat_chain.resources`, a stage's effective request:

    hydra:
      mode: ${kdgat_chain_mode:${hydra.launcher._target_}}
    pipeline: {stages: {<name>: {effective_resources: ${kdgat_chain.resources:}, ...}}}
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore

from hydra_plugins.kdgat_chain_launcher._resolvers import TARGET, register_resolvers
from hydra_plugins.kdgat_chain_launcher._resources import ResourceRequest
from hydra_plugins.kdgat_chain_launcher._store import store_shared


@dataclass
class KdgatChainConf:
    _target_: str = TARGET

    # slurm: submit chained sbatch jobs and return; local: run the same plan
    # here, each stage in its own process, in dependency order, and wait.
    cluster: str = "slurm"
    # Print the plan and every sbatch script; submit nothing, write nothing.
    dry_run: bool = False

    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    constraint: Optional[str] = None
    gpu_type: Optional[str] = None  # gres becomes gpu:<type>:<n>
    mail_type: Optional[str] = None
    mail_user: Optional[str] = None
    # Any other sbatch option, e.g. {exclude: "node12", reservation: "ml"}.
    additional_parameters: Dict[str, Any] = field(default_factory=dict)

    # The interpreter the jobs run (default: the one submitting).
    python: Optional[str] = None
    # Shell lines run before the stage (module loads, environment activation);
    # the job runs them under `set -e`, so a failing line fails the job.
    setup: List[str] = field(default_factory=list)

    # Copy the app's code into the sweep directory and run the stages from that
    # copy, so stages that start hours later run the code as submitted.
    snapshot: bool = False
    # Folders of the copy put on PYTHONPATH (relative to the code's root).
    snapshot_pythonpath: List[str] = field(default_factory=lambda: ["src", "."])

    # The app config key the launcher sets to the stage name in each stage job.
    stage_key: str = "stage"
    # Job name: "{stage}" and any "{config.key}" of the job's config.
    job_name: str = "{stage}_{dataset.name}"

    # Stages to train again although finished, with every stage that needs them:
    # rerun=curriculum or rerun=[autoencoder,fusion].
    rerun: Any = None

    # In a -m sweep, submit stage k of all chains with the same stages and resources as one job
    # array, task i waiting on task i of stage k-1's array (aftercorr); false: one job per stage.
    array: bool = True
    # At most this many tasks of one array run at once (sbatch --array=...%N); null: no limit.
    array_parallelism: Optional[int] = None
    # Longest array to submit; null: the cluster's MaxArraySize (scontrol show config).
    max_array_size: Optional[int] = None

    # The request of each job of an app without a `pipeline` node (one job per Hydra job, as Hydra's own
    # launchers run it).
    resources: Dict[str, Any] = field(default_factory=lambda: {"walltime": "01:00:00", "mem": "4G", "cpus": 1,
                                                               "gpus": 0})

    # A stage killed for memory, or out of time once more than max_num_timeout allows, is submitted again with
    # more (with every stage after it in its chain) by a small guard job per chain, inside the cluster:
    # oom / timeout: attempts; mem_factor / time_factor: how much more each time, capped by the partition.
    # Per stage: pipeline.stages.<name>.resources.retry.<key>; retry.oom=0 retry.timeout=0: no guards.
    retry: Dict[str, Any] = field(default_factory=lambda: {"oom": 2, "mem_factor": 1.5, "timeout": 1,
                                                           "time_factor": 1.5})
    # The guard job's own request: a few minutes on one CPU.
    guard_resources: Dict[str, Any] = field(default_factory=lambda: {"walltime": "00:10:00", "mem": "1G",
                                                                     "cpus": 1, "gpus": 0})

    # Requeue a stage that reaches its walltime (or is preempted) at most this
    # many times; the stage resumes from its checkpoint.
    max_num_timeout: int = 3
    signal_delay_s: int = 120


# Hydra's plugin scan executes this module (a second time, if anything imported it first): storing (a
# structured config's conversion, a few ms) is done once.
if "kdgat_chain.yaml" not in ConfigStore.instance().repo.get("hydra", {}).get("launcher", {}):
    store_shared(group="hydra/launcher", name="kdgat_chain", node=KdgatChainConf, provider="kdgat_chain_launcher")
    # One level of a stage's request, every field unset: an app's global override node takes it with
    # `defaults: [/kdgat_chain_resources@resources]`.
    store_shared(name="kdgat_chain_resources", node=ResourceRequest, provider="kdgat_chain_launcher")


register_resolvers()
