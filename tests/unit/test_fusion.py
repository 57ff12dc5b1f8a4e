"""The fusion agent: its state and rewards, the prior towards the better input, learning whom to trust,
determinism. Synthetic scores only; everything seeded; runs in a few seconds on a 2-core CPU.
"""

from __future__ import annotations

import pytest
import torch

from kdgat.models.fusion import ALPHAS, STATE_DIM, FusionAgent, QNetwork, fusion_state, rewards


def fusion_scenario(n: int, gat_right: bool, seed: int):
    """One model always on the right side of 0.5 (confidence 0.05..0.5), the other uniform noise."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=gen)
    margin = 0.05 + 0.45 * torch.rand(n, generator=gen)
    good = torch.where(y == 1, 0.5 + margin, 0.5 - margin).clamp(0, 1)
    noise = torch.rand(n, generator=gen)
    p_gat, s_vgae = (good, noise) if gat_right else (noise, good)
    return fusion_state(s_vgae, p_gat), y


def test_fusion_state_and_rewards():
    s = torch.tensor([0.2, 0.9])
    p = torch.tensor([0.7, 0.1])
    states = fusion_state(s, p)
    assert states.shape == (2, STATE_DIM)
    assert torch.allclose(states[:, 0], s) and torch.allclose(states[:, 1], p)
    assert ALPHAS.shape == (21,) and ALPHAS[1].item() == pytest.approx(0.05)
    # α = 1 trusts the GAT (0.7 -> attack, 0.1 -> normal); α = 0 trusts the VGAE (0.2 -> normal, 0.9 -> attack)
    labels = torch.tensor([1, 0])
    assert rewards(torch.tensor([20, 20]), states, labels).tolist() == [1.0, 1.0]
    assert rewards(torch.tensor([0, 0]), states, labels).tolist() == [-1.0, -1.0]
    assert rewards(torch.tensor([0, 0]), states, labels, wrong_reward=0.0).tolist() == [0.0, 0.0]
    # margin: + margin * (2y - 1) * (2 * fused - 1); α = 1 fuses to the GAT's 0.7 and 0.1, α = 0 to 0.2 and 0.9
    got = rewards(torch.tensor([20, 0]), states, labels, margin=0.5)
    assert got.tolist() == pytest.approx([1 + 0.5 * 0.4, -1 - 0.5 * 0.8])
    # a right decision always outscores a wrong one, and among right ones the more confident wins
    fine = rewards(torch.tensor([20, 15, 10]), states[:1].repeat(3, 1), labels[:1].repeat(3), margin=0.5)
    assert fine[0] > fine[1] > 1 > -1 > fine[2]  # α = 1 fuses to 0.7, α = 0.75 to 0.575, α = 0.5 to 0.45
    assert QNetwork(STATE_DIM, 21, 16)(states).shape == (2, 21)


def test_the_prior_costs_the_distance_from_the_better_inputs_weight_and_never_flips_a_decision():
    states, labels = fusion_state(torch.tensor([0.2]), torch.tensor([0.7])), torch.tensor([1])
    plain = rewards(torch.arange(21), states.repeat(21, 1), labels.repeat(21), margin=0.5)
    leaning = rewards(torch.arange(21), states.repeat(21, 1), labels.repeat(21), margin=0.5, prior=0.1,
                      prior_alpha=1.0)
    assert torch.allclose(plain - leaning, 0.1 * (ALPHAS - 1.0).abs())
    right = plain > 0
    assert leaning[right].min() > leaning[~right].max()  # every right weight still beats every wrong one


def test_with_the_prior_the_agent_keeps_to_the_better_input_where_its_windows_say_nothing():
    # Learned where the GAT is always confidently right (|p - 0.5| >= 0.3) and the VGAE is noise; asked about
    # windows it never saw: an unsure GAT (0.6 or 0.4) against a VGAE that says the opposite.
    states, labels = fusion_scenario(4000, True, seed=1)
    sure = states[:, 2] >= 0.6
    unseen = fusion_state(torch.tensor([0.4, 0.35, 0.6, 0.65]), torch.tensor([0.6, 0.6, 0.4, 0.4]))
    for seed in range(4):  # without the prior, seed 3 follows the VGAE on the third window (alpha 0.45)
        agent = FusionAgent(seed=seed, margin=0.5, prior=0.1, prior_alpha=1.0)
        agent.fit(states[sure], labels[sure], steps=600, batch_size=128)
        assert ((agent.fuse(unseen) >= 0.5) == (unseen[:, 1] >= 0.5)).all(), (seed, agent.alphas(unseen))


@pytest.mark.parametrize("gat_right", [True, False])
def test_fusion_agent_learns_whom_to_trust(gat_right):
    states, labels = fusion_scenario(4000, gat_right, seed=1)
    agent = FusionAgent(seed=0)
    agent.fit(states, labels, steps=600, batch_size=128)

    test_states, test_labels = fusion_scenario(2000, gat_right, seed=2)
    alpha = agent.alphas(test_states)
    accuracy = ((agent.fuse(test_states) >= 0.5).long() == test_labels).float().mean().item()
    disagree = (test_states[:, 0] >= 0.5) != (test_states[:, 1] >= 0.5)
    assert accuracy >= 0.95  # the noisy model alone gets ~0.5
    if gat_right:
        assert alpha.mean() > 0.65 and alpha[disagree].mean() > 0.8
    else:
        assert alpha.mean() < 0.35 and alpha[disagree].mean() < 0.2


def test_fusion_agent_is_deterministic_and_leaves_global_rng_alone():
    states, labels = fusion_scenario(500, True, seed=3)
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a, b = FusionAgent(seed=7), FusionAgent(seed=7)
    assert torch.equal(torch.rand(1), expected_next)  # building an agent does not consume the global RNG
    la = a.fit(states, labels, steps=50, batch_size=64)
    lb = b.fit(states, labels, steps=50, batch_size=64)
    assert la == lb
    assert torch.equal(a.alphas(states), b.alphas(states))
    assert not torch.equal(FusionAgent(seed=8).q_values(states), FusionAgent(seed=7).q_values(states))
    explore = a.act(states, epsilon=1.0)
    assert explore.min() >= 0 and explore.max() < len(ALPHAS) and explore.unique().numel() > 10
