"""The launcher's two resolvers (config.py says what they do), apart from config.py: Hydra's plugin scan
executes config.py whatever imported it before, so an app that registers them here does not make the
launcher's settings dataclass twice."""

from typing import Any, Optional

from omegaconf import OmegaConf

TARGET = "hydra_plugins.kdgat_chain_launcher.launcher.KdgatChainLauncher"


def _mode(target: Any) -> Optional[str]:
    return "MULTIRUN" if target == TARGET else None


def _effective_resources(*, _parent_: Any, _root_: Any) -> Any:
    """The planner's request for the stage node holding this key (_plan.stage_resources), as a config node
    (OmegaConf.resolve can put a node, not a dict, in the key's place). A bad value is refused here as
    it would be at launch, so that `--cfg job --resolve` never shows a request no launch would make."""
    from hydra_plugins.kdgat_chain_launcher._contract import RESOURCE_LEVELS
    from hydra_plugins.kdgat_chain_launcher._plan import stage_resources

    stages = OmegaConf.select(_root_, "pipeline.stages", default=None) or {}
    name = next((key for key in stages if stages[key] is _parent_), "<stage>")
    plain = {key: OmegaConf.to_container(_parent_[key], resolve=True) for key in RESOURCE_LEVELS if key in _parent_}
    found = _root_.get("resources") if hasattr(_root_, "get") else None
    global_resources = OmegaConf.to_container(found, resolve=True) if OmegaConf.is_config(found) else None
    return OmegaConf.create(stage_resources(str(name), plain, global_resources).as_request())


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("kdgat_chain_mode", _mode, replace=True)
    OmegaConf.register_new_resolver("kdgat_chain.resources", _effective_resources, replace=True)
