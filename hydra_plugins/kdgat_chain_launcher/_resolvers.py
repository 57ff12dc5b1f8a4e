"""The launcher's two resolvers (config.py says what they do), apart from config.py: Hydra's plugin scan
executes config.py whatever imported it before, so an app that registers them here does not make the
launcher's settings dataclass twice."""

from typing import Any, Optional

from omegaconf import OmegaConf

TARGET = "hydra_plugins.kdgat_chain_launcher.launcher.KdgatChainLauncher"


def _mode(target: Any) -> Optional[str]:
    return "MULTIRUN" if target == TARGET else None


def _effective_resources(*, _parent_: Any, _root_: Any) -> Any:
    """The planner's merge of a stage node's resource levels and the config's global `resources` (as a
    config node: OmegaConf.resolve can put a node, not a dict, in the key's place)."""
    from hydra_plugins.kdgat_chain_launcher._contract import RESOURCE_LEVELS
    from hydra_plugins.kdgat_chain_launcher._plan import stage_levels
    from hydra_plugins.kdgat_chain_launcher._resources import merge_resources

    plain = {key: OmegaConf.to_container(_parent_[key], resolve=True) for key in RESOURCE_LEVELS if key in _parent_}
    found = _root_.get("resources") if hasattr(_root_, "get") else None
    global_resources = OmegaConf.to_container(found, resolve=True) if OmegaConf.is_config(found) else None
    return OmegaConf.create(merge_resources(stage_levels(plain, global_resources)))


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("kdgat_chain_mode", _mode, replace=True)
    OmegaConf.register_new_resolver("kdgat_chain.resources", _effective_resources, replace=True)
