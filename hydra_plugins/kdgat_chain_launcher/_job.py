"""What one stage job runs on its node: the Hydra job of one stage, from the chain's frozen config.

hydra-submitit-launcher's pickled callable is the model: `__call__` runs the
Hydra job with Hydra's own `run_job` (output folder, `.hydra/`, job logging,
callbacks), and `checkpoint` requeues it on timeout or preemption.
"""

import os
import pickle
from typing import Any, Optional

from hydra.core.utils import JobReturn, JobStatus, run_job, setup_globals
from omegaconf import open_dict, read_write


def _join_the_other_tasks() -> int:
    """This process's rank when its job runs several tasks (a data-parallel stage: one per GPU), with the
    environment torch.distributed's env:// start reads (MASTER_ADDR, RANK, WORLD_SIZE, LOCAL_RANK, and each
    rank's own CUDA_VISIBLE_DEVICES); 0 when it runs alone."""
    import submitit

    try:
        tasks = submitit.JobEnvironment().num_tasks
    except RuntimeError:  # not a submitit job (a test calling it directly)
        return 0
    if tasks <= 1:
        return 0
    return submitit.helpers.TorchDistributedEnvironment().export(overwrite=True).rank


class StageFailed(RuntimeError):
    """Raised in a stage job whose task failed, so that the job exits non-zero.

    Hydra's run_job catches the task's exception and returns a FAILED status;
    a job that then exited 0 would be COMPLETED to SLURM and release the next
    stage.
    """


class StageJob:
    """One stage of one chain. Its state travels as bytes pickled once per launch (the task, Hydra's
    callbacks and version base) and once per chain (the config), not once per stage: pickling a
    DictConfig is most of what submitting a job costs.

    `stage` is None for an app without a `pipeline` node: then the job is Hydra's own job, run in
    Hydra's configured sweep subdir, and it returns Hydra's JobReturn.
    """

    def __init__(self, shared: bytes, config: bytes, stage: Optional[str], stage_key: str) -> None:
        self.shared = shared
        self.config = config
        self.stage = stage
        self.stage_key = stage_key

    def __call__(self) -> JobReturn:
        from hydra.core.utils import JobRuntime
        from hydra.version import VersionBase

        hydra_context, task_function, version_base = pickle.loads(self.shared)
        config = pickle.loads(self.config)
        if version_base is not None:  # else Hydra falls back to 1.1's behaviour (chdir into the job's folder)
            VersionBase.instance().setbase(version_base)
        setup_globals()
        JobRuntime.instance().set("name", config.hydra.job.name)  # the job's name, as in the launching process
        with read_write(config.hydra), open_dict(config.hydra):
            config.hydra.job.id = os.environ.get("SLURM_JOB_ID", f"local-{os.getpid()}")
            if self.stage is not None:
                config.hydra.sweep.subdir = f"{config.hydra.job.num}/{self.stage}"
        if self.stage is not None:
            with open_dict(config):
                config[self.stage_key] = self.stage
        rank = _join_the_other_tasks()
        if rank:  # one of several processes: task 0 alone writes the job's log file and .hydra/
            with read_write(config.hydra), open_dict(config.hydra):
                config.hydra.output_subdir = None
        ret = run_job(hydra_context=hydra_context, task_function=task_function, config=config,
                      job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir", configure_logging=not rank)
        if ret.status == JobStatus.FAILED:
            raise StageFailed(f"stage failed: {ret._return_value!r}") from ret._return_value
        return ret

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """On timeout or preemption: requeue this same stage; it resumes from its own checkpoint."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)
