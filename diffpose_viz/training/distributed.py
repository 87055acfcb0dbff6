"""Old import path: DDP helpers moved to `diffpose_viz.distributed`."""
from diffpose_viz.distributed import *  # noqa: F401,F403
