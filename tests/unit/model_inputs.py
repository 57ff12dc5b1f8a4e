"""What the model tests build: the configured sizes, tiny random graphs and batches, and a student GAT with a
fitted per-ID profile plus the windows it is checked on. Not a test module: test_gat*.py, test_profile.py,
test_distillation.py and test_vgae.py import from it (tests/unit is on sys.path, as for every test module here).
"""

from __future__ import annotations

import torch
from omegaconf import OmegaConf
from torch_geometric.data import Batch, Data

from kdgat.config import CONF_DIR
from kdgat.data.features import NODE_FEATURES
from kdgat.models.gat import GATClassifier
from kdgat.stages.registry import scale_gat as gat_sizes


# The sizes of conf/config.yaml, the one place they are set.
SIZES = OmegaConf.load(CONF_DIR / "config.yaml").models


F_IN = len(NODE_FEATURES)


def random_graph(gen: torch.Generator, n: int, num_ids: int, e: int | None = None, y: int = 0) -> Data:
    e = 2 * n if e is None else e
    return Data(
        x=torch.rand(n, F_IN, generator=gen),
        node_id=torch.randint(0, num_ids, (n,), generator=gen),
        edge_index=torch.randint(0, n, (2, e), generator=gen),
        edge_attr=torch.rand(e, 2, generator=gen),
        y=torch.tensor([y]),
    )


def random_batch(seed: int = 0, sizes=(3, 7, 1, 5), num_ids: int = 10) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    return Batch.from_data_list([random_graph(gen, n, num_ids, y=i % 2) for i, n in enumerate(sizes)])


def _fitted_student(evidence: bool = True, drift: float = 0.0) -> GATClassifier:
    """A student GAT whose profile says IDs 1-5 keep every feature in [0.2, 0.6]."""
    gen = torch.Generator().manual_seed(0)
    model = GATClassifier(10, F_IN, **{**gat_sizes(SIZES.gat.student, 0.5), "evidence": evidence, "drift": drift})
    x = 0.2 + 0.4 * torch.rand(50, F_IN, generator=gen)
    x[:5], x[5:10] = 0.2, 0.6  # each ID's range reaches both ends
    model.profile.fit(torch.arange(50).remainder(5).add(1).numpy(), x.numpy())
    return model.eval()


CHANGED = NODE_FEATURES.index("changed")


def _window(value: float, feature: int = 3) -> Data:
    """Five nodes of IDs 1-5 inside their range, except node 2's `feature` set to `value`."""
    x = torch.full((5, F_IN), 0.4)
    x[:, CHANGED] = 0.6  # the top of the range: at or above every ID's usual rate
    x[2, feature] = value
    return Data(x=x, node_id=torch.arange(1, 6), edge_index=torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]]),
                edge_attr=torch.rand(4, 2, generator=torch.Generator().manual_seed(1)), y=torch.tensor([0]))
