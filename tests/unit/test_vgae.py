"""The graph VGAE: shapes, neighbour targets, a falling loss, anomaly scores that flag outliers, score
scaling over the IDs of normal traffic, parameter counts.

Tiny random graphs built directly with PyG; everything seeded; runs in a few seconds on a 2-core CPU.
"""

from __future__ import annotations

import math

import torch
from torch_geometric.data import Batch, Data

from kdgat.models import count_parameters
from kdgat.models.profile import NormalProfile
from kdgat.models.vgae import GraphVGAE, _quantile, neighbor_targets

from model_inputs import F_IN, SIZES, random_batch, random_graph


def pattern_graph(gen: torch.Generator, n: int = 8) -> Data:
    """A 'normal' window: ids 1..n in a ring, features a fixed function of the id plus small noise."""
    ids = torch.arange(1, n + 1)
    x = torch.stack([(ids * (k + 1) % 7).float() / 7 for k in range(F_IN)], dim=1)
    x = x + 0.02 * torch.randn(n, F_IN, generator=gen)
    ring = torch.stack([torch.arange(n), (torch.arange(n) + 1) % n])
    return Data(x=x, node_id=ids, edge_index=ring, edge_attr=torch.full((n, 2), 0.5), y=torch.tensor([0]))


def test_vgae_shapes_and_neighbor_targets():
    torch.manual_seed(0)
    model = GraphVGAE(10, F_IN, **dict(SIZES.vgae.student))
    batch = random_batch()
    out = model(batch)
    n = batch.num_nodes
    assert out["x_hat"].shape == (n, F_IN)
    assert out["id_logits"].shape == out["nbr_logits"].shape == (n, 10)
    assert out["mu"].shape == out["logvar"].shape == (n, dict(SIZES.vgae.student)["latent"])
    target = neighbor_targets(batch, 10)
    src, dst = batch.edge_index
    assert target[src, batch.node_id[dst]].eq(1).all()
    assert target.sum() == len(set(zip(src.tolist(), batch.node_id[dst].tolist())))
    assert model.anomaly_score(batch).shape == (4,)


def test_vgae_loss_finite_and_decreasing():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    model = GraphVGAE(20, F_IN, **dict(SIZES.vgae.student))
    batch = Batch.from_data_list([random_graph(gen, 6, 20) for _ in range(8)])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.eval()
    before, parts = model.loss(batch)
    assert math.isfinite(before.item()) and set(parts) == {"feature", "id", "neighbor", "kl", "loss"}
    model.train()
    for _ in range(30):
        opt.zero_grad()
        loss, _ = model.loss(batch)
        assert torch.isfinite(loss)
        loss.backward()
        opt.step()
    model.eval()
    after, _ = model.loss(batch)
    assert after.item() < 0.7 * before.item()


def train_vgae(model, batch, steps: int) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        model.loss(batch)[0].backward()
        opt.step()


def test_vgae_anomaly_score_flags_outliers():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = GraphVGAE(20, F_IN, **dict(SIZES.vgae.student))
    train = Batch.from_data_list([pattern_graph(gen) for _ in range(16)])
    train_vgae(model, train, steps=150)

    normal = Batch.from_data_list([pattern_graph(gen) for _ in range(20)])
    outliers = []
    for _ in range(20):
        g = pattern_graph(gen)
        g.x = torch.rand(g.num_nodes, F_IN, generator=gen)  # random features, same ids and ring
        outliers.append(g)
    outliers = Batch.from_data_list(outliers)
    model.train()  # anomaly_score must be deterministic even when called in training mode
    s_normal, s_out = model.anomaly_score(normal), model.anomaly_score(outliers)
    assert model.training  # mode restored
    assert torch.equal(s_normal, model.anomaly_score(normal))
    assert s_out.min() > s_normal.max()
    assert s_out.mean() > 5 * s_normal.mean()
    nodes = model.node_scores(outliers)
    per_graph_max = torch.stack([nodes[outliers.batch == i].max() for i in range(outliers.num_graphs)])
    assert torch.equal(s_out, per_graph_max)  # max over nodes

    # max over nodes: one corrupted node in an otherwise normal window is enough
    g = pattern_graph(gen)
    g.x[3] = torch.rand(F_IN, generator=gen)
    one = model.anomaly_score(Batch.from_data_list([g]))
    assert one.item() > s_normal.max().item()


def test_vgae_decodes_over_the_ids_of_normal_traffic_and_scales_its_score():

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    windows = [pattern_graph(gen) for _ in range(16)]  # ids 1..8 in every window
    normal = Batch.from_data_list(windows)
    node_id, x = normal.node_id.numpy(), normal.x.numpy()
    classes = NormalProfile.classes_for(node_id, 50)
    assert classes == 9
    model = GraphVGAE(50, F_IN, classes=classes, **dict(SIZES.vgae.student))
    model.profile.fit(node_id, x)
    out = model(normal)
    assert out["id_logits"].shape == out["nbr_logits"].shape == (normal.num_nodes, 9)
    train_vgae(model, normal, steps=100)
    model.fit_score([normal])
    assert model.training  # mode restored
    # on the windows it was scaled on, each term's median is 0 and its 99th percentile 1
    model.eval()
    terms = torch.stack(model._terms(normal), dim=-1)
    standard = (terms - model.score_center) / model.score_scale
    assert torch.allclose(standard.median(dim=0).values, torch.zeros(2), atol=1e-5)
    assert torch.allclose(torch.quantile(standard, 0.99, dim=0), torch.ones(2), atol=1e-4)
    assert (model.residual_scale >= 0.01).all()
    # an ID normal traffic never has (30) is class 0, and a window with it scores above every normal one
    g = pattern_graph(gen)
    g.node_id[2] = 30
    assert model.profile.ids(torch.tensor([30])).item() == 0
    assert model.anomaly_score(Batch.from_data_list([g])).item() > model.anomaly_score(normal).max().item()
    # saved and loaded like every model: config + state_dict, scales included
    again = GraphVGAE(**model.config)
    again.load_state_dict(model.state_dict())
    assert torch.equal(again.anomaly_score(normal), model.anomaly_score(normal))


def test_score_quantile_matches_torch_and_has_no_size_limit():
    values = torch.randn(1001, 2, generator=torch.Generator().manual_seed(0))
    for q in (0.0, 0.5, 0.99, 1.0):
        assert torch.allclose(_quantile(values, q), torch.quantile(values, q, dim=0))
    big = torch.arange(2**24 + 3, dtype=torch.float32).unsqueeze(1)  # torch.quantile refuses this many
    assert _quantile(big, 0.5).item() == (2**24 + 2) / 2


def test_vgae_sizes_parameter_counts():
    teacher = count_parameters(GraphVGAE(60, F_IN, **dict(SIZES.vgae.teacher)))
    student = count_parameters(GraphVGAE(60, F_IN, **dict(SIZES.vgae.student)))
    assert student * 4 < teacher
