"""kdgat: KD-GAT models for CAN-bus intrusion detection, run as SLURM pipelines.

Nothing here imports torch: the launcher, ``--cfg job`` and dry runs import
this package and must stay fast. Model code imports torch where it is used.
"""

__version__ = "0.1.0"
