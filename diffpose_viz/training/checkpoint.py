"""Old import path: checkpoint I/O moved to `diffpose_viz.checkpoint`."""
from diffpose_viz.checkpoint import *  # noqa: F401,F403
from diffpose_viz.checkpoint import (  # noqa: F401
    FORMAT,
    FORMAT_VERSION,
    CheckpointError,
    atomic_torch_save,
    load_checkpoint,
    load_weights,
    rng_state,
    save_checkpoint,
    set_rng_state,
    versions,
)
