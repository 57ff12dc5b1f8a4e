"""Stage `fusion`: a DQN agent choosing, per window, how much to trust the GAT over the VGAE.

fused = alpha * P(attack | GAT) + (1 - alpha) * calibrated VGAE score. The
agent learns on the validation split, which neither model trained on, and is
judged on the test scenarios beside the two models alone. Every window's two
inputs, fused score and label are kept in `scores.npz`, for analysis
(bench/fusion_inputs.py asks what input the agent would need to beat the GAT).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from kdgat.models import count_parameters
from kdgat.models.fusion import FusionAgent, fusion_state
from kdgat.models.gat import GATClassifier
from kdgat.stages.autoencoder import anomaly_scores
from kdgat.stages.common import StageRun, evaluate, load_model, predict, save_model, splits


def fusion(run: StageRun) -> dict[str, Any]:
    from kdgat import plots

    gat, _ = load_model(run.inputs["gat"], GATClassifier, run.device)
    states, labels = {}, {}
    for split, graphs in splits(run).items():
        vgae_score, _ = anomaly_scores(run, run.inputs["vgae"], graphs)
        gat_prob = predict(run, gat.attack_probability, graphs)
        states[split], labels[split] = fusion_state(torch.from_numpy(vgae_score), torch.from_numpy(gat_prob)), graphs.y

    components = {
        "vgae": evaluate({s: (labels[s], st[:, 0].numpy()) for s, st in states.items()}, 0.5),
        "gat": evaluate({s: (labels[s], st[:, 1].numpy()) for s, st in states.items()}, 0.5),
    }
    # The agent leans towards the input that is better on the validation split it learns from (the prior).
    gat_better = components["gat"]["val"]["f1"] >= components["vgae"]["val"]["f1"]
    agent = FusionAgent(lr=float(run.node.lr), seed=int(run.cfg.seed), margin=float(run.node.margin),
                        prior=float(run.node.prior), prior_alpha=1.0 if gat_better else 0.0)
    steps = int(run.node.steps if run.cfg.train.max_epochs is None else min(run.node.steps, 50 * run.cfg.train.max_epochs))
    losses = agent.fit(states["val"], torch.from_numpy(labels["val"]), steps=steps,
                       batch_size=int(run.node.batch_size), epsilon_start=float(run.node.epsilon_start),
                       epsilon_end=float(run.node.epsilon_end))
    agent.eval()
    with torch.no_grad():
        fused = {s: (labels[s], agent.fuse(st).numpy()) for s, st in states.items()}
        alphas = {s: agent.alphas(st).numpy() for s, st in states.items()}
    save_model(run.art.model, agent)
    save_scores(run.art.scores, states, fused)
    plots.alpha_histogram(np.concatenate(list(alphas.values())), run.art.dir / "alpha_histogram.png",
                          f"fusion on {run.cfg.dataset.name}: chosen alpha per window")
    n = max(1, len(losses) // 50)
    return {"parameters": count_parameters(agent), "threshold": 0.5, "splits": evaluate(fused, 0.5),
            "components": components, "mean_alpha": {s: float(a.mean()) for s, a in alphas.items()},
            "training": {"steps": steps, "history": {"dqn_loss": [float(np.mean(losses[i:i + n]))
                                                                  for i in range(0, len(losses), n)]}}}


def save_scores(path, states: dict[str, torch.Tensor], fused: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """`<split>_vgae`, `<split>_gat`, `<split>_fused` and `<split>_label` arrays, one entry per window."""
    import io

    from kdgat.atomic import write_bytes_atomic

    arrays = {}
    for split, state in states.items():
        labels, scores = fused[split]
        arrays.update({f"{split}_vgae": state[:, 0].cpu().numpy(), f"{split}_gat": state[:, 1].cpu().numpy(),
                       f"{split}_fused": scores, f"{split}_label": np.asarray(labels)})
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_bytes_atomic(path, buf.getvalue())
