"""GraphSets as PyTorch Geometric data: a lazy per-graph view, and whole batches made with array ops.

torch and torch_geometric are imported inside the functions, because the
launcher and ``--cfg job`` import kdgat.data and must never import torch.

A batch is built through PyG's public API only: ``Batch(...)`` with the
tensors ``Batch.from_data_list`` would make, ``batch`` and ``ptr`` included
(``num_graphs`` comes from ``ptr``). What such a Batch lacks is PyG's private
bookkeeping for splitting it back into graphs, so ``Batch.get_example``,
``index_select``, ``to_data_list`` and integer indexing raise on it; nothing
in kdgat calls them (a graph of a set is ``PygGraphs[i]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from kdgat.data.graphset import GraphSet


class PygGraphs:
    """Map-style dataset over a GraphSet for ``torch_geometric.loader.DataLoader``.

    Indexing returns a ``Data`` with ``x``, ``node_id`` (vocabulary index),
    ``edge_index``, ``edge_attr`` and ``y`` (shape [1]) whose tensors are views
    of a few whole-set tensors; nothing per graph is kept between calls, unlike
    a list of 10^5 Data objects. ``loader`` skips Data objects altogether.
    """

    def __init__(self, graphs: GraphSet):
        import torch

        self.graphs = graphs
        self._x = torch.from_numpy(np.ascontiguousarray(graphs.x))
        self._node_id = torch.from_numpy(np.ascontiguousarray(graphs.node_id))
        # a graph's edge_index is a (2, e) column slice of this: a view, like InMemoryDataset's
        self._edge_index = torch.from_numpy(np.ascontiguousarray(graphs.edge_index))
        self._edge_attr = torch.from_numpy(np.ascontiguousarray(graphs.edge_attr))
        self._y = torch.from_numpy(np.ascontiguousarray(graphs.y))
        self._node_ptr = graphs.node_ptr.tolist()
        self._edge_ptr = graphs.edge_ptr.tolist()

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, i: int):
        from torch_geometric.data import Data

        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"graph {i} out of range for {len(self)} graphs")
        a, b = self._node_ptr[i], self._node_ptr[i + 1]
        c, d = self._edge_ptr[i], self._edge_ptr[i + 1]
        return Data(
            x=self._x[a:b],
            node_id=self._node_id[a:b],
            edge_index=self._edge_index[:, c:d],
            edge_attr=self._edge_attr[c:d],
            y=self._y[i : i + 1],
        )

    def collate(self, indices: Sequence[int] | np.ndarray):
        """The graphs ``indices`` as one ``torch_geometric.data.Batch``, built with
        whole-array ops (the tensors ``Batch.from_data_list`` gives, without the Data objects)."""
        return collate_batch(self.graphs, indices)

    def loader(self, batch_size: int, shuffle: bool = False, seed: int = 0, drop_last: bool = False,
               ranks: tuple[int, int] | None = None, **kwargs):
        """A ``torch.utils.data.DataLoader`` yielding ``Batch`` objects made by ``collate``.

        ``ranks=(rank, size)``: this rank's share of the graphs, through torch's ``DistributedSampler``
        (every rank the same number of graphs, the last share padded). Its shuffle draws the same
        permutation from ``seed`` as the single-process shuffle does, so with ``batch_size`` = B / size the
        ranks' k-th batches together are the single process's k-th batch of B graphs.
        Extra keyword arguments (``num_workers``, ``pin_memory``...) go to the DataLoader.
        """
        import torch

        dataset = _BatchedGraphs(self.graphs)
        if ranks is not None:
            sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=ranks[1], rank=ranks[0],
                                                          shuffle=shuffle, seed=seed, drop_last=False)
            return torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=sampler,
                                               drop_last=drop_last, collate_fn=_first_and_only, **kwargs)
        # The permutation DistributedSampler draws (DataLoader's own shuffle first takes a number from the
        # generator for its workers' seeds, and so would draw another).
        order = None
        if shuffle:
            order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed)).tolist()
        return torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, sampler=order, drop_last=drop_last, collate_fn=_first_and_only, **kwargs,
        )


class _BatchedGraphs:
    """DataLoader dataset whose ``__getitems__`` hands over a whole Batch at once."""

    def __init__(self, graphs: GraphSet):
        self.graphs = graphs

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, i: int):
        return collate_batch(self.graphs, [i])

    def __getitems__(self, indices: list[int]):
        return collate_batch(self.graphs, indices)


def _first_and_only(batch):
    """collate_fn for _BatchedGraphs: the fetched object is already the Batch."""
    return batch


def collate_batch(graphs: GraphSet, indices: Sequence[int] | np.ndarray):
    """``Batch.from_data_list([graph i for i in indices])``'s tensors, without per-graph objects."""
    import torch
    from torch_geometric.data import Batch

    sub = graphs.subset(np.asarray(indices, dtype=np.int64))
    n_nodes = np.diff(sub.node_ptr)
    n_edges = np.diff(sub.edge_ptr)
    return Batch(
        x=torch.from_numpy(sub.x),
        node_id=torch.from_numpy(sub.node_id),
        # each graph's local edge_index, shifted to where its nodes start in the batch
        edge_index=torch.from_numpy(sub.edge_index + np.repeat(sub.node_ptr[:-1], n_edges)),
        edge_attr=torch.from_numpy(sub.edge_attr),
        y=torch.from_numpy(sub.y),
        batch=torch.from_numpy(np.repeat(np.arange(len(sub), dtype=np.int64), n_nodes)),
        ptr=torch.from_numpy(sub.node_ptr),
    )
