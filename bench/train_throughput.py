"""Benchmark: training throughput (graphs/s) of our GAT and VGAE steps against a bare PyG loop.

    .venv/bin/python bench/train_throughput.py                    # teacher sizes, 60k frames
    .venv/bin/python bench/train_throughput.py --frames 200000 --epochs 3 --models gat

OURS is what the stages run: batches from kdgat's own loader
(``GraphSet.as_dataset().loader(batch_size, shuffle=True, seed=...)``), the
stage's model class with its per-ID profile fitted on the normal windows
(kdgat.models.profile), Adam, and the stage's step (cross-entropy for the
GAT, ``GraphVGAE.loss`` on normal windows for the VGAE).

BARE is the textbook PyTorch Geometric loop: a Python list with one
``torch_geometric.data.Data`` per graph (its own tensors) and
``torch_geometric.loader.DataLoader(list, batch_size, shuffle=True)``, with the
same model (a copy of the same initial weights), optimizer, step, batch size
and graphs.

The graphs come from kdgat.data.synth.traffic.generate_frames (attack-free traffic
plus traffic with every attack) and kdgat.data.windows.build_graphs. Each
measurement is one untimed warm-up epoch, then ``--epochs`` timed epochs;
OURS and BARE alternate ``--repeat`` times and the best rate of each is
reported. Goal: OURS >= 0.9 x BARE.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def make_graphs(frames: int, seed: int):
    from kdgat.data.graphset import GraphSet
    from kdgat.data.vocabulary import Vocabulary
    from kdgat.data.windows import build_graphs
    from kdgat.data.synth.traffic import ATTACKS, generate_frames
    from kdgat.data.synth.vehicle import make_profile

    rng = np.random.default_rng(seed)
    profile = make_profile(rng)
    parts = [generate_frames(frames // 2, None, rng, profile=profile),
             generate_frames(frames // 2, list(ATTACKS), rng, profile=profile, t0=86_400.0)]
    vocab = Vocabulary.from_frames(parts)
    return GraphSet.concat([build_graphs(p, vocab, 100, 100) for p in parts]), len(vocab)


def data_list(graphs):
    """One Data per graph with its own tensors: what a bare PyG user builds."""
    import torch
    from torch_geometric.data import Data

    out = []
    for i in range(len(graphs)):
        a, b = graphs.node_ptr[i], graphs.node_ptr[i + 1]
        c, d = graphs.edge_ptr[i], graphs.edge_ptr[i + 1]
        out.append(Data(x=torch.tensor(graphs.x[a:b]), node_id=torch.tensor(graphs.node_id[a:b]),
                        edge_index=torch.tensor(graphs.edge_index[:, c:d]),
                        edge_attr=torch.tensor(graphs.edge_attr[c:d]), y=torch.tensor(graphs.y[i:i + 1])))
    return out


def models(num_ids: int, graphs):
    """(name, model, step) for the GAT and the VGAE, teacher sizes, profiles fitted as the stages do."""
    import torch.nn.functional as F
    from omegaconf import OmegaConf

    from kdgat.data.features import EDGE_FEATURES, NODE_FEATURES
    from kdgat.models.gat import GATClassifier
    from kdgat.models.profile import NormalProfile, normal_nodes
    from kdgat.models.vgae import GraphVGAE

    sizes = OmegaConf.load(ROOT / "conf" / "config.yaml").models
    feats = dict(in_features=len(NODE_FEATURES), edge_dim=len(EDGE_FEATURES))
    node_id, x = normal_nodes(graphs)
    gat = GATClassifier(num_ids=num_ids, **feats, **dict(sizes.gat.teacher))
    gat.profile.fit(node_id, x)
    classes = NormalProfile.classes_for(node_id, num_ids)
    vgae = GraphVGAE(num_ids=num_ids, classes=classes, **feats, **dict(sizes.vgae.teacher))
    vgae.profile.fit(node_id, x)
    return {
        "gat": (gat, lambda m, b: F.cross_entropy(m(b), b.y), graphs),
        "vgae": (vgae, lambda m, b: m.loss(b)[0], graphs.subset(np.flatnonzero(graphs.y == 0))),
    }


def run_epochs(model, step, batches_for_epoch, epochs: int) -> float:
    """Graphs per second over `epochs` timed epochs, after one untimed warm-up epoch."""
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    n, elapsed = 0, 0.0
    for epoch in range(epochs + 1):
        t0 = time.perf_counter()
        seen = 0
        for batch in batches_for_epoch(epoch):
            opt.zero_grad()
            loss = step(model, batch)
            loss.backward()
            opt.step()
            seen += batch.num_graphs
        if epoch:  # epoch 0 is the warm-up
            elapsed += time.perf_counter() - t0
            n += seen
    return n / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=60_000, help="frames generated (half attack-free)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs per measurement")
    ap.add_argument("--repeat", type=int, default=2, help="alternating OURS/BARE measurements per model")
    ap.add_argument("--models", default="gat,vgae")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch
    from torch_geometric.loader import DataLoader

    from kdgat.training import usable_cpus

    torch.set_num_threads(usable_cpus())
    graphs, num_ids = make_graphs(args.frames, args.seed)
    print(f"{len(graphs)} graphs ({int(graphs.y.sum())} attacks), {graphs.num_nodes / len(graphs):.1f} nodes "
          f"and {graphs.num_edges / len(graphs):.1f} edges per graph, vocabulary {num_ids}; batch size "
          f"{args.batch_size}; torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    torch.manual_seed(args.seed)
    built = models(num_ids, graphs)
    ratios = {}
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        model0, step, train = built[name]
        view = train.as_dataset()
        bare_list = data_list(train)

        def ours(epoch, view=view):
            return view.loader(args.batch_size, shuffle=True, seed=epoch)

        def bare(epoch, bare_list=bare_list):
            return DataLoader(bare_list, batch_size=args.batch_size, shuffle=True,
                              generator=torch.Generator().manual_seed(epoch))

        best = {"ours": 0.0, "bare": 0.0}
        for r in range(args.repeat):
            for label, batches in (("ours", ours), ("bare", bare)) if r % 2 == 0 else (("bare", bare), ("ours", ours)):
                torch.manual_seed(args.seed)
                rate = run_epochs(copy.deepcopy(model0), step, batches, args.epochs)
                best[label] = max(best[label], rate)
                print(f"  {name} {label}: {rate:7.1f} graphs/s", flush=True)
        ratios[name] = best["ours"] / best["bare"]
        print(f"{name.upper()} training ({len(train)} graphs): ours {best['ours']:.1f} graphs/s, "
              f"bare PyG {best['bare']:.1f} graphs/s, ratio {ratios[name]:.2f} (goal >= 0.90)", flush=True)
    ok = all(r >= 0.9 for r in ratios.values())
    print("goal met" if ok else "goal NOT met", flush=True)


if __name__ == "__main__":
    main()
