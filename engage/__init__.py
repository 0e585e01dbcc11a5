"""engage: how will a micro-influencer's draft post do, before it is posted?

The few names a user imports live here; everything else is internal.
"""

from engage.config import Settings, load_settings
from engage.data import load_posts

__all__ = ["Settings", "load_posts", "load_settings"]
__version__ = "0.1.0"
