"""Reading a released checkpoint file without running code from it.

The released training scripts save more than weights: Diffpose a list [state_dict, optimizer, epoch, step,
(EMA)], VideoPose3D and MixSTE a dict {'epoch', 'lr', 'random_state', 'optimizer', 'model_pos', ...} whose
'random_state' is a pickled numpy RandomState. The file is read with torch.load(weights_only=True); the numpy
RandomState names resolve to `DiscardedObject`, an inert stand-in of our own (no numpy code runs, the training
RNG state is dropped: nothing here needs it). Any other global is refused, naming the file and the global.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from diffpose_viz.checkpoint import safe_torch_load
from diffpose_viz.errors import CheckpointError


class DiscardedObject:
    """What a pickled numpy RandomState (or its bit generator) in a released file becomes: nothing is kept."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __setstate__(self, state) -> None:
        pass


#: The names numpy (1.x before and after 1.17, 2.x) pickles a RandomState under.
_RANDOM_STATE_NAMES = ("numpy.random.__RandomState_ctor", "numpy.random._pickle.__randomstate_ctor",
                       "numpy.random.mtrand.RandomState", "numpy.random._pickle.__bit_generator_ctor",
                       "numpy.random._mt19937.MT19937", "numpy.random.bit_generator.BitGenerator")

#: Where the released scripts keep the network's weights inside a dict.
_WEIGHT_KEYS = ("model_pos", "state_dict", "model")


def load_released_state(path: str | os.PathLike, what: str) -> dict[str, torch.Tensor]:
    """The network weights of released file `path` ('module.' prefixes stripped). CheckpointError naming the
    file for an unreadable, truncated or code-referencing file, or one holding no state dict."""
    path = Path(path)
    obj = safe_torch_load(path, "cpu", what=f"released {what} file",
                          allow=[(DiscardedObject, name) for name in _RANDOM_STATE_NAMES])
    state = _unwrap(obj)
    if state is None:
        found = type(obj).__name__ + (f" with keys {sorted(map(str, obj))[:8]}" if isinstance(obj, dict) else "")
        raise CheckpointError(f"{path}: expected a released {what} file (a state dict, Diffpose's [state_dict, "
                              f"optimizer, ...] list or a dict with 'model_pos'), found a {found}")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def _is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(k, str) and torch.is_tensor(v)
                                                         for k, v in obj.items())


def _unwrap(obj) -> dict | None:
    if _is_state_dict(obj):
        return obj
    if isinstance(obj, (list, tuple)) and obj and _is_state_dict(obj[0]):
        return obj[0]  # Diffpose's `states`; its test code loads states[0]
    if isinstance(obj, dict):
        for key in _WEIGHT_KEYS:
            if _is_state_dict(obj.get(key)):
                return obj[key]
    return None
