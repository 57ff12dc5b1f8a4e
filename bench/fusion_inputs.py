#!/usr/bin/env python
"""What the fusion agent would need to beat the GAT: experiments on a trained fusion stage's scores.npz.

The fusion stage learns, on the validation split, how far to trust the GAT
over the VGAE per window. When the GAT is right on every validation window,
the best it can learn there is "trust the GAT" (alpha = 1), and the fused
output is the GAT's. This script asks, for each test scenario where the GAT
makes mistakes, what changes that, keeping the agent and its settings:

1. today: the agent as the stage trained it (on validation), on the scenario;
2. learn where the GAT errs: a fresh agent trained on half of the scenario's
   windows (its mistakes included) with the real VGAE score, judged on the
   other half, beside the GAT on that half: does the VGAE score carry what
   the GAT misses?
3. a better second input: the same, with the VGAE score replaced by a
   stand-in of known quality (the true label, flipped for a fraction of the
   windows, plus noise): the quality it must have for the fused F1 to pass
   the GAT's.

    .venv/bin/python bench/fusion_inputs.py bench/out/fidelity/synthetic-1000000/experimentruns/synthetic/fusion/latest
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def f1(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(labels, scores >= 0.5, zero_division=0))


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores)) if 0 < labels.sum() < len(labels) else float("nan")


def train_and_judge(vgae: np.ndarray, gat: np.ndarray, labels: np.ndarray, seed: int) -> tuple[float, float]:
    """A fresh agent (the stage's default settings) trained on one half of the windows, judged on the other:
    (fused F1, GAT F1) on the judged half."""
    import torch

    from kdgat.models.fusion import FusionAgent, fusion_state
    from kdgat.stages.registry import Fusion

    order = np.random.default_rng(seed).permutation(len(labels))
    fit, judge = order[: len(order) // 2], order[len(order) // 2:]
    states = fusion_state(torch.from_numpy(vgae).float(), torch.from_numpy(gat).float())
    d = Fusion()
    agent = FusionAgent(lr=d.lr, seed=seed, margin=d.margin)
    agent.fit(states[fit], torch.from_numpy(labels[fit]).long(), steps=3000, batch_size=d.batch_size,
              epsilon_start=d.epsilon_start, epsilon_end=d.epsilon_end)
    agent.eval()
    with torch.no_grad():
        fused = agent.fuse(states[judge]).numpy()
    return f1(labels[judge], fused), f1(labels[judge], gat[judge])


def stand_in(labels: np.ndarray, flipped: float, rng: np.random.Generator) -> np.ndarray:
    """A second score that is the true label for all but a `flipped` fraction of windows, with noise."""
    truth = np.where(rng.random(len(labels)) < flipped, 1 - labels, labels).astype(np.float64)
    return np.clip(0.25 + 0.5 * truth + rng.normal(0, 0.1, len(labels)), 0, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("fusion_dir", help="a trained fusion stage's folder (holds scores.npz)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    path = Path(args.fusion_dir) / "scores.npz"
    if not path.is_file():
        sys.exit(f"{path} not found: train the fusion stage first (it writes scores.npz)")
    z = np.load(path)
    rng = np.random.default_rng(args.seed)
    scenarios = sorted({k[: -len("_label")] for k in z.files if k.endswith("_label") and k.startswith("test_")})
    print(f"validation: GAT F1 {f1(z['val_label'], z['val_gat']):.3f}, "
          f"{int(((z['val_gat'] >= 0.5) != z['val_label']).sum())} GAT mistakes in {len(z['val_label'])} windows")
    print("| scenario | GAT mistakes | GAT F1 | fusion F1 today | VGAE AUC | learnt where the GAT errs: fused / GAT |"
          " stand-in 2nd input, 10 % flipped: fused / GAT | 25 % flipped |")
    print("|---|---|---|---|---|---|---|---|")
    for s in scenarios:
        labels, gat, vgae = z[f"{s}_label"].astype(np.int64), z[f"{s}_gat"], z[f"{s}_vgae"]
        mistakes = int(((gat >= 0.5) != labels).sum())
        row = [s[len("test_"):], str(mistakes), f"{f1(labels, gat):.3f}", f"{f1(labels, z[f'{s}_fused']):.3f}",
               f"{auc(labels, vgae):.3f}"]
        if mistakes == 0:
            print("| " + " | ".join(row + ["-", "-", "-"]) + " |", flush=True)
            continue
        row.append("%.3f / %.3f" % train_and_judge(vgae, gat, labels, args.seed))
        for flipped in (0.10, 0.25):
            row.append("%.3f / %.3f" % train_and_judge(stand_in(labels, flipped, rng), gat, labels, args.seed))
        print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
