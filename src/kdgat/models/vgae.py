"""Variational graph autoencoder over CAN windows.

Trained on normal windows only; a window whose nodes it reconstructs badly is
anomalous. Written as one module around PyG's ``GATConv`` (the encoder of
PyG's ``VGAE`` example, with a GAT in place of the GCN and log-variance in
place of log-std), because the decoders here reconstruct node attributes
rather than only the adjacency::

    node_id ─ profile ─ Embedding ─┐
                                   cat ─ GATConv x k ─┬─ Linear ─ mu ────┐
    x ─────────────────────────────┘                  └─ Linear ─ logvar ┴─ z = mu + eps * exp(logvar / 2)
    z ─ Linear ─ ReLU ─┬─ Linear ─ x_hat          (node features, MSE)
                       ├─ Linear ─ id_logits      (the node's own CAN id, cross-entropy over the id classes)
                       └─ Linear ─ nbr_logits     (multi-hot of the CAN ids it has edges to, BCE)

ID classes: the model only ever sees normal traffic, so it decodes over the
IDs that normal training traffic has (``kdgat.models.profile``: the IDs seen in
at least 5 normal training windows, renumbered 1..K) plus class 0 for every
other ID, rather than over the whole vocabulary, which on a fuzzed capture
holds thousands of random IDs that no normal window contains. ``classes``
(K + 1) is fixed when the stage builds the model from its training data;
left out, it is the vocabulary size (every ID its own class).

Neighbour decoder: for each node, the set of ID classes of its out-neighbours
in the window (the ids of the frames that directly follow its frames) as a
multi-hot vector, scored with binary cross-entropy **summed over the
classes** (averaged over nodes). It was chosen over PyG's inner-product edge
decoder because it is a per-node error, which is what the anomaly score takes
the maximum of, and because it knows *which* ids normally follow an id, not
only whether two nodes of this window are linked. Its output bias starts at
``-log(classes)`` (neighbour sets are sparse).

Loss per batch (means over nodes)::

    MSE(x_hat, x) + 0.1 * CE(id) + 0.01 * KL + neighbor_weight * BCE_sum(nbr)   (neighbor_weight = 0.01)

with ``KL = -1/2 * sum_d (1 + logvar - mu^2 - exp(logvar))`` per node.

Anomaly score (``anomaly_score``), per graph the **maximum over its nodes**
of a node score that adds two reconstruction errors, each put on a common
scale (``fit_score``, on the normal training windows after training):

- the neighbour error (BCE above): who follows whom, what floods and
  injections change;
- the feature error: the largest, over the node's features, of
  ``|x - x_hat|`` divided by that ID's typical residual for that feature
  (root mean square on normal training nodes, at least 0.01): a payload
  value the ID does not send (a masquerade) stands out even when other IDs'
  fields, such as counters, are never reconstructed closely;

each standardised as ``(error - median) / (99th percentile - median)`` of its
values on normal training nodes, so that neither term drowns the other.
(The ID cross-entropy trains the encoder but is left out of the score: it
mostly repeats what the neighbour error says about unknown IDs.) Before
``fit_score`` the scales are 1 and the centres 0. The score encodes with the
mean ``mu`` (no sampling) and runs in eval mode, so it is deterministic.

Widths follow the GAT classifier: ``hidden`` is per head, heads
concatenated, so the encoder is ``hidden * heads`` wide. Sizes live in the
config (``models.vgae``): teacher 32 per head x 4 heads (128 wide), 3 layers,
latent 32, embedding 32; student 16 per head x 2 heads (32 wide), 2 layers,
latent 16, embedding 8.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GATConv
from torch_geometric.utils import scatter

from kdgat.models.profile import NormalProfile

MIN_RESIDUAL = 0.01  # 1% of a feature's [0, 1] range, two to three byte steps: quantisation noise below it
SCORE_QUANTILE = 0.99


def neighbor_targets(data, num_ids: int, ids: Tensor | None = None) -> Tensor:
    """Multi-hot ``[N, num_ids]``: row i marks the id classes of node i's out-neighbours.

    ``ids`` are the nodes' classes (default: ``data.node_id``)."""
    ids = data.node_id if ids is None else ids
    src, dst = data.edge_index
    target = torch.zeros(data.num_nodes, num_ids, dtype=torch.float32, device=data.x.device)
    target[src, ids[dst]] = 1.0
    return target


