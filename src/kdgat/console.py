"""What kdgat says while it works: messages through Python's logging, progress bars only on a terminal.

Messages go to the `kdgat.*` loggers, so Hydra's job logging (`hydra/job_logging`,
`hydra.verbose`) decides where they land: the console and the job's `train.log`
(`<stage dir>/train.log` for a launched stage). A bar would fill a log file
with carriage returns, so where stderr is not a terminal there is none, and
the per-epoch lines say the same.
"""

from __future__ import annotations

import logging
import sys


def show_progress(wanted: bool) -> bool:
    """Draw bars when the `progress` setting asks for them and stderr is a terminal."""
    return bool(wanted) and sys.stderr.isatty()


def setup_command_line(verbose: bool = False) -> None:
    """For the `kdgat` command, which Hydra does not configure: `kdgat: message` lines on stderr."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="kdgat: %(message)s",
                        stream=sys.stderr)
