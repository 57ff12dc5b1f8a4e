#!/usr/bin/env python
"""kdgat's Hydra app: `python train.py pipeline=teacher dataset=synthetic`.

Without a launcher the pipeline's stages run here, one after another; with
`hydra/launcher=kdgat_chain` each stage becomes a chained SLURM job. Nothing
imported at start may import torch: `--cfg job` and the launcher stay fast.
"""

import os
import sys

import hydra

from kdgat.config import CONF_DIR, prepare_overrides, refuse_shadowed_presets, register_resolvers, user_error
from kdgat.errors import KdgatError

register_resolvers()

# Flags of Hydra's command line that take the next token as their value.
_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                     "--config-dir", "-cd", "--experimental-rerun"}
_INFO_FLAGS = {"--info", "-i"}
_INFO_TOPICS = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def main(cfg):
    from kdgat.task import run

    return run(cfg)


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """Hydra's flags (with their values) apart from the overrides."""
    flags, overrides = [], []
    it = iter(argv)
    for arg in it:
        if arg.startswith("-"):
            flags.append(arg)
            if arg in _FLAGS_WITH_VALUE:
                flags.append(next(it, ""))
        elif flags and flags[-1] in _INFO_FLAGS and arg in _INFO_TOPICS:
            flags.append(arg)
        else:
            overrides.append(arg)
    return flags, overrides


def cli() -> None:
    """Hydra's command line, with bad input said in one line: an unknown pipeline or dataset (named with
    what Hydra's search path offers), an override Hydra cannot read, a launch the launcher refuses.
    Hydra is asked for the exception itself (HYDRA_FULL_ERROR=1) so that this can tell bad input, which
    gets one line and exit status 2 (1 for a refused launch), from a bug, which keeps its traceback."""
    flags, overrides = split_argv(sys.argv[1:])
    try:
        refuse_shadowed_presets(flags, overrides)
        overrides = prepare_overrides(overrides)
    except KdgatError as err:
        print(f"kdgat: error: {err}", file=sys.stderr)
        sys.exit(2)
    # Hydra wants -m before or after all overrides, not between them.
    sys.argv = sys.argv[:1] + flags + overrides
    wants_traces = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        main()
    except Exception as err:
        from hydra_plugins.kdgat_chain_launcher import LaunchError

        message = None if wants_traces else user_error(err)
        if message is None:
            raise
        launch = isinstance(err, LaunchError)
        print(message if launch else f"kdgat: error: {message}", file=sys.stderr)
        sys.exit(1 if launch else 2)


if __name__ == "__main__":
    cli()
