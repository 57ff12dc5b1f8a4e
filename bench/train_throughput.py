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

DDP (``--ddp``, on by default): seconds per epoch of the same GAT training step
in one process and in two data-parallel processes (kdgat.distributed: each
rank a share of every global batch of ``--batch-size``, gradients averaged by
DistributedDataParallel). On CPU, one process uses every usable CPU and each
of two processes half of them, with gloo; where CUDA is, one GPU against two
(NCCL), when there are two. Each process is spawned fresh, one untimed epoch
first. Goal on CPU: two processes no more than 10 % slower per epoch than one.
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


def _ddp_rank(rank: int, world: int, port: int, args: argparse.Namespace, device: str, out: str) -> None:
    """One process of a DDP measurement (module level: spawned processes get it by name)."""
    import os

    import torch
    import torch.nn.functional as F

    from kdgat import distributed
    from kdgat.training import configure

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
    with distributed.joined(device):
        where = configure(device, args.seed)
        graphs, num_ids = make_graphs(args.frames, args.seed)
        model, _, train = models(num_ids, graphs)["gat"]
        model = model.to(where)
        net = distributed.wrap(model)
        view = train.as_dataset()
        batch = distributed.rank_batch(args.batch_size)

        def batches(epoch):
            loader = view.loader(batch, shuffle=True, seed=epoch,
                                 ranks=(distributed.rank(), distributed.size()) if world > 1 else None)
            return (b.to(where) for b in loader) if where.type != "cpu" else loader

        def step(m, b):
            return F.cross_entropy(m(b), b.y)

        rate = run_epochs(net, step, batches, args.epochs)  # graphs/s of this rank
        if rank == 0:
            seconds = len(train) / (rate * world)  # one epoch: every rank's share of every batch
            Path(out).write_text(f"{seconds} {torch.get_num_threads()} {where}")


def ddp_epoch_seconds(world: int, args: argparse.Namespace, device: str) -> tuple[float, str]:
    import tempfile

    import torch.multiprocessing as mp

    from kdgat.distributed import free_port

    with tempfile.TemporaryDirectory() as folder:
        out = str(Path(folder) / "result")
        mp.spawn(_ddp_rank, args=(world, free_port(), args, device, out), nprocs=world, join=True)
        seconds, threads, where = Path(out).read_text().split()
    return float(seconds), f"{world} process{'es' if world > 1 else ''} x {threads} thread(s) on {where}"


def ddp_rows(args: argparse.Namespace) -> None:
    import torch

    cuda = torch.cuda.is_available()
    if cuda and torch.cuda.device_count() < 2:
        print("DDP: one GPU only; two processes need two", flush=True)
        return
    device = "cuda" if cuda else "cpu"
    best = {1: float("inf"), 2: float("inf")}
    names = {}
    for r in range(args.repeat):
        for world in ((1, 2) if r % 2 == 0 else (2, 1)):
            seconds, names[world] = ddp_epoch_seconds(world, args, device)
            best[world] = min(best[world], seconds)
            print(f"  ddp {names[world]}: {seconds:.2f} s/epoch", flush=True)
    ratio = best[2] / best[1]
    goal = "" if cuda else " (goal <= 1.10)"
    print(f"DDP GAT training, global batch {args.batch_size}: {names[1]} {best[1]:.2f} s/epoch, "
          f"{names[2]} {best[2]:.2f} s/epoch, ratio {ratio:.2f}{goal}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=60_000, help="frames generated (half attack-free)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs per measurement")
    ap.add_argument("--repeat", type=int, default=2, help="alternating OURS/BARE measurements per model")
    ap.add_argument("--models", default="gat,vgae")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ddp", action=argparse.BooleanOptionalAction, default=True,
                    help="also time one process against two data-parallel processes (--no-ddp: skip)")
    ap.add_argument("--only-ddp", action="store_true", help="time only the DDP row")
    args = ap.parse_args()
    if args.only_ddp:
        ddp_rows(args)
        return

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
    if args.ddp:
        ddp_rows(args)


if __name__ == "__main__":
    main()
