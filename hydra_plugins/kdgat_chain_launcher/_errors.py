"""The launcher's two errors, and how a command line reports them.

A library call (the Python API, Hydra's test suites) gets an exception; an
app's command line that asks for it (`exit_on_error()`) gets what users expect
of a command: one line on stderr and exit status 1, without Hydra's advice
about HYDRA_FULL_ERROR, which is for bugs, not for a misspelt walltime.
"""

import sys

from hydra.errors import CompactHydraException

PREFIX = "kdgat_chain"
_MODE = {"exit": False}


class PlanError(ValueError):
    """A pipeline or resource request that can never be submitted; one line for the user."""


class LaunchError(CompactHydraException):
    """Why nothing (more) was submitted: Hydra prints it as one line and exits 1."""

    def __init__(self, message: str) -> None:
        super().__init__(f"{PREFIX}: error: {message}")


def exit_on_error(enabled: bool = True) -> None:
    """Make a LaunchError end this process with its one line and exit status 1 (for a command line)."""
    _MODE["exit"] = enabled


def report(err: LaunchError) -> None:
    """Raise `err`, or end the process with it when the command line asked for that."""
    if _MODE["exit"]:
        print(str(err), file=sys.stderr, flush=True)
        sys.exit(1)
    raise err
