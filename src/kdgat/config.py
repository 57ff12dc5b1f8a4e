"""Where the Hydra configs live, and the command line checked before Hydra composes it.

Two things Hydra cannot do well by itself: a misspelt pipeline or dataset
gets a one-line error listing the valid names (Hydra's is several lines), and
`pipeline=custom 'pipeline.presets=[...]'` becomes one stage per preset
(kdgat.custom).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from kdgat.custom import stage_overrides
from kdgat.errors import KdgatError
from kdgat.stages.registry import PRESETS

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
_UNIQUE = f"{os.getpid()}{secrets.token_hex(2)}"


def register_resolvers() -> None:
    """What kdgat's configs need before Hydra composes them, all torch-free: its resolvers, the
    launcher's, and the stage presets in Hydra's config store."""
    from omegaconf import OmegaConf

    from hydra_plugins.kdgat_chain_launcher import register_resolvers as register_launcher_resolvers
    from kdgat.stages.registry import store_presets

    OmegaConf.register_new_resolver("kdgat.abspath", lambda p: str(Path(str(p)).expanduser().absolute()),
                                    replace=True)
    # One token per process: the sweep directory of two submissions in the same second differs.
    OmegaConf.register_new_resolver("kdgat.unique", lambda: _UNIQUE, replace=True)
    register_launcher_resolvers()
    store_presets()


CHECKED_GROUPS = ("pipeline", "dataset")


def compose(overrides: list[str], resolve: bool = True):
    """The job config `python train.py OVERRIDES` would run, composed without running anything."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=prepare_overrides(list(overrides)))
    if resolve:
        OmegaConf.resolve(cfg)
    return cfg


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml") if not p.stem.startswith("_"))


def default_choice(group: str) -> str:
    import yaml

    for item in yaml.safe_load((CONF_DIR / "config.yaml").read_text())["defaults"]:
        if isinstance(item, dict) and group in item:
            return item[group]
    raise KeyError(group)


def prepare_overrides(args: list[str]) -> list[str]:
    """The command-line overrides, checked, with a custom pipeline's stages added."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    try:
        parsed = parser.parse_overrides(args)
    except Exception:
        raise KdgatError(_syntax_error(parser, args)) from None
    choices: dict[str, list[str]] = {}
    presets = None
    for override in parsed:
        key = override.key_or_group
        if key in CHECKED_GROUPS and override.package is None and not override.is_delete():
            values = list(override.sweep_string_iterator()) if override.is_sweep_override() else [override.value()]
            for value in values:
                if value not in group_options(key):
                    raise KdgatError(f"unknown {key} {value!r}; choose one of: {', '.join(group_options(key))}")
            choices[key] = values
        elif key == "pipeline.presets":
            if override.is_sweep_override():
                raise KdgatError("pipeline.presets cannot be swept; give one list per command")
            presets = override.value()
    pipelines = choices.get("pipeline") or [default_choice("pipeline")]
    if presets is None:
        if "custom" in pipelines:
            raise KdgatError("pipeline=custom needs its stages: add 'pipeline.presets=[autoencoder,gat_normal,fusion]' "
                             f"(presets: {', '.join(PRESETS)})")
        return args
    if pipelines != ["custom"]:
        raise KdgatError("pipeline.presets is only read by pipeline=custom")
    return args + stage_overrides(presets, choices.get("dataset") or [default_choice("dataset")],
                                  group_options("dataset"))


def _syntax_error(parser, args: list[str]) -> str:
    """Hydra's complaint about the first override it cannot parse, on one line (Hydra's own takes several)."""
    for arg in args:
        try:
            parser.parse_overrides([arg])
        except Exception as err:
            reason = str(err).splitlines()[0].strip()
            return (f"cannot read the override {arg!r} ({reason}); quote a value that holds spaces, newlines or "
                    f"characters such as $ ( ) ; ` as key='value' (see Hydra's override grammar)")
    return f"cannot read the overrides {' '.join(args)!r}"
