"""Checkpoints: one self-describing file per save, written atomically.

A checkpoint carries everything evaluation needs without the training data: the run config,
library versions, the raw and EMA weights, the optimiser state, RNG states and data position (for a
bit-for-bit `--resume`), the input normaliser, the fitted depth prior and, for the official mode,
the embedded initial-pose lifter.
"""
from __future__ import annotations

import json
import os
import platform
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from diffpose_viz.atomic import atomic_target
import diffpose_viz

FORMAT = "diffpose_viz.checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is unreadable, from another format version, or does not fit the model/config."""


def versions() -> dict[str, str]:
    return {"diffpose_viz": diffpose_viz.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save to a temp file in the same folder, fsync, then os.replace: a crash mid-write never
    leaves a truncated file under the final name (the previous good file survives)."""
    path = Path(path)
    with atomic_target(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    return path


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, payload: dict) -> Path:
    """Add format/version stamps to `payload` and write it atomically."""
    return atomic_torch_save({"format": FORMAT, "format_version": FORMAT_VERSION, "versions": versions(),
                              **payload}, path)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read and check a checkpoint; raises CheckpointError naming the file on any problem."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling/zip error means the same to the user
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a diffpose_viz checkpoint (no format stamp {FORMAT!r})")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {ckpt.get('format_version')} is not supported "
                              f"(this diffpose_viz {diffpose_viz.__version__} reads version {FORMAT_VERSION}); "
                              f"it was written by {json.dumps(ckpt.get('versions', {}))}")
    for key in ("config", "model", "method"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: checkpoint lacks '{key}'")
    return ckpt


def load_weights(module: torch.nn.Module, state: dict, what: str, path: str | os.PathLike) -> None:
    """load_state_dict with a readable error listing missing/unexpected keys and shape mismatches."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append("shape mismatches: " + "; ".join(shapes[:5]) + (" ..." if len(shapes) > 5 else ""))
        if missing:
            parts.append(f"missing keys: {missing[:5]}" + (" ..." if len(missing) > 5 else ""))
        if unexpected:
            parts.append(f"unexpected keys: {unexpected[:5]}" + (" ..." if len(unexpected) > 5 else ""))
        raise CheckpointError(f"{path}: {what} weights do not fit the model built from its config ("
                              + "; ".join(parts) + ")")
    module.load_state_dict(state)
