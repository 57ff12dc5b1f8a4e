"""SLURM's units: walltimes and memory sizes, as users write them and as SLURM prints them.

The one place that reads and writes them, for the planner, the limit checks
and `status`. Users' requests are held to forms that cannot be misread
(`10:00` is refused: ten minutes or ten hours?); SLURM's own output is read in
every form it prints, `MM:SS` and `UNLIMITED` included.
"""

import re
from typing import Any, Optional

from hydra_plugins.kdgat_chain_launcher._errors import PlanError

_USER_WALLTIME = re.compile(r"^(?:(?:(?P<days>\d+)-)?(?P<hours>\d+):(?P<minutes>\d+):(?P<seconds>\d+)|(?P<only_minutes>\d+))$")
_NO_LIMIT = {"", "unlimited", "infinite", "n/a", "invalid", "partition_limit", "none"}
_USER_MEMORY = re.compile(r"^(?P<amount>\d+)(?P<unit>[KMGT])B?$", re.IGNORECASE)
_SLURM_MEMORY = re.compile(r"^(?P<amount>\d+(?:\.\d+)?)(?P<unit>[KMGTP]?)[nc]?\+?$", re.IGNORECASE)
_MB_PER_UNIT = {"": 1 / (1024 * 1024), "K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 ** 2, "P": 1024 ** 3}
WALLTIME_FORMS = "MM, HH:MM:SS or D-HH:MM:SS"


def parse_walltime(value: Any, where: str = "walltime") -> int:
    """Seconds in a user's time limit: MM, HH:MM:SS or D-HH:MM:SS.

    Numbers are refused: YAML reads an unquoted 10:00:00 as the integer 36000,
    which SLURM would take as 36000 minutes.
    """
    if isinstance(value, bool) or not isinstance(value, str):
        hint = (" (a bare number is ambiguous: YAML reads an unquoted 10:00:00 as 36000; quote it, "
                "as \"10:00:00\" in YAML or walltime='30' on the command line)") if isinstance(value, int) else ""
        raise PlanError(f"{where}={value!r} is not a walltime string{hint}; use {WALLTIME_FORMS}")
    m = _USER_WALLTIME.match(value.strip())
    if not m:
        raise PlanError(f"{where}={value!r} is not a walltime; use {WALLTIME_FORMS}")
    if m["only_minutes"] is not None:
        seconds = int(m["only_minutes"]) * 60
    else:
        minutes, secs = int(m["minutes"]), int(m["seconds"])
        if minutes > 59 or secs > 59:
            raise PlanError(f"{where}={value!r} has minutes or seconds above 59; use {WALLTIME_FORMS}")
        seconds = ((int(m["days"] or 0) * 24 + int(m["hours"])) * 60 + minutes) * 60 + secs
    if seconds <= 0:
        raise PlanError(f"{where}={value!r} must be longer than zero")
    return seconds


def slurm_seconds(text: Optional[str]) -> Optional[int]:
    """Seconds in a duration SLURM printed (sinfo, sacct, scontrol), in any of its forms: MM, MM:SS,
    HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS; None for no limit (UNLIMITED, infinite, ...) or anything unreadable."""
    text = (text or "").strip()
    days, dash, clock = text.rpartition("-")
    parts = clock.split(".")[0].split(":")  # seconds may have a fraction
    if text.lower() in _NO_LIMIT or (dash and not days.isdigit()) or len(parts) > 3 \
            or not all(p.isdigit() for p in parts):
        return None
    numbers = [int(p) for p in parts]
    if dash:  # D-HH, D-HH:MM, D-HH:MM:SS
        hours, minutes, seconds = (numbers + [0, 0])[:3]
    else:  # MM, MM:SS, HH:MM:SS
        hours, minutes, seconds = [0, numbers[0], 0] if len(numbers) == 1 else [0] * (3 - len(numbers)) + numbers
    return ((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds


def format_walltime(seconds: int) -> str:
    """The [D-]HH:MM:SS form sbatch reads, from seconds."""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    hms = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{hms}" if days else hms


def parse_memory(value: Any, where: str = "mem") -> int:
    """Megabytes in a user's memory request such as 96G or 96000M (a unit is required)."""
    m = _USER_MEMORY.match(value.strip()) if isinstance(value, str) else None
    if not m:
        raise PlanError(f"{where}={value!r} is not a memory size; use a whole number with a unit, such as 96G or 96000M")
    mb = int(m["amount"]) * _MB_PER_UNIT[m["unit"].upper()]
    if mb < 1:
        raise PlanError(f"{where}={value!r} must be at least 1M")
    return int(mb)


def slurm_megabytes(text: Optional[str], bare_unit: str = "M") -> Optional[float]:
    """Megabytes in a size SLURM printed: `96G`, `4000Mn` (per node), `2000Mc` (per CPU), `1234K`.

    A number without a unit is in `bare_unit`: megabytes from sinfo and scontrol, bytes ("") in
    sacct's MaxRSS. None for anything unreadable."""
    m = _SLURM_MEMORY.match((text or "").strip())
    if not m:
        return None
    return float(m["amount"]) * _MB_PER_UNIT[(m["unit"] or bare_unit).upper()]


def format_memory(megabytes: float) -> str:
    """`96G` when a whole number of gigabytes, else `98000M`: what sbatch --mem reads."""
    mb = int(megabytes)
    return f"{mb // 1024}G" if mb % 1024 == 0 else f"{mb}M"


def parse_count(value: Any, where: str, minimum: int) -> int:
    """A whole number of CPUs (minimum 1) or GPUs (minimum 0)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PlanError(f"{where}={value!r} must be a whole number >= {minimum}")
    return value
