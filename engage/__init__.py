"""engage: how will a micro-influencer's draft post do, before it is posted?

The few names a user imports live here; everything else is internal.
"""

import os

# OpenMP threads (torch, LightGBM) sleep between parallel regions instead of spinning. On a few shared cores
# spinning threads steal the CPU the next region needs: fitting the smoke models took 23 s instead of 1.9 s
# next to another busy process (docs/performance.md). Read by the OpenMP runtime when torch or LightGBM is
# first imported, so it is set here, before either; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from engage.config import Settings, load_settings  # noqa: E402
from engage.data import load_posts  # noqa: E402

__all__ = ["Settings", "load_posts", "load_settings"]
__version__ = "0.1.0"
