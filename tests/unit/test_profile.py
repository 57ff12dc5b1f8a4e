"""The per-ID normal profile: means and ranges of normal traffic, the envelope's excess, the nodes it is
fitted on, and its place in a model's state_dict.

Tiny random graphs built directly with PyG; everything seeded; runs in a few seconds on a 2-core CPU.
"""

from __future__ import annotations

import pytest
import torch

from kdgat.models.gat import GATClassifier
from kdgat.models.profile import NormalProfile, normal_nodes
from kdgat.stages.registry import scale_gat as gat_sizes

from model_inputs import F_IN, SIZES, random_batch


def test_profile_measures_known_ids_and_their_means():
    import numpy as np

    # ids 1 and 2 in 6 normal windows each, id 3 in only 2: too few for a profile of its own
    node_id = np.array([1] * 6 + [2] * 6 + [3] * 2)
    x = np.zeros((14, 2))
    x[:6, 0] = 0.2
    x[6:12, 1] = 0.6
    x[12:, 0] = 0.9
    prof = NormalProfile(5, 2).fit(node_id, x)
    assert prof.ids(torch.tensor([0, 1, 2, 3, 4])).tolist() == [0, 1, 2, 0, 0]
    dev = prof.deviation(torch.tensor([1, 2, 3]), torch.tensor([[0.2, 0.0], [0.0, 0.1], [0.0, 0.0]]))
    overall = x.mean(axis=0)
    assert torch.allclose(dev[0], torch.zeros(2), atol=1e-6)  # id 1 at its usual values
    assert torch.allclose(dev[1], torch.tensor([0.0, -0.5]), atol=1e-6)  # id 2's field 1 is 0.5 below its mean
    assert torch.allclose(dev[2], -torch.tensor(overall, dtype=torch.float32), atol=1e-6)  # id 3: all nodes' mean
    # compact classes: the known ids renumbered 1..K, every other id class 0
    compact = NormalProfile(5, 2, classes=3).fit(node_id, x)
    assert compact.ids(torch.tensor([0, 1, 2, 3, 4])).tolist() == [0, 1, 2, 0, 0]
    with pytest.raises(ValueError):
        NormalProfile(5, 2, classes=2).fit(node_id, x)  # 2 known ids + "other" need 3 classes


def test_profile_envelope_is_zero_on_normal_nodes_and_measures_how_far_outside():
    import numpy as np

    node_id = np.array([1] * 6 + [2] * 6)
    x = np.zeros((12, 2))
    x[:6, 0] = np.linspace(0.2, 0.5, 6)  # id 1's signal: 0.2..0.5
    x[6:, 1] = 0.6
    prof = NormalProfile(5, 2, envelope=True).fit(node_id, x)
    assert torch.equal(prof.excess(torch.from_numpy(node_id), torch.from_numpy(x).float()), torch.zeros(12, 2))
    out = prof.excess(torch.tensor([1, 1, 2]), torch.tensor([[0.87, 0.0], [0.1, 0.0], [0.0, 0.6]]))
    assert torch.allclose(out, torch.tensor([[0.37, 0.0], [0.1, 0.0], [0.0, 0.0]]), atol=1e-6)
    # an unknown id (4) is judged against the range of every normal node
    assert torch.allclose(prof.excess(torch.tensor([4]), torch.tensor([[0.55, 0.7]])), torch.tensor([[0.05, 0.1]]),
                          atol=1e-6)


def test_normal_nodes_takes_the_nodes_of_normal_windows():
    import numpy as np
    from types import SimpleNamespace

    g = SimpleNamespace(y=np.array([0, 1, 0]), node_ptr=np.array([0, 2, 5, 6]), node_id=np.arange(6),
                        x=np.arange(12.0).reshape(6, 2))
    ids, x = normal_nodes(g)
    assert ids.tolist() == [0, 1, 5] and x[:, 0].tolist() == [0.0, 2.0, 10.0]


def test_profile_travels_with_the_state_dict():
    import numpy as np

    gen = torch.Generator().manual_seed(0)
    batch = random_batch(num_ids=10)
    a = GATClassifier(10, F_IN, **gat_sizes(SIZES.gat.student, 0.5))
    a.profile.fit(np.repeat(np.arange(1, 6), 5), torch.rand(25, F_IN, generator=gen).numpy())
    b = GATClassifier(10, F_IN, **gat_sizes(SIZES.gat.student, 0.5))
    b.load_state_dict(a.state_dict())
    a.eval(), b.eval()
    assert torch.equal(a.profile.id_map, b.profile.id_map) and torch.equal(a(batch), b(batch))
    assert b.profile.ids(torch.arange(10)).tolist() == [0, 1, 2, 3, 4, 5, 0, 0, 0, 0]
