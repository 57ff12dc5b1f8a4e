"""The chain app's answer to the launcher before it submits: a stage is done when its output file exists, and
must run again all the same when its config node says it is `stale`."""

from hydra_plugins.kdgat_chain_launcher import StageState


def stage_state(cfg, stage):
    return StageState(marker=f"{cfg.out}/{cfg.tag}-{stage}.done", stale=cfg.pipeline.stages[stage].get("stale"))