def _batch_vector(data) -> tuple[Tensor, int]:
    batch = getattr(data, "batch", None)
    if batch is None:  # a single Data
        return torch.zeros(data.num_nodes, dtype=torch.long, device=data.x.device), 1
    return batch, int(data.num_graphs)


class GraphVGAE(nn.Module):
    """GAT-encoder VGAE reconstructing node features, node CAN id and neighbour ids."""

    def __init__(
        self,
        num_ids: int,
        in_features: int,
        edge_dim: int = 2,
        hidden: int = 32,
        layers: int = 3,
        heads: int = 4,
        latent: int = 32,
        embedding: int = 32,
        dropout: float = 0.0,
        id_weight: float = 0.1,
        kl_weight: float = 0.01,
        neighbor_weight: float = 0.01,
        classes: int | None = None,
    ):
        super().__init__()
        if layers < 1:
            raise ValueError("GraphVGAE needs at least one encoder layer")
        classes = num_ids if classes is None else int(classes)
        self.config = dict(num_ids=num_ids, in_features=in_features, edge_dim=edge_dim, hidden=hidden,
                           layers=layers, heads=heads, latent=latent, embedding=embedding, dropout=dropout,
                           id_weight=id_weight, kl_weight=kl_weight, neighbor_weight=neighbor_weight,
                           classes=classes)  # fmt: skip
        self.num_ids = num_ids
        self.classes = classes
        self.dropout = dropout
        self.id_weight, self.kl_weight, self.neighbor_weight = id_weight, kl_weight, neighbor_weight
        width = hidden * heads

        # encoder
        self.profile = NormalProfile(num_ids, in_features, classes=classes)
        self.id_embedding = nn.Embedding(classes, embedding)
        self.convs = nn.ModuleList(
            GATConv(embedding + in_features if i == 0 else width, hidden, heads=heads, edge_dim=edge_dim)
            for i in range(layers)
        )
        self.mu = nn.Linear(width, latent)
        self.logvar = nn.Linear(width, latent)

        # decoders
        self.decoder = nn.Sequential(nn.Linear(latent, width), nn.ReLU())
        self.feature_head = nn.Linear(width, in_features)
        self.id_head = nn.Linear(width, classes)
        self.neighbor_head = nn.Linear(width, classes)
        nn.init.constant_(self.neighbor_head.bias, -math.log(max(classes, 2)))

        # anomaly-score scales (fit_score): per-class feature residual, and centre/scale of the two terms
        self.register_buffer("residual_scale", torch.ones(classes, in_features))
        self.register_buffer("score_center", torch.zeros(2))
        self.register_buffer("score_scale", torch.ones(2))

    # ------------------------------------------------------------------ encoder / decoder

    def encode(self, data) -> tuple[Tensor, Tensor]:
        """Per-node ``(mu, logvar)``, each ``[N, latent]``."""
        h = torch.cat([self.id_embedding(self.profile.ids(data.node_id)), data.x], dim=-1)
        for conv in self.convs:
            h = F.elu(conv(h, data.edge_index, data.edge_attr))
            h = F.dropout(h, p=self.dropout, training=self.training)
        return self.mu(h), self.logvar(h).clamp(-10.0, 10.0)

    def reparameterize(self, mu: Tensor, logvar: Tensor) -> Tensor:
        """A sample ``mu + eps * std`` when training, the mean ``mu`` otherwise."""
        if not self.training:
            return mu
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def decode(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(x_hat [N, F], id_logits [N, C], nbr_logits [N, C])``."""
        h = self.decoder(z)
        return self.feature_head(h), self.id_head(h), self.neighbor_head(h)

    def forward(self, data) -> dict[str, Tensor]:
        mu, logvar = self.encode(data)
        z = self.reparameterize(mu, logvar)
        x_hat, id_logits, nbr_logits = self.decode(z)
        return dict(mu=mu, logvar=logvar, z=z, x_hat=x_hat, id_logits=id_logits, nbr_logits=nbr_logits)

    # ------------------------------------------------------------------ losses and scores

    def node_errors(self, data, out: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        """Per-node reconstruction errors ``[N]``: ``feature`` (MSE averaged over features),
        ``id`` (cross-entropy), ``neighbor`` (BCE summed over the classes), ``kl``; and
        ``residual`` ``[N, F]``, the absolute feature residuals."""
        out = self.forward(data) if out is None else out
        mu, logvar = out["mu"], out["logvar"]
        ids = self.profile.ids(data.node_id)
        residual = out["x_hat"] - data.x
        return dict(
            feature=residual.pow(2).mean(dim=-1),
            id=F.cross_entropy(out["id_logits"], ids, reduction="none"),
            neighbor=F.binary_cross_entropy_with_logits(
                out["nbr_logits"], neighbor_targets(data, self.classes, ids), reduction="none"
            ).sum(dim=-1),
            kl=-0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1),
            residual=residual.abs(),
        )

    def _recon(self, err: dict[str, Tensor]) -> Tensor:
        return err["feature"] + self.id_weight * err["id"] + self.neighbor_weight * err["neighbor"]

    def loss(self, data) -> tuple[Tensor, dict[str, float]]:
        """Training loss (scalar) and its parts (floats, means over nodes) for logging."""
        err = self.node_errors(data)
        total = self._recon(err).mean() + self.kl_weight * err["kl"].mean()
        parts = {k: float(v.detach().mean()) for k, v in err.items() if k != "residual"}
        parts["loss"] = float(total.detach())
        return total, parts

    def _terms(self, data) -> tuple[Tensor, Tensor]:
        """Per node: the neighbour error and the largest scaled feature residual (both unstandardised)."""
        err = self.node_errors(data)
        ids = self.profile.ids(data.node_id)
        return err["neighbor"], (err["residual"] / self.residual_scale[ids]).amax(dim=-1)

    @torch.no_grad()
    def node_scores(self, data) -> Tensor:
        """Per-node anomaly score ``[N]``, deterministic (encodes with ``mu``)."""
        was_training = self.training
        self.eval()
        try:
            terms = torch.stack(self._terms(data), dim=-1)
            return ((terms - self.score_center) / self.score_scale).sum(dim=-1)
        finally:
            self.train(was_training)

    @torch.no_grad()
    def anomaly_score(self, data) -> Tensor:
        """Per-graph anomaly score ``[G]``: the maximum over the graph's nodes of ``node_scores``."""
        batch, num_graphs = _batch_vector(data)
        return scatter(self.node_scores(data), batch, dim=0, dim_size=num_graphs, reduce="max")

    @torch.no_grad()
    def fit_score(self, batches: Iterable) -> "GraphVGAE":
        """Set the score's scales from normal training windows (after training; no gradients).

        One pass over the batches, keeping per-node errors on the CPU: a GPU would otherwise hold
        every batch of the training split at once."""
        was_training = self.training
        self.eval()
        try:
            ids, residuals, neighbors = [], [], []
            for data in batches:
                err = self.node_errors(data)
                ids.append(self.profile.ids(data.node_id).cpu())
                residuals.append(err["residual"].cpu())
                neighbors.append(err["neighbor"].cpu())
            if not ids:
                return self
            ids, residuals, neighbor = torch.cat(ids), torch.cat(residuals), torch.cat(neighbors)
            sq = torch.zeros(self.residual_scale.shape, dtype=residuals.dtype).index_add_(0, ids, residuals.pow(2))
            count = torch.bincount(ids, minlength=self.classes).to(sq.dtype).unsqueeze(1)
            overall = residuals.pow(2).mean(dim=0).sqrt()
            rms = torch.where(count > 0, (sq / count.clamp(min=1)).sqrt(), overall).clamp(min=MIN_RESIDUAL)
            self.residual_scale.copy_(rms)
            terms = torch.stack([neighbor, (residuals / rms[ids]).amax(dim=-1)], dim=-1)  # as _terms gives them
            center = terms.median(dim=0).values
            spread = _quantile(terms, SCORE_QUANTILE) - center
            self.score_center.copy_(center)
            self.score_scale.copy_(torch.where(spread > 0, spread, torch.ones_like(spread)))
        finally:
            self.train(was_training)
        return self


def _quantile(values: Tensor, q: float) -> Tensor:
    """torch.quantile's linear interpolation along dim 0, without its limit of 2**24 elements."""
    ordered = values.sort(dim=0).values
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


VGAE = GraphVGAE  # the name the stage list uses
