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

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def command_path(path: object) -> str:
    """`path` made absolute against the folder the command was typed in: Hydra's original working directory
    when a Hydra job runs (in-process with hydra.job.chdir=true, or a stage job started in another folder),
    else the process's own. So a relative path means what it meant where the user typed it."""
    from hydra.utils import to_absolute_path

    return to_absolute_path(os.path.expanduser(str(path)))
_UNIQUE = f"{os.getpid()}{secrets.token_hex(2)}"


def register_resolvers() -> None:
    """What kdgat's configs need before Hydra composes them, all torch-free: its resolvers, the
    launcher's, and the stage presets in Hydra's config store."""
    from omegaconf import OmegaConf

    from hydra_plugins.kdgat_chain_launcher import register_resolvers as register_launcher_resolvers, share_config_store
    from kdgat.stages.presets import store_presets

    OmegaConf.register_new_resolver("kdgat.abspath", command_path, replace=True)
    # One token per process: the sweep directory of two submissions in the same second differs.
    OmegaConf.register_new_resolver("kdgat.unique", lambda: _UNIQUE, replace=True)
    register_launcher_resolvers()
    store_presets()
    share_config_store()  # every stored config, Hydra's own too, no longer copied at each of a launch's composes


def compose(overrides: list[str], resolve: bool = True):
    """The job config `python train.py OVERRIDES` would run (custom stages included), composed without
    running anything; bad input raises a KdgatError with the command line's one-line message."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    register_resolvers()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = hydra_compose(config_name="config", overrides=prepare_overrides(list(overrides)))
    except Exception as err:
        message = user_error(err)
        if message is None:
            raise
        raise KdgatError(message) from None
    complete(cfg)
    if resolve:
        OmegaConf.resolve(cfg)
    return cfg


def complete(cfg) -> None:
    """What kdgat fills into a composed config before it runs or is planned (the pipeline's `complete` hook):
    the stages of a `presets` list, then the requests of a `resources_file`."""
    from kdgat.custom import complete as complete_presets
    from kdgat.suggest import apply

    complete_presets(cfg)
    apply(cfg, command_path)


def prepare_overrides(args: list[str]) -> list[str]:
    """The command-line overrides, with a custom pipeline's presets added as stages (kdgat.custom), so that
    each composes like a named pipeline's stage and takes `pipeline.stages.<name>...` overrides."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    given = [a for a in args if a.split("=", 1)[0] == "pipeline.presets"]
    if not given:
        return args
    try:
        override = OverridesParser.create().parse_overrides(given[-1:])[0]
    except Exception as err:
        raise KdgatError(user_error(err) or str(err)) from None
    if override.is_sweep_override():
        raise KdgatError("pipeline.presets cannot be swept; give one list per command")
    return args + stage_overrides(override.value())


def refuse_shadowed_presets(flags: list[str], overrides: list[str]) -> None:
    """A user's own preset named like one of kdgat's would be merged into it by Hydra's deprecated schema
    matching (any key of its own refused; `defaults: [autoencoder]` in preset/autoencoder.yaml recursing
    until Python stops it): such a name is refused at once, naming the way that works."""
    from kdgat.stages.registry import PRESETS

    for folder in _user_config_dirs(flags, overrides):
        for name in PRESETS:
            if (folder / "preset" / f"{name}.yaml").is_file():
                raise KdgatError(
                    f"{folder / 'preset' / f'{name}.yaml'} has the name of kdgat's own {name} preset, which Hydra "
                    f"would merge it into; give it a name of its own (e.g. my_{name}.yaml), extend kdgat's with "
                    f"`defaults: [{name}, _self_]`, and pick it in a pipeline with "
                    f"`- /preset@stages.{name}: my_{name}`")


def _user_config_dirs(flags: list[str], overrides: list[str]) -> list[Path]:
    """The folders a command adds to Hydra's search path: --config-dir (-cd) and hydra.searchpath's file
    entries (pkg:// entries hold no files of the user's)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    dirs = [value for flag, value in zip(flags, flags[1:] + [""]) if flag in ("--config-dir", "-cd")]
    dirs += [flag.split("=", 1)[1] for flag in flags if flag.startswith("--config-dir=")]
    for arg in overrides:
        if arg.split("=", 1)[0].lstrip("+") == "hydra.searchpath":
            try:
                value = OverridesParser.create().parse_overrides([arg])[0].value()
            except Exception:
                continue  # Hydra says what is wrong with it
            if isinstance(value, list):
                dirs += [str(v).removeprefix("file://") for v in value if not str(v).startswith("pkg://")]
    return [Path(os.path.expanduser(d)) for d in dirs if d]


def user_error(err: Exception) -> str | None:
    """One line for what Hydra refuses in a command line (an unknown pipeline or dataset, an override it cannot
    read or apply, a value a resolver refuses), naming what exists in Hydra's own search path; None for
    anything else (a bug)."""
    from hydra.errors import CompactHydraException, MissingConfigException, OverrideParseException
    from omegaconf.errors import InterpolationResolutionError

    if isinstance(err, MissingConfigException) and err.missing_cfg_file and err.options is not None:
        group, _, name = err.missing_cfg_file.rpartition("/")
        if group:
            return f"unknown {group} {name!r}; choose one of: {', '.join(sorted(err.options))}"
    if isinstance(err, OverrideParseException):
        return (f"cannot read the override {err.override!r} ({str(err).splitlines()[0].strip()}); quote a value "
                "that holds spaces, newlines or characters such as $ ( ) ; ` as key='value' (see Hydra's override "
                "grammar)")
    if isinstance(err, InterpolationResolutionError):  # `--cfg job --resolve`: a resolver refused a value
        return str(err).splitlines()[0].split(" raised while resolving interpolation: ", 1)[-1]
    if isinstance(err, CompactHydraException):
        message = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        cause = str(err.__cause__ or "").strip().splitlines()  # OmegaConf's why, e.g. a value of the wrong type
        return f"{message}: {cause[0]}" if cause and cause[0] not in message else message
    return None


def group_options(group: str) -> list[str]:
    """The options kdgat's own conf/ offers for a group (a user's --config-dir may add more)."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml") if not p.stem.startswith("_"))
