"""The launcher Hydra finds: a thin shell over `_launcher.ChainLauncher`.

Hydra imports every module of a plugin package whose name does not start
with "_" on every run, `--cfg job` and dry runs included, to find its
plugins. This one imports nothing of the launcher's own until Hydra builds
it, which happens only when a sweep is launched with it (as
hydra-submitit-launcher imports submitit only in `launch`).
"""

from typing import Any, Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig


class KdgatChainLauncher(Launcher):
    def __init__(self, **params: Any) -> None:
        from hydra_plugins.kdgat_chain_launcher._launcher import ChainLauncher

        self.impl = ChainLauncher(**params)

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        self.impl.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        return self.impl.launch(job_overrides, initial_job_idx)
