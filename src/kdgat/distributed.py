"""Data-parallel training: the process group of a stage's ranks, and the few things they exchange.

A stage trains data-parallel when several processes (ranks) run it together:
the tasks of a SLURM stage job that asks for N GPUs (the launcher starts one
per GPU with torch.distributed's env:// variables: MASTER_ADDR, MASTER_PORT,
RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE), or the processes
`train.processes=N` spawns here (kdgat.processes). Every rank runs the same
stage code; the rules that keep them in step:

- `train.batch_size` is the global batch: each rank takes its 1/N share of
  every batch (rounded up), so N ranks take the same optimiser steps on the
  same graphs as one process, and the learning rate stays the stage's `lr`
  whatever N is (no scaling rule is needed; a larger `train.batch_size` is the
  user's choice, with the rate they give it);
- every rank takes the same number of steps (the batches come from
  torch's DistributedSampler, which pads the last share), because a rank with
  one batch more would wait for the others until the backend's timeout;
- evaluation is shared out (`share`) and gathered (`gather`), and each
  epoch's validation row is rank 0's (`broadcast`), so every rank takes the
  same early-stopping decision;
- rank 0 alone writes checkpoints, models, metrics, figures, the marker and
  tracking (`is_main`).

Backends: NCCL when the ranks train on CUDA, gloo on CPU. Without a group
(one process) every function here is the identity, so a stage's code is the
same either way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

log = logging.getLogger(__name__)
ENV = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


@dataclass
class _Group:
    rank: int
    size: int
    device: Any  # torch.device the ranks' tensors live on
    sharers: int  # ranks of this node, this one included, whose CPUs overlap this one's


_group: _Group | None = None


def requested() -> int:
    """How many ranks the environment asks this process to join (WORLD_SIZE); 1 when none."""
    size = os.environ.get("WORLD_SIZE", "")
    return int(size) if size.isdigit() and int(size) > 0 else 1


def active() -> bool:
    return _group is not None


def rank() -> int:
    """This process's rank: its group's, or before it joins, the one its environment gives it."""
    if _group:
        return _group.rank
    given = os.environ.get("RANK", "")
    return int(given) if requested() > 1 and given.isdigit() else 0


def size() -> int:
    return _group.size if _group else 1


def is_main() -> bool:
    """Whether this process writes: rank 0, or the only process."""
    return rank() == 0


def cpu_sharers() -> int:
    """How many ranks share this process's CPUs (1 without a group): its threads are its CPUs / this."""
    return _group.sharers if _group else 1


def device() -> Any:
    """The device of this rank (a group's); None without a group."""
    return _group.device if _group else None


@contextlib.contextmanager
def joined(device_setting: str) -> Iterator[None]:
    """Within: this process is one rank of the group its environment names (nothing happens for one process).

    `device_setting` is `train.device`: each rank on CUDA takes the GPU of its local rank (the only one it sees
    when the launcher gave it its own CUDA_VISIBLE_DEVICES), with NCCL; on CPU the ranks use gloo.
    """
    global _group
    if requested() <= 1 or _group is not None:
        yield
        return
    import torch
    import torch.distributed as dist

    from kdgat.errors import KdgatError

    missing = [name for name in ENV[:4] if not os.environ.get(name)]
    if missing:
        raise KdgatError(f"WORLD_SIZE={os.environ['WORLD_SIZE']} but {', '.join(missing)} not set: a process of "
                         "a data-parallel stage needs torch.distributed's env:// variables")
    cuda = device_setting != "cpu" and torch.cuda.is_available()
    if device_setting == "cuda" and not cuda:
        raise KdgatError("train.device=cuda, but torch sees no CUDA device; use train.device=auto or cpu")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        where = torch.device("cuda", local % torch.cuda.device_count())
        torch.cuda.set_device(where)
    else:
        where = torch.device("cpu")
    dist.init_process_group("nccl" if cuda else "gloo", init_method="env://")
    try:
        _group = _Group(dist.get_rank(), dist.get_world_size(), where, 1)
        _group.sharers = _count_sharers()
        log.info(f"rank {_group.rank} of {_group.size} on {where} ({'nccl' if cuda else 'gloo'}), "
                 f"its CPUs shared by {_group.sharers} rank(s)")
        yield
    finally:
        _group = None
        dist.destroy_process_group()


def _count_sharers() -> int:
    """Ranks on this host whose CPU affinity overlaps ours. Tasks that SLURM binds to their own CPUs share
    none; processes started on one set of CPUs (spawned here, or tasks SLURM does not bind) share them all."""
    import torch.distributed as dist

    mine = (socket.gethostname(), sorted(os.sched_getaffinity(0)))
    everyone: list[Any] = [None] * size()
    dist.all_gather_object(everyone, mine)
    return sum(1 for host, cpus in everyone if host == mine[0] and set(cpus) & set(mine[1]))


def broadcast(obj: Any) -> Any:
    """Rank 0's `obj`, on every rank."""
    if not active():
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sums(*values: float) -> list[float]:
    """Each value summed over the ranks."""
    if not active():
        return [float(v) for v in values]
    import torch
    import torch.distributed as dist

    total = torch.tensor(values, dtype=torch.float64, device=_group.device)
    dist.all_reduce(total)
    return total.tolist()


def average(total: float, count: float) -> float:
    """sum(total) / sum(count) over the ranks: a mean over every rank's examples."""
    total, count = sums(total, count)
    return total / max(count, 1.0)


def all_agree(flag: bool) -> bool:
    """Whether `flag` is true on every rank."""
    return sums(0.0 if flag else 1.0)[0] == 0.0


def share(n: int) -> slice:
    """This rank's block of `n` items for evaluation: contiguous, ranks in order, so `gather` restores the order."""
    per = -(-n // size())
    return slice(min(n, rank() * per), min(n, (rank() + 1) * per))


def gather(part: np.ndarray) -> np.ndarray:
    """Every rank's `part`, concatenated in rank order, on every rank."""
    if not active():
        return part
    import torch.distributed as dist

    parts: list[Any] = [None] * size()
    dist.all_gather_object(parts, part)
    return np.concatenate(parts)


def rank_batch(batch_size: int) -> int:
    """Graphs per rank in each step for a global `batch_size` (rounded up to a multiple of the ranks)."""
    return max(1, -(-int(batch_size) // size()))


def wrap(model: Any) -> Any:
    """`model` in DistributedDataParallel when there is a group, else `model` itself.

    Buffers are synchronised once, when it is wrapped, not at every step: the per-ID profile is fitted
    identically on every rank, and evaluation calls the bare model with unequal batch counts across ranks.
    """
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [_group.device.index] if _group.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, forward_sync_buffers=False)


def free_port() -> int:
    """A TCP port free on this host now, for a group spawned here (MASTER_PORT)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
