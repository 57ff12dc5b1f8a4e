"""Which stage jobs of a sweep go to SLURM as job arrays: pure planning, no SLURM.

In a `-m` sweep, stage k of every chain with the same stages and the same
resources is one array, task i belonging to chain i, and stage k+1's array
waits on it task by task (`--dependency=aftercorr:<array>`): dataset A's GAT
starts when dataset A's VGAE is done, whatever dataset B's does. That pairing
is why only chains whose submitted stages line up exactly (same names, same
needs, same sbatch parameters, after resume has dropped what is done) share
arrays, and why an array too long for the cluster's MaxArraySize is cut into
chunks that every stage of the group cuts the same way. A chain that waits on
a job outside this sweep (a stage attached to an already queued job, or
shared with another chain) keeps its single jobs.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, Hashable, List, Sequence, Tuple


@dataclass(frozen=True)
class StagePlan:
    """One stage a chain will submit: its needs among the chain's submitted stages, and the sbatch
    parameters that must be equal for two chains' stages to share an array (no name, no dependency)."""

    name: str
    needs: Tuple[str, ...]
    params: Hashable


@dataclass
class Unit:
    """One submission: stage `stage` of the chains `chains` (positions in the sweep's chain list).

    An array when `array`, task i running chains[i]; else a single job of chains[0].
    `after` holds the positions of the units it waits on (all before it in the list)."""

    stage: str
    chains: List[int]
    array: bool
    after: List[int] = field(default_factory=list)


def plan_units(chains: Sequence[Sequence[StagePlan]], arrayable: Sequence[bool], enabled: bool,
               max_array_size: int) -> List[Unit]:
    """The submissions of a sweep, in an order where every unit comes after those it waits on.

    `chains[c]`: chain c's stages to submit, in dependency order; `arrayable[c]`: False when the
    chain waits on jobs outside the sweep. Dependencies of single jobs on the same chain's single
    jobs are in `after` too; waits on jobs outside the sweep are the caller's to add.
    """
    if max_array_size < 1:
        raise ValueError(f"max_array_size must be >= 1, got {max_array_size}")
    groups: Dict[Tuple[StagePlan, ...], List[int]] = {}
    singles: List[int] = []
    for c, stages in enumerate(chains):
        if not stages:
            continue
        if enabled and arrayable[c]:
            groups.setdefault(tuple(stages), []).append(c)
        else:
            singles.append(c)
    units: List[Unit] = []
    for signature, members in groups.items():
        if len(members) == 1:
            singles.append(members[0])
            continue
        for start in range(0, len(members), max_array_size):
            chunk = members[start:start + max_array_size]
            _add(units, signature, chunk, array=len(chunk) > 1)  # a lone remainder is a plain chain
    for c in sorted(singles):
        _add(units, tuple(chains[c]), [c], array=False)
    return units


def _add(units: List[Unit], stages: Tuple[StagePlan, ...], members: List[int], array: bool) -> None:
    position: Dict[str, int] = {}
    for stage in stages:
        after = [position[n] for n in stage.needs if n in position]
        units.append(Unit(stage=stage.name, chains=list(members), array=array, after=after))
        position[stage.name] = len(units) - 1


def frozen(value: Any) -> Hashable:
    """A hashable, order-independent copy of sbatch parameters (nested dicts and lists)."""
    if isinstance(value, dict):
        return tuple(sorted((k, frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(frozen(v) for v in value)
    return value
