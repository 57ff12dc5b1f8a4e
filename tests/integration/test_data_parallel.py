"""Data-parallel training on CPU: two gloo ranks train as one process would, write once, and resume together.

The ranks are spawned processes running kdgat's own StageRun.fit on 197 small graphs, so the last global batch
of 64 splits into shares of 3 graphs (DistributedSampler pads 197 to 2 x 99): a rank with one batch fewer than
the other would hang gloo until its timeout. Dropout is off so that two ranks and one process take the very same
steps.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import run_train

EPOCHS = 4


def _graphs(n: int = 197):
    """n graphs of synthetic traffic with every attack, the same on every rank (train), and 40 more (val)."""
    from kdgat.data.synth.traffic import ATTACKS, generate_frames
    from kdgat.data.synth.vehicle import make_profile
    from kdgat.data.vocabulary import Vocabulary
    from kdgat.data.windows import build_graphs

    rng = np.random.default_rng(3)
    profile = make_profile(rng)
    frames = generate_frames(24_000, list(ATTACKS), rng, profile=profile)
    vocab = Vocabulary.from_frames(frames)
    graphs = build_graphs(frames, vocab, 100, 100)
    return graphs.subset(np.arange(n)), graphs.subset(np.arange(197, 237)), len(vocab)


def _train(folder: Path, kill_at: int | None = None, n: int = 197) -> dict:
    """kdgat's StageRun.fit on a small GAT (gradients through DistributedDataParallel when in a group)."""
    import torch
    import torch.nn.functional as F
    from omegaconf import OmegaConf

    from kdgat.artifacts import StageArtifacts
    from kdgat.models.gat import GATClassifier
    from kdgat.models.profile import normal_nodes
    from kdgat.stages.common import StageRun, in_features, predict
    from kdgat.training import configure

    train, val, num_ids = _graphs(n)
    cfg = OmegaConf.create({"seed": 0, "progress": False, "train": {
        "max_epochs": None, "batch_size": 64, "patience": EPOCHS, "slow_epoch_s": 0, "lr_schedule": "cosine"}})
    art = StageArtifacts(stage="gat", preset="gat_normal", dir=folder, fingerprint="f" * 16)
    device = configure("cpu", 0)
    model = GATClassifier(num_ids=num_ids, **in_features(), hidden=8, layers=2, heads=2, embedding=4, dropout=0.0)
    model.profile.fit(*normal_nodes(train))
    data = type("Data", (), {"train": train, "val": val})
    run = StageRun(cfg=cfg, name="gat", node=OmegaConf.create({"epochs": EPOCHS}), art=art, inputs={}, data=data,
                   device=device)
    steps = []

    def train_epoch(epoch, bar, optimizer, net):
        if epoch == kill_at:
            raise RuntimeError(f"killed at epoch {epoch}")
        total, n = 0.0, 0
        for batch in bar(run.training_batches(train, epoch)):
            optimizer.zero_grad()
            loss = F.cross_entropy(net(batch), batch.y)
            loss.backward()
            optimizer.step()
            total, n = total + loss.item() * batch.num_graphs, n + batch.num_graphs
            steps.append(batch.num_graphs)
        return {"train_loss": run.average(total, n)}

    def validate():
        prob = torch.from_numpy(predict(run, model.attack_probability, val))
        return {"val_loss": F.binary_cross_entropy(prob.clamp(1e-6, 1 - 1e-6), torch.from_numpy(val.y).float()).item()}

    summary = run.fit(model, 0.01, train_epoch, validate, monitor="val_loss", mode="min")
    return {"params": {k: v.detach().clone() for k, v in model.state_dict().items()}, "summary": summary,
            "steps": steps, "threads": torch.get_num_threads()}


def _rank(rank: int, world: int, port: int, folder: str, kill_at: int | None, n: int) -> None:
    """One spawned rank (module level: spawned processes get it by name, never a lambda)."""
    import torch

    from kdgat import distributed

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
    with distributed.joined("cpu"):
        torch.save(_train(Path(folder) / "stage", kill_at, n), Path(folder) / f"rank{rank}.pt")


def _two_ranks(folder: Path, kill_at: int | None = None, n: int = 197) -> list[dict]:
    import torch
    import torch.multiprocessing as mp

    from kdgat.distributed import free_port

    (folder / "stage").mkdir(parents=True, exist_ok=True)
    mp.spawn(_rank, args=(2, free_port(), str(folder), kill_at, n), nprocs=2, join=True)
    return [torch.load(folder / f"rank{r}.pt", weights_only=False) for r in range(2)]


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    return _two_ranks(tmp_path_factory.mktemp("two"))


