"""What each column of a graph's node and edge features means (see kdgat.data.windows for how they are made).

One graph per window of frames; its nodes are the window's distinct CAN ids
and its edges join the id of each frame to the id of the next frame.

Node features (``NODE_FEATURES``, float32):

- ``byte0..byte7``: mean payload byte / 255, in [0, 1] (bytes past the DLC are 0);
- ``count``: occurrences of the id in the window / window, in (0, 1];
- ``log_iat_ms``: log1p(mean inter-arrival time of the id in the window, in
  ms) / log1p(1000); 0 for an id seen once. The log keeps a 0.3 ms DoS
  flood (0.04) and a 1 s heartbeat (1.0) on one scale;
- ``rel_pos``: mean index of the id's frames in the window / window, in [0, 1);
- ``changed``: mean number of payload bytes that differ from the id's previous
  frame in the window / 8, in [0, 1]; 0 for an id seen once. A signal the
  ECU updates changes its bytes from frame to frame; one an attacker holds
  does not, wherever its value lies (a value that drifts between captures
  beyond the range the training captures show looks new, a frozen one looks
  frozen).

Edge features (``EDGE_FEATURES``, float32): ``count`` = transitions / (window
- 1), in (0, 1]; ``log_dt_ms`` = log1p(mean time between the two frames of the
transition, in ms) / log1p(1000). Negative time steps (out-of-order timestamps
in real captures) count as 0.
"""

from __future__ import annotations

import math

NODE_FEATURES = (
    "byte0", "byte1", "byte2", "byte3", "byte4", "byte5", "byte6", "byte7",
    "count", "log_iat_ms", "rel_pos", "changed",
)  # fmt: skip
EDGE_FEATURES = ("count", "log_dt_ms")
# Timing features are log1p(milliseconds) / log1p(1000): a 1 s gap is 1.0, so
# they share the [0, ~1] range of the other features and none dominates a
# reconstruction error.
TIME_SCALE = 1 / math.log1p(1000.0)
