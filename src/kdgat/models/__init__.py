"""KD-GAT models, one file each: `gat` (GAT classifier and the
distillation loss), `vgae` (the graph autoencoder), `fusion` (the DQN agent).

Import them from their modules (`from kdgat.models.gat import GATClassifier`).
This file imports no torch: the launcher and `--cfg job` import `kdgat` and
must stay fast. Sizes live in the config, `models.*` in conf/config.yaml.
"""

from typing import Any


def count_parameters(module: Any, trainable_only: bool = False) -> int:
    """Number of scalar parameters of a torch module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
