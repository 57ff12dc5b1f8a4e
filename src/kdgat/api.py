"""kdgat from Python: the command line's overrides, without a shell.

    from kdgat import api
    metrics = api.run("pipeline=teacher", "train.max_epochs=1")          # python train.py ...
    manifest = api.submit("pipeline=teacher", "dataset=hcrl_sa")         # ... hydra/launcher=kdgat_chain
    api.submit("-m", "pipeline=teacher", "dataset=hcrl_sa,set_01", dry_run=True)
    cfg = api.compose("pipeline=student", "dataset=hcrl_sa")             # --cfg job --resolve

Every override means what it means on the command line (`pipeline=custom
'pipeline.presets=[...]'` included); errors are raised (KdgatError, or the
launcher's LaunchError), never an exit.
"""

from __future__ import annotations

from typing import Any


def compose(*overrides: str, resolve: bool = True) -> Any:
    """The job config `python train.py OVERRIDES` would run, composed without running anything (as
    `--cfg job --resolve`): the overrides one argument each, like `run` and `submit`."""
    from kdgat.config import compose as compose_config

    if not all(isinstance(o, str) for o in overrides):
        raise TypeError("api.compose takes each override as an argument of its own: "
                        "api.compose(\"pipeline=student\", \"dataset=hcrl_sa\")")
    return compose_config(list(overrides), resolve=resolve)


def run(*overrides: str) -> dict[str, dict[str, Any]]:
    """Train the pipeline in this process, as `python train.py OVERRIDES` does; each stage's metrics by name."""
    from kdgat.task import run_stages

    (ret,) = _hydra("run", overrides, run_stages)
    return ret.return_value


def submit(*overrides: str, cluster: str = "slurm", dry_run: bool = False) -> Any:
    """Submit the pipeline (or a `-m` sweep) through the kdgat_chain launcher and return its manifest
    (`hydra_plugins.kdgat_chain_launcher.Manifest`); None for a dry run, which only prints the plan.
    With cluster="local" the stages run here, each in its own process, and this returns when they end."""
    from hydra_plugins.kdgat_chain_launcher import read_manifest
    from kdgat.task import run

    args = [o for o in overrides if o != "-m"]
    args += ["hydra/launcher=kdgat_chain", f"hydra.launcher.cluster={cluster}", f"hydra.launcher.dry_run={dry_run}"]
    returns = _hydra("multirun", args, run)
    if dry_run or not returns:
        return None
    return read_manifest(returns[0].cfg.hydra.sweep.dir)


def _hydra(mode: str, overrides: Any, task: Any) -> list:
    """Hydra's own run or multirun of kdgat's config tree, as train.py's `@hydra.main` would start it."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from kdgat.config import CONF_DIR, prepare_overrides, register_resolvers

    from hydra_plugins.kdgat_chain_launcher import LaunchError
    from kdgat.config import user_error
    from kdgat.errors import KdgatError

    register_resolvers()
    args = prepare_overrides(list(overrides))
    before = HydraConfig.instance().cfg  # Hydra leaves its job's config set: later calls must not see it
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), job_name="train", version_base="1.3"):
            hydra = GlobalHydra.instance().hydra
            if mode == "run":
                return [hydra.run(config_name="config", task_function=task, overrides=args)]
            batches = hydra.multirun(config_name="config", task_function=task, overrides=args)
            return [ret for batch in batches for ret in batch]
    except LaunchError:
        raise
    except Exception as err:  # what Hydra refuses (an unknown pipeline, an override it cannot apply): one line
        message = user_error(err)
        if message is None:
            raise
        raise KdgatError(message) from None
    finally:
        HydraConfig.instance().cfg = before
