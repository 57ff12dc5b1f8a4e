"""Variational graph autoencoder over CAN windows (SPEC §5 ``autoencoder``).

Trained on normal windows only; a window whose nodes it reconstructs badly is
anomalous. Written as one module around PyG's ``GATConv`` (the encoder of
PyG's ``VGAE`` example, with a GAT in place of the GCN and log-variance in
place of log-std), because the decoders here reconstruct node attributes
rather than only the adjacency::

    node_id ─ Embedding ─┐
                         cat ─ GATConv x k ─┬─ Linear ─ mu ────┐
    x ───────────────────┘                  └─ Linear ─ logvar ┴─ z = mu + eps * exp(logvar / 2)
    z ─ Linear ─ ReLU ─┬─ Linear ─ x_hat          (node features, MSE)
                       ├─ Linear ─ id_logits      (the node's own CAN id, cross-entropy over the vocabulary)
                       └─ Linear ─ nbr_logits     (multi-hot of the CAN ids it has edges to, BCE)

Neighbour decoder: for each node, the set of vocabulary ids of its
out-neighbours in the window (the ids of the frames that directly follow its
frames) as a multi-hot vector over the vocabulary, scored with binary
cross-entropy **summed over the vocabulary** (averaged over nodes). It was
chosen over PyG's inner-product edge decoder because it is a per-node error,
which is what the anomaly score takes the maximum of, and because it knows
*which* ids normally follow an id, not only whether two nodes of this window
are linked. Its output bias starts at ``-log(num_ids)`` (neighbour sets are
sparse), so the untrained term is about (out-degree · log num_ids) rather
than num_ids · log 2.

Loss per batch (means over nodes)::

    MSE(x_hat, x) + 0.1 * CE(id) + 0.01 * KL + neighbor_weight * BCE_sum(nbr)   (neighbor_weight = 0.01)

with ``KL = -1/2 * sum_d (1 + logvar - mu^2 - exp(logvar))`` per node.

Anomaly score (``anomaly_score``): per node, the same weighted
reconstruction errors without the KL (feature MSE averaged over features +
0.1 * id CE + 0.01 * neighbour BCE); per graph, the **maximum over its nodes**.
It encodes with the mean ``mu`` (no sampling) and runs in eval mode, so it
is deterministic.

Widths follow the GAT classifier: ``hidden`` is per head, heads
concatenated, so the encoder is ``hidden * heads`` wide. Sizes live in the
config (``models.vgae``): teacher 32 per head x 4 heads (128 wide), 3 layers,
latent 32, embedding 32; student 16 per head x 2 heads (32 wide), 2 layers,
latent 16, embedding 8.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GATConv
from torch_geometric.utils import scatter

def neighbor_targets(data, num_ids: int) -> Tensor:
    """Multi-hot ``[N, num_ids]``: row i marks the vocabulary ids of node i's out-neighbours."""
    src, dst = data.edge_index
    target = torch.zeros(data.num_nodes, num_ids, dtype=torch.float32, device=data.x.device)
    target[src, data.node_id[dst]] = 1.0
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
    ):
        super().__init__()
        if layers < 1:
            raise ValueError("GraphVGAE needs at least one encoder layer")
        self.config = dict(num_ids=num_ids, in_features=in_features, edge_dim=edge_dim, hidden=hidden,
                           layers=layers, heads=heads, latent=latent, embedding=embedding, dropout=dropout,
                           id_weight=id_weight, kl_weight=kl_weight, neighbor_weight=neighbor_weight)  # fmt: skip
        self.num_ids = num_ids
        self.dropout = dropout
        self.id_weight, self.kl_weight, self.neighbor_weight = id_weight, kl_weight, neighbor_weight
        width = hidden * heads

        # encoder
        self.id_embedding = nn.Embedding(num_ids, embedding)
        self.convs = nn.ModuleList(
            GATConv(embedding + in_features if i == 0 else width, hidden, heads=heads, edge_dim=edge_dim)
            for i in range(layers)
        )
        self.mu = nn.Linear(width, latent)
        self.logvar = nn.Linear(width, latent)

        # decoders
        self.decoder = nn.Sequential(nn.Linear(latent, width), nn.ReLU())
        self.feature_head = nn.Linear(width, in_features)
        self.id_head = nn.Linear(width, num_ids)
        self.neighbor_head = nn.Linear(width, num_ids)
        nn.init.constant_(self.neighbor_head.bias, -math.log(max(num_ids, 2)))

    # ------------------------------------------------------------------ encoder / decoder

    def encode(self, data) -> tuple[Tensor, Tensor]:
        """Per-node ``(mu, logvar)``, each ``[N, latent]``."""
        h = torch.cat([self.id_embedding(data.node_id), data.x], dim=-1)
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
        """``(x_hat [N, F], id_logits [N, V], nbr_logits [N, V])``."""
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
        ``id`` (cross-entropy), ``neighbor`` (BCE summed over the vocabulary), ``kl``."""
        out = self.forward(data) if out is None else out
        mu, logvar = out["mu"], out["logvar"]
        return dict(
            feature=F.mse_loss(out["x_hat"], data.x, reduction="none").mean(dim=-1),
            id=F.cross_entropy(out["id_logits"], data.node_id, reduction="none"),
            neighbor=F.binary_cross_entropy_with_logits(
                out["nbr_logits"], neighbor_targets(data, self.num_ids), reduction="none"
            ).sum(dim=-1),
            kl=-0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1),
        )

    def _recon(self, err: dict[str, Tensor]) -> Tensor:
        return err["feature"] + self.id_weight * err["id"] + self.neighbor_weight * err["neighbor"]

    def loss(self, data) -> tuple[Tensor, dict[str, float]]:
        """Training loss (scalar) and its parts (floats, means over nodes) for logging."""
        err = self.node_errors(data)
        total = self._recon(err).mean() + self.kl_weight * err["kl"].mean()
        parts = {k: float(v.detach().mean()) for k, v in err.items()}
        parts["loss"] = float(total.detach())
        return total, parts

    @torch.no_grad()
    def node_scores(self, data) -> Tensor:
        """Per-node weighted reconstruction error ``[N]``, deterministic (encodes with ``mu``)."""
        was_training = self.training
        self.eval()
        try:
            return self._recon(self.node_errors(data))
        finally:
            self.train(was_training)

    @torch.no_grad()
    def anomaly_score(self, data) -> Tensor:
        """Per-graph anomaly score ``[G]``: the maximum over the graph's nodes of ``node_scores``."""
        batch, num_graphs = _batch_vector(data)
        return scatter(self.node_scores(data), batch, dim=0, dim_size=num_graphs, reduce="max")


VGAE = GraphVGAE  # the name SPEC §5 uses