def test_two_ranks_end_with_identical_parameters_and_a_falling_loss(two):
    first, second = two
    for name, value in first["params"].items():
        assert torch_equal(value, second["params"][name]), name
    losses = first["summary"]["history"]["train_loss"]
    assert losses == second["summary"]["history"]["train_loss"]  # rank 0's row on both
    assert losses[-1] < losses[0] - 0.05 and min(losses) < losses[0]
    # 197 graphs, global batch 64: each rank takes shares of 32, 32, 32 and 3 graphs every epoch (99 = 197 / 2,
    # padded), as many steps as the other
    assert first["steps"] == second["steps"] == [32, 32, 32, 3] * EPOCHS
    cpus = len(os.sched_getaffinity(0))
    assert first["threads"] == second["threads"] == max(1, cpus // 2)  # the CPUs shared out, not each taken


def test_two_ranks_take_the_steps_one_process_takes(tmp_path):
    """train.batch_size is the global batch: 2 ranks x 32 graphs make the single process's batch of 64, so on
    192 graphs (no padding) the two train alike, up to the order in which gradients are summed."""
    two = _two_ranks(tmp_path / "two", n=192)
    alone = _train(tmp_path / "alone", n=192)
    assert alone["steps"] == [64] * 3 * EPOCHS and two[0]["steps"] == [32] * 3 * EPOCHS
    for key in ("train_loss", "val_loss"):
        assert np.allclose(alone["summary"]["history"][key], two[0]["summary"]["history"][key], rtol=1e-4), key


def test_the_ranks_shares_of_a_batch_are_the_single_process_batch():
    import torch

    train, _, _ = _graphs()
    view = train.as_dataset()
    alone = [b.y for b in view.loader(64, shuffle=True, seed=7)]
    shares = [[b.y for b in view.loader(32, shuffle=True, seed=7, ranks=(r, 2))] for r in range(2)]
    assert len(shares[0]) == len(shares[1]) == len(alone) == 4
    order = torch.randperm(197, generator=torch.Generator().manual_seed(7)).tolist()
    padded = order + order[:1]  # 2 x 99
    for k in range(4):
        ours = sorted(padded[2 * 32 * k:2 * 32 * (k + 1)])
        assert sorted(padded[0::2][32 * k:32 * (k + 1)] + padded[1::2][32 * k:32 * (k + 1)]) == ours
        assert torch.equal(torch.sort(torch.cat([shares[0][k], shares[1][k]])).values,
                           torch.sort(train_y(train, ours)).values)
    assert torch.equal(torch.cat(alone), train_y(train, order))


def train_y(graphs, idx):
    import torch

    return torch.from_numpy(graphs.y[idx])


def test_rank_zero_alone_writes_the_checkpoint(two, tmp_path):
    folder = tmp_path / "once"
    _two_ranks(folder)
    assert sorted(p.name for p in (folder / "stage").iterdir()) == ["checkpoint.pt", "checkpoint.pt.sha256"]


def test_a_resumed_two_rank_run_continues_from_its_checkpoint_epoch(two, tmp_path):
    import torch.multiprocessing as mp

    with pytest.raises(mp.ProcessRaisedException, match="killed at epoch 2"):
        _two_ranks(tmp_path, kill_at=2)
    resumed = _two_ranks(tmp_path)
    for rank in resumed:
        assert rank["summary"]["resumed_from_epoch"] == 2
        assert rank["steps"] == [32, 32, 32, 3] * (EPOCHS - 2)  # epochs 3 and 4 only
        for name, value in two[0]["params"].items():
            assert torch_equal(value, rank["params"][name]), name  # as if never interrupted


def torch_equal(a, b) -> bool:
    import torch

    return torch.equal(a, b)


@pytest.mark.slow
def test_a_pipeline_with_two_processes_per_stage_writes_one_set_of_artifacts(tmp_path):
    """train.processes=2: the VGAE and the curriculum GAT train on two ranks each; one model, one metrics file,
    one marker and one MLflow run per stage, and each epoch logged once."""
    out = run_train("pipeline=curriculum_only", "dataset.synthetic.frames=20000", "train.max_epochs=2",
                    "progress=false", "train.processes=2", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    for stage in ("autoencoder", "curriculum"):
        (folder,) = [p for p in (tmp_path / "experimentruns" / "synthetic" / stage).iterdir()
                     if p.is_dir() and not p.is_symlink()]
        names = {p.name for p in folder.iterdir()}
        assert {"model.pt", "metrics.json", "config.yaml", "done.json", "training_curves.png"} <= names
        assert "checkpoint.pt" not in names
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["processes"] == 2 and metrics["training"]["epochs_run"] == 2
        assert out.stdout.count(f"{stage} epoch 1/2") == 1 and out.stdout.count(f"stage {stage} trained") == 1
        assert f"stage {stage}: 2 processes" in out.stdout
    from conftest import client_of, embedded

    runs = client_of(embedded(tmp_path)).search_runs(
        [e.experiment_id for e in client_of(embedded(tmp_path)).search_experiments()])
    stages = sorted(r.data.tags.get("stage") for r in runs if r.data.tags.get("stage"))
    assert stages == ["autoencoder", "curriculum"]
