#!/usr/bin/env python
"""kdgat's Hydra app: `python train.py pipeline=teacher dataset=synthetic`.

Without a launcher the pipeline's stages run here, one after another; with
`hydra/launcher=kdgat_chain` each stage becomes a chained SLURM job. Nothing
imported at start may import torch: `--cfg job` and the launcher stay fast.
"""

import sys

import hydra

from hydra_plugins.kdgat_chain_launcher import exit_on_error
from kdgat.config import CONF_DIR, prepare_overrides, register_resolvers
from kdgat.errors import KdgatError

register_resolvers()

# Flags of Hydra's command line that take the next token as their value.
_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                     "--config-dir", "-cd", "--experimental-rerun"}
_INFO_TOPICS = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def main(cfg):
    from kdgat.task import run

    run(cfg)


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """Hydra's flags (with their values) apart from the overrides."""
    flags, overrides = [], []
    it = iter(argv)
    for arg in it:
        if arg.startswith("-"):
            flags.append(arg)
            if arg in _FLAGS_WITH_VALUE:
                flags.append(next(it, ""))
            elif arg == "--info":
                pass
        elif flags and flags[-1] == "--info" and arg in _INFO_TOPICS:
            flags.append(arg)
        else:
            overrides.append(arg)
    return flags, overrides


if __name__ == "__main__":
    flags, overrides = split_argv(sys.argv[1:])
    try:
        overrides = prepare_overrides(overrides)
    except KdgatError as err:
        print(f"kdgat: error: {err}", file=sys.stderr)
        sys.exit(2)
    # Hydra wants -m before or after all overrides, not between them.
    sys.argv = sys.argv[:1] + flags + overrides
    exit_on_error()  # a refused launch is one line and exit status 1, as any other bad input
    main()
