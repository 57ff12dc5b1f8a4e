"""DQN fusion agent: one weight α per window for

    fused = α · p_gat + (1 − α) · s_vgae,   decision = fused ≥ 0.5,

with α chosen from ``ALPHAS`` = {0, 0.05, …, 1} (21 actions) by a Q-network
that reads a small state built from the two models' outputs.

Episodes are one step long (γ = 0): the agent sees a window, picks α, gets the
reward (+1 for a correct decision, ``wrong_reward`` = −1 otherwise, plus
``margin`` times the fused score's signed margin ``(2y − 1)(2·fused − 1)``, see
``rewards``) and the
episode ends. The DQN target ``r + γ · max_a' Q_target(s', a')`` is therefore
just ``r``: there is no bootstrapping, so **no target network** is needed,
and the "replay" is plain minibatches of windows sampled afresh each step
(with γ = 0 the transitions are independent, so a replay buffer would only
reuse old ε-greedy actions). This is a contextual bandit trained with the DQN
regression loss (Huber on Q(s, a) − r).

State (``fusion_state``, ``STATE_DIM`` = 5 columns, in this order)::

    s_vgae, p_gat, |p_gat − 0.5|·2, |s_vgae − 0.5|·2, p_gat − s_vgae

``s_vgae`` is the VGAE anomaly score already calibrated to [0, 1] by the
caller (on the validation split); ``p_gat`` the GAT's attack probability.
Columns 0 and 1 are what ``fuse`` mixes.

Everything is seeded: the Q-network's initial weights come from ``seed``
(without touching the global RNG) and ε-greedy exploration and minibatch
sampling draw from the agent's own generator, so training is deterministic
on CPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ALPHAS = torch.linspace(0, 1, 21)  # action i -> α = i / 20
STATE_DIM = 5


def fusion_state(vgae_score: Tensor, gat_prob: Tensor) -> Tensor:
    """The ``[N, STATE_DIM]`` state of N windows from the calibrated VGAE score and the GAT probability."""
    s = torch.as_tensor(vgae_score, dtype=torch.float32).reshape(-1)
    p = torch.as_tensor(gat_prob, dtype=torch.float32).reshape(-1).to(s.device)
    return torch.stack([s, p, (p - 0.5).abs() * 2, (s - 0.5).abs() * 2, p - s], dim=1)


def fuse(alpha: Tensor, gat_prob: Tensor, vgae_score: Tensor) -> Tensor:
    """``α · p_gat + (1 − α) · s_vgae``, elementwise."""
    return alpha * gat_prob + (1 - alpha) * vgae_score


def rewards(actions: Tensor, states: Tensor, labels: Tensor, wrong_reward: float = -1.0,
            margin: float = 0.0, prior: float = 0.0, prior_alpha: float = 1.0) -> Tensor:
    """+1 where ``fuse(ALPHAS[action]) ≥ 0.5`` matches the label (1 = attack), ``wrong_reward`` elsewhere,
    plus ``margin * (2y - 1) * (2 * fused - 1)``.

    The margin term is in [0, margin] for a correct decision and in [-margin, 0] for a wrong one, so a
    wrong decision never outscores a right one (for any ``wrong_reward`` below 1). What it adds is a preference among the many weights that all land on the right side of 0.5 (with a
    plain +-1 they tie, and the Q-network picks among them arbitrarily): the weight that makes the fused
    score confidently right, i.e. the model that is confidently right on this kind of window.

    ``prior`` costs ``prior * |α - prior_alpha|``: the agent leans towards ``prior_alpha`` (the input that
    was better on the windows it learns from) wherever those windows do not show that mixing in the other
    pays, which is where the Q-network would otherwise extrapolate. A prior below the 2 between a right
    and a wrong decision never overrules one the windows show.
    """
    alpha = ALPHAS.to(states.device)[actions]
    fused = fuse(alpha, states[:, 1], states[:, 0])
    y = labels.long().reshape(-1)
    correct = (fused >= 0.5).long() == y
    base = torch.where(correct, torch.ones_like(alpha), torch.full_like(alpha, wrong_reward))
    if margin:
        base = base + margin * (2 * y - 1).to(fused.dtype) * (2 * fused - 1)
    if prior:
        base = base - prior * (alpha - prior_alpha).abs()
    return base


class QNetwork(nn.Module):
    """MLP from a state to one Q-value per action: ``state_dim -> hidden -> hidden -> actions``."""

    def __init__(self, state_dim: int = STATE_DIM, actions: int = 21, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(state_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, actions),
        )  # fmt: skip

    def forward(self, states: Tensor) -> Tensor:
        return self.net(states)


class FusionAgent(nn.Module):
    """ε-greedy DQN agent over ``ALPHAS`` with one-step episodes (γ = 0, no target network)."""

    def __init__(self, state_dim: int = STATE_DIM, hidden: int = 64, lr: float = 1e-3, seed: int = 0,
                 wrong_reward: float = -1.0, huber: bool = True, margin: float = 0.0, prior: float = 0.0,
                 prior_alpha: float = 1.0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):  # seeded init without disturbing the caller's RNG
            torch.manual_seed(seed)
            self.q = QNetwork(state_dim, len(ALPHAS), hidden)
        self.config = dict(state_dim=state_dim, hidden=hidden, lr=lr, seed=seed, wrong_reward=wrong_reward, margin=margin,
                           huber=huber, prior=prior, prior_alpha=prior_alpha)  # fmt: skip
        self.wrong_reward = wrong_reward
        self.margin = margin
        self.prior, self.prior_alpha = prior, prior_alpha
        self.huber = huber
        self.optimizer = torch.optim.Adam(self.q.parameters(), lr=lr)
        self.generator = torch.Generator().manual_seed(seed)  # exploration and sampling, CPU

    @property
    def _device(self) -> torch.device:
        return next(self.q.parameters()).device

    def q_values(self, states: Tensor) -> Tensor:
        """``[N, 21]`` Q-values."""
        return self.q(states.to(self._device))

    @torch.no_grad()
    def act(self, states: Tensor, epsilon: float = 0.0) -> Tensor:
        """ε-greedy action indices ``[N]`` (int64): random with probability ε, else argmax Q."""
        greedy = self.q_values(states).argmax(dim=1).cpu()
        n = greedy.shape[0]
        explore = torch.rand(n, generator=self.generator) < epsilon
        random = torch.randint(len(ALPHAS), (n,), generator=self.generator)
        return torch.where(explore, random, greedy).to(states.device)

    def train_step(self, states: Tensor, actions: Tensor, rewards: Tensor) -> float:
        """One gradient step on ``Huber(Q(s, a), r)`` (MSE if ``huber=False``); returns the loss."""
        self.q.train()
        q = self.q_values(states).gather(1, actions.to(self._device).long().reshape(-1, 1)).squeeze(1)
        target = rewards.to(self._device, torch.float32).reshape(-1)  # γ = 0: the target is the reward
        loss = F.smooth_l1_loss(q, target) if self.huber else F.mse_loss(q, target)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    @torch.no_grad()
    def alphas(self, states: Tensor) -> Tensor:
        """Greedy α ``[N]`` per window."""
        return ALPHAS.to(states.device)[self.act(states, 0.0)]

    @torch.no_grad()
    def fuse(self, states: Tensor) -> Tensor:
        """Fused attack probability ``[N]`` with the greedy α per window."""
        return fuse(self.alphas(states), states[:, 1], states[:, 0])

    def fit(self, states: Tensor, labels: Tensor, steps: int = 2000, batch_size: int = 256,
            epsilon_start: float = 1.0, epsilon_end: float = 0.05, explore_fraction: float = 0.5,
            log_every: int = 0, log=print) -> list[float]:
        """Train on N windows (``states`` ``[N, STATE_DIM]``, ``labels`` ``[N]``, 1 = attack).

        Each step samples ``batch_size`` windows, acts ε-greedily (ε falling
        linearly from ``epsilon_start`` to ``epsilon_end`` over the first
        ``explore_fraction`` of the steps), computes the rewards and takes one
        ``train_step``. Returns the per-step losses.
        """
        labels = labels.reshape(-1)
        n = states.shape[0]
        decay = max(1, int(steps * explore_fraction))
        losses = []
        for step in range(steps):
            epsilon = epsilon_end + (epsilon_start - epsilon_end) * max(0.0, 1 - step / decay)
            idx = torch.randint(n, (min(batch_size, n),), generator=self.generator).to(states.device)
            s, y = states[idx], labels[idx]
            a = self.act(s, epsilon)
            r = rewards(a, s, y, self.wrong_reward, self.margin, self.prior, self.prior_alpha)
            losses.append(self.train_step(s, a, r))
            if log_every and (step + 1) % log_every == 0:
                recent = sum(losses[-log_every:]) / log_every
                log(f"fusion step {step + 1}/{steps}: loss {recent:.4f} epsilon {epsilon:.3f}")
        return losses
