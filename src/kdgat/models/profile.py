"""Per-CAN-ID profile of normal traffic: which IDs normal traffic has, and their usual node features.

Every CAN ID has its own payload layout and timing, so "byte 0 is 0.9" means
nothing until one knows the ID: for one ID it is a constant, for another a
signal that never goes above 0.3. A window-level model would have to learn
this ID-by-feature table from the attack windows it sees, and with only a
burst or two of a subtle attack (a masquerade holding one signal out of its
range) it latches onto whatever else happened to be steady during the burst
instead. `NormalProfile` measures the table directly, without gradients, on
the *normal* windows of the training split (never validation or test data):

- `mean[id]`: each node feature's mean for that ID; `deviation` gives a node's
  features minus its ID's mean, in the features' own [0, 1] units (not
  divided by a spread: a slowly drifting signal has a small spread in one
  capture and wanders much further in the next, while an attacker's value
  is a large jump in absolute terms);
- `low`, `high` (with ``envelope=True``, the GAT's): each feature's range for
  that ID on the same nodes, and `excess` how far a node lies outside it.
  Every normal training node is inside (but see ``changed`` below), so the excess is zero on everything
  the model learns as normal and is the one input that says "outside" for
  any value an attacker picks: a classifier given only the value and its
  deviation learns "byte 0 near 0.96 is an attack" from the training
  masquerade burst and misses a test burst that holds the signal at 0.87,
  still far beyond the 0.65 the ECU ever sends (on the default synthetic
  data: masquerade F1 0.76 without the excess, 0.98 with it);
- for ``changed`` (USUAL_FLOOR) the range starts at the ID's mean, not its
  minimum: a rate below the usual one is outside. Normal windows of an ID
  whose signal happened not to change in that window's frame or two are then
  a little outside too (about 0.5 % of them), but a masquerade holds the
  signal for the whole burst, wherever its value lies: on the hcrl_sa-sized
  data the signal drifted, in two test captures, beyond every value the
  training captures show, and only this tells the two apart;
- `id_map`: IDs seen in fewer than `min_count` normal training windows have no
  reliable profile and share the unknown slot (index 0) of the vocabulary.
  That slot is thereby trained on exactly the kind of ID a model meets
  unknown at test time (a fuzzer's random IDs, a flood's ID 0).

With `classes` smaller than the vocabulary, the known IDs are renumbered
1..K in vocabulary order (0 = every other ID): the VGAE, which only ever sees
normal traffic, decodes over these K + 1 classes instead of the whole
vocabulary (which on a fuzzed capture holds ~2,000 random IDs).

The table lives in buffers: saved with the model's state_dict, restored with it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdgat.data.features import NODE_FEATURES

MIN_COUNT = 5  # normal training windows an ID needs to get its own profile
# Features whose normal range starts at the ID's mean, not its minimum: `changed`, how many payload bytes
# differ from the ID's previous frame. One window holds a pair or two of an ID's frames, and a signal's
# low byte stays the same in about one pair of ten, so the minimum over thousands of normal windows is 0,
# which is exactly what an attacker holding the signal shows. Below the usual rate counts as outside.
USUAL_FLOOR = tuple(NODE_FEATURES.index(name) for name in ("changed",))  # in units of 1/8 (kdgat.data.features)


class NormalProfile(nn.Module):
    """Known IDs and per-ID feature means on normal training windows (buffers, no parameters)."""

    def __init__(self, num_ids: int, num_features: int, classes: int | None = None, min_count: int = MIN_COUNT,
                 envelope: bool = False):
        super().__init__()
        self.envelope = bool(envelope)
        # kdgat's node features: their rates floor at the ID's mean (any other feature set: plain ranges)
        self.usual_floor = list(USUAL_FLOOR) if num_features == len(NODE_FEATURES) else []
        self.num_ids = int(num_ids)
        self.classes = self.num_ids if classes is None else int(classes)
        if not 1 <= self.classes <= self.num_ids:
            raise ValueError(f"profile: classes must be in 1..{num_ids}, got {classes}")
        self.min_count = int(min_count)
        # Until `fit` is called: every ID that has a class is known, means 0.
        ids = torch.arange(self.num_ids, dtype=torch.long)
        self.register_buffer("id_map", torch.where(ids < self.classes, ids, torch.zeros_like(ids)))
        self.register_buffer("mean", torch.zeros(self.num_ids, num_features))
        if self.envelope:  # until `fit`: nothing is outside
            self.register_buffer("low", torch.full((self.num_ids, num_features), -torch.inf))
            self.register_buffer("high", torch.full((self.num_ids, num_features), torch.inf))

    @staticmethod
    def known(node_id: np.ndarray, num_ids: int, min_count: int = MIN_COUNT) -> np.ndarray:
        """Boolean [num_ids]: the IDs with a profile (never the unknown slot 0)."""
        counts = np.bincount(np.asarray(node_id, dtype=np.int64), minlength=num_ids)[:num_ids]
        known = counts >= min_count
        known[0] = False
        return known

    @classmethod
    def classes_for(cls, node_id: np.ndarray, num_ids: int, min_count: int = MIN_COUNT) -> int:
        """How many ID classes a model of normal traffic needs: the known IDs, plus 0 for every other."""
        return int(cls.known(node_id, num_ids, min_count).sum()) + 1

    @torch.no_grad()
    def fit(self, node_id: np.ndarray, x: np.ndarray) -> "NormalProfile":
        """Measure the profile from the nodes of normal training windows (`node_id` [N], `x` [N, F])."""
        node_id = np.asarray(node_id, dtype=np.int64)
        x = np.asarray(x, dtype=np.float64)
        num_features = self.mean.shape[1]
        if x.ndim != 2 or x.shape != (len(node_id), num_features):
            raise ValueError(f"profile: x must be [{len(node_id)}, {num_features}], got {x.shape}")
        known = self.known(node_id, self.num_ids, self.min_count)
        if self.classes < self.num_ids:
            if known.sum() + 1 > self.classes:
                raise ValueError(f"profile: {int(known.sum())} known IDs do not fit in {self.classes} classes")
            id_map = np.where(known, np.cumsum(known), 0)
        else:
            id_map = np.where(known, np.arange(self.num_ids), 0)
        counts = np.bincount(node_id, minlength=self.num_ids)[: self.num_ids]
        sums = np.zeros((self.num_ids, num_features))
        np.add.at(sums, node_id, x)
        mean = sums / np.maximum(counts, 1)[:, None]
        overall = x.mean(axis=0) if len(x) else np.zeros(num_features)
        mean = np.where(known[:, None], mean, overall)  # unknown IDs: the mean of all normal nodes
        dev = self.mean.device
        self.id_map.copy_(torch.from_numpy(id_map).to(dev))
        self.mean.copy_(torch.from_numpy(mean).float().to(dev))
        if self.envelope:
            low, high = np.full_like(mean, np.inf), np.full_like(mean, -np.inf)
            np.minimum.at(low, node_id, x)
            np.maximum.at(high, node_id, x)
            if len(x):  # unknown IDs: the range of all normal nodes
                low = np.where(known[:, None], low, x.min(axis=0))
                high = np.where(known[:, None], high, x.max(axis=0))
            k = self.usual_floor  # a rate held below the ID's usual one is outside
            low[:, k] = np.maximum(low[:, k], mean[:, k])
            self.low.copy_(torch.from_numpy(low).float().to(dev))
            self.high.copy_(torch.from_numpy(high).float().to(dev))
        return self

    def ids(self, node_id: Tensor) -> Tensor:
        """Class of each node: its known ID's index (renumbered when compact), else 0."""
        return self.id_map[node_id]

    def deviation(self, node_id: Tensor, x: Tensor) -> Tensor:
        """Each node's features minus its ID's normal mean, ``[N, F]`` (node_id: vocabulary indices)."""
        return x - self.mean[node_id]

    def excess(self, node_id: Tensor, x: Tensor) -> Tensor:
        """How far each feature lies outside its ID's normal range, ``[N, F]``, >= 0 (needs ``envelope``).

        For a USUAL_FLOOR rate, the share of the ID's usual rate that is missing (a signal held still: 1
        where one byte of the ID changes each frame and none did), so that an ID whose frames change many
        bytes and one that changes one byte say "held" alike."""
        low = self.low[node_id]
        out = F.relu(x - self.high[node_id]) + F.relu(low - x)
        if self.usual_floor:
            k = self.usual_floor
            out[:, k] = out[:, k] / low[:, k].clamp(min=1 / 8)
        return out


def normal_nodes(graphs) -> tuple[np.ndarray, np.ndarray]:
    """(node_id, x) of every node of the normal (y = 0) windows of a kdgat GraphSet."""
    per_node_label = np.repeat(np.asarray(graphs.y), np.diff(graphs.node_ptr))
    keep = per_node_label == 0
    return graphs.node_id[keep], graphs.x[keep]
