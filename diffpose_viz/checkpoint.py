"""Checkpoints: one self-describing file per save, written atomically.

A checkpoint carries everything evaluation needs without the training data: the run config,
library versions, the raw and EMA weights, the optimiser state, RNG states and data position (for a
bit-for-bit `--resume`), the input normaliser, the fitted depth prior and, for the official mode,
the embedded initial-pose lifter.

Loading never runs code from the file: `torch.load(weights_only=True)`. What is saved is converted to
tensors and plain Python values first (numpy arrays become tensors, numpy scalars Python numbers, the numpy
RNG state a dict), so a new checkpoint needs nothing allow-listed. Checkpoints written before that hold
numpy arrays; for them the numpy array/dtype/scalar reconstructors are allow-listed (they build arrays
only and call nothing else). Any other global in the file is refused with a CheckpointError naming it.

Every save writes a content fingerprint (sha256 of the weights, config and everything else predictions depend on;
`content_fingerprint`); every load verifies it (or computes it for older files) and refuses non-finite weights.
Files derived from a checkpoint record its fingerprint (`provenance`), and consumers compare it
(`check_made_from`), so a derived file is tied to the model's content, never to where the checkpoint lies.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import warnings
from collections import OrderedDict
import platform
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from diffpose_viz.atomic import atomic_target, recover_replacement
from diffpose_viz.errors import CheckpointError, ProvenanceError
from diffpose_viz.safe_io import SafeLoadError, check_input_file
import diffpose_viz

FORMAT = "diffpose_viz.checkpoint"
FORMAT_VERSION = 1


def versions() -> dict[str, str]:
    return {"diffpose_viz": str(diffpose_viz.__version__), "torch": str(torch.__version__), "numpy": str(np.__version__),
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


def _numpy_legacy_globals() -> list:
    """What old checkpoints reference besides tensors: the numpy reconstructors of pickled arrays/scalars
    (under their numpy 2 and numpy 1 names) and torch's version string class. They rebuild arrays, scalars
    and a str; elements still go through the restricted unpickler."""
    mod = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    out: list = [np.ndarray, np.dtype, torch.torch_version.TorchVersion]  # old files: torch.__version__ as is
    for name in ("_reconstruct", "scalar"):
        fn = getattr(mod, name)
        out += [fn, (fn, f"numpy.core.multiarray.{name}"), (fn, f"numpy._core.multiarray.{name}")]
    for code in "?bBhHiIlLqQefdgFDUS":
        out.append(type(np.dtype(code)))
    return out


def numpy_rng_state() -> dict:
    """np.random.get_state() as plain values (the key array as an int64 tensor)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"bit_generator": str(name), "keys": torch.from_numpy(np.asarray(keys, np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def set_numpy_rng_state(state) -> None:
    """Inverse of numpy_rng_state; also takes the legacy tuple of np.random.get_state()."""
    if isinstance(state, dict):
        keys = np.asarray(state["keys"].numpy() if torch.is_tensor(state["keys"]) else state["keys"]).astype(np.uint32)
        state = (state["bit_generator"], keys, state["pos"], state["has_gauss"], state["cached_gaussian"])
    np.random.set_state(state)


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": numpy_rng_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    set_numpy_rng_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def to_plain(obj: Any) -> Any:
    """`obj` with numpy arrays as tensors (string arrays as str/lists), numpy scalars as Python numbers,
    so that `torch.load(weights_only=True)` reads it without allow-listing anything."""
    if isinstance(obj, dict):
        out = {k: to_plain(v) for k, v in obj.items()}
        return OrderedDict(out) if isinstance(obj, OrderedDict) else out
    if isinstance(obj, list):
        return [to_plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_plain(v) for v in obj)
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "biufc":
            return torch.from_numpy(np.ascontiguousarray(obj))
        return to_plain(obj.tolist()) if obj.ndim else to_plain(obj.item())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, str) and type(obj) is not str:  # e.g. torch.__version__ (a TorchVersion)
        return str(obj)
    return obj


def save_checkpoint(path: str | os.PathLike, payload: dict) -> Path:
    """Add format/version stamps and the content fingerprint to `payload`, convert it to tensors and plain
    values, write it atomically."""
    plain = to_plain(payload)
    plain.pop(FINGERPRINT_KEY, None)  # always recomputed: it must describe what is written
    fingerprint = content_fingerprint(plain)
    path = atomic_torch_save({"format": FORMAT, "format_version": FORMAT_VERSION, "versions": versions(),
                              **plain, FINGERPRINT_KEY: fingerprint}, path)
    _remember(path, fingerprint)
    return path


# --------------------------------------------------------------------------- content fingerprint
#: What a checkpoint's fingerprint covers: everything that decides what the model predicts (weights, EMA
#: weights, config, input normaliser, depth prior, detection-error model, method extras). Optimiser state,
#: RNG states, progress and history are left out: they change nothing a derived artifact depends on.
FINGERPRINT_CONTENT = ("method", "config", "model", "ema", "normaliser", "depth_prior", "detection_error", "extras")
FINGERPRINT_KEY = "fingerprint"


def content_fingerprint(ckpt: dict) -> str:
    """sha256 (hex) of the FINGERPRINT_CONTENT of a checkpoint dict: tensors by dtype, shape and bytes, dicts
    by sorted keys. The same weights and config give the same value wherever the file lies."""
    h = hashlib.sha256(b"diffpose_viz.fingerprint.v1")
    for key in FINGERPRINT_CONTENT:
        _digest(h, key)
        _digest(h, ckpt.get(key))
    return h.hexdigest()


def _digest(h, obj: Any) -> None:
    if isinstance(obj, dict):
        h.update(b"{%d" % len(obj))
        for k in sorted(obj, key=str):
            _digest(h, str(k))
            _digest(h, obj[k])
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"[%d" % len(obj))
        for v in obj:
            _digest(h, v)
        h.update(b"]")
    elif isinstance(obj, np.ndarray) and obj.dtype.kind in "biufc":
        _digest(h, torch.from_numpy(np.ascontiguousarray(obj)))
    elif torch.is_tensor(obj):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, np.generic):
        _digest(h, obj.item())
    elif isinstance(obj, str):
        b = obj.encode("utf-8", "surrogatepass")
        h.update(b"s%d:" % len(b) + b)
    else:  # None, bool, int, float and anything plain: its type and repr
        h.update(f"{type(obj).__name__}:{obj!r};".encode())


def short(fingerprint: str | None) -> str:
    """The first 16 hex digits, for messages (as git shows a commit)."""
    return "none" if not fingerprint else str(fingerprint)[:16]


#: (resolved path, inode, size, mtime) -> fingerprint of checkpoints read or written by this process.
_KNOWN: dict[tuple, str] = {}


def _file_key(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)


def _remember(path: Path, fingerprint: str) -> None:
    key = _file_key(Path(path))
    if key is not None:
        _KNOWN[key] = fingerprint


def checkpoint_fingerprint(path: str | os.PathLike) -> str:
    """The content fingerprint of the checkpoint at `path` (read and verified by `load_checkpoint`, once per
    file version in this process). What every derived artifact records (`provenance`), and what exports call."""
    key = _file_key(Path(path))
    if key is not None and key in _KNOWN:
        return _KNOWN[key]
    return load_checkpoint(path)[FINGERPRINT_KEY]


def provenance(path: str | os.PathLike) -> dict:
    """{"checkpoint": path as given, "checkpoint_fingerprint": its fingerprint}: the two keys a derived artifact
    (metrics JSON, calibration rows, results attributes, exports) records."""
    return {"checkpoint": str(path), "checkpoint_fingerprint": checkpoint_fingerprint(path)}


def check_made_from(recorded: str | None, artifact: str | os.PathLike, checkpoint: str | os.PathLike,
                    what: str = "file") -> str:
    """ProvenanceError unless the fingerprint `recorded` by `artifact` (a metrics JSON, calibration rows, a
    results file) is that of `checkpoint`'s content; names both files and both fingerprints. Paths never
    decide: a moved or copied run still matches, a retrained folder does not. Returns the fingerprint."""
    actual = checkpoint_fingerprint(checkpoint)
    if not recorded:
        raise ProvenanceError(f"{artifact}: this {what} records no checkpoint fingerprint, so it cannot be tied to "
                              f"{checkpoint} (fingerprint {short(actual)}); it predates fingerprints or was edited: "
                              "make it again from that checkpoint (e.g. `diffpose-viz evaluate`)")
    if str(recorded) != actual:
        raise ProvenanceError(f"{artifact}: this {what} was made from the checkpoint with fingerprint "
                              f"{short(str(recorded))}, not from {checkpoint} (fingerprint {short(actual)}): another "
                              "model, or the same folder retrained since; make it again from this checkpoint")
    return actual


def _check_finite(path: Path, ckpt: dict) -> None:
    """Non-finite weights are refused: evaluation would give NaN and `--resume` would train on them."""
    groups = {"model": ckpt.get("model")}
    ema = ckpt.get("ema")
    if isinstance(ema, dict):
        groups["ema"] = ema.get("module", ema)
    for group, state in groups.items():
        if not isinstance(state, dict):
            continue
        for name, value in state.items():
            if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
                raise CheckpointError(f"{path}: {group} weight '{name}' holds NaN or inf (a corrupted checkpoint); "
                                      "expected finite weights as `diffpose-viz train` writes them")


def safe_torch_load(path: str | os.PathLike, map_location: str | torch.device = "cpu", *,
                    what: str = "checkpoint", allow: list | None = None) -> Any:
    """torch.load with weights_only=True (legacy numpy arrays allow-listed, plus `allow`: (stand-in, name)
    pairs); CheckpointError naming the file and, for a refused global (a file that would run code), that global."""
    path = Path(path)
    try:
        check_input_file(path, f"a {what}")
    except SafeLoadError as err:
        raise CheckpointError(str(err)) from None
    try:
        with torch.serialization.safe_globals(_numpy_legacy_globals() + list(allow or ())), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling/zip error means the same to the user
        text = str(err)
        refused = re.search(r"GLOBAL\s+([A-Za-z_][\w.]*)", text)
        if refused:
            raise CheckpointError(f"{path}: refused to load {what}: it references the Python global "
                                  f"'{refused.group(1)}', which could run code when loaded; {NEEDS}") from None
        if "Weights only load failed" in text:
            detail = re.search(r"(Unsupported [^\n.]*)", text)
            raise CheckpointError(f"{path}: refused to load {what}: it is not made only of tensors and plain values"
                                  + (f" ({detail.group(1).strip()})" if detail else "") + f"; {NEEDS}") from None
        first = _without_torch_advice(text)
        raise CheckpointError(f"{path}: cannot read {what} ({type(err).__name__}: {first}); expected a file written "
                              "by torch.save, as `diffpose-viz train` writes it") from None


#: What a refused file would need (never: "load it with weights_only=False", which runs the file's code).
NEEDS = ("a usable file holds only tensors and plain values (dicts, lists, tuples, strings, numbers), as "
         "`diffpose-viz train` writes them: re-save it from the code that made it in that form")


def _without_torch_advice(text: str) -> str:
    """The first line of torch's message minus its advice to disable safe loading."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    kept = [s for s in re.split(r"(?<=[.!?])\s+", first) if "weights_only" not in s and "trusted source" not in s]
    return " ".join(kept) or "unreadable"


def restore_run_folder(folder: str | os.PathLike) -> bool:
    """If run folder `folder` was left mid-replacement by a killed `train --force` (the folder gone, its
    `.NAME.old` present), put the earlier run back and say so on stderr. True when it did."""
    folder = Path(folder)
    if recover_replacement(folder):
        print(f"note: {folder} was left mid-replacement by an interrupted `train --force`; the earlier run "
              f"was restored from {folder.parent / ('.' + folder.name + '.old')}", file=sys.stderr)
        return True
    return False


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read and check a checkpoint; raises CheckpointError naming the file on any problem."""
    path = Path(path)
    if not path.exists():
        restore_run_folder(path.parent)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    ckpt = safe_torch_load(path, map_location)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a diffpose_viz checkpoint (no format stamp {FORMAT!r})")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {ckpt.get('format_version')} is not supported "
                              f"(this diffpose_viz {diffpose_viz.__version__} reads version {FORMAT_VERSION}); "
                              f"it was written by {json.dumps(ckpt.get('versions', {}))}")
    for key in ("config", "model", "method"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: checkpoint lacks '{key}'")
    computed = content_fingerprint(ckpt)
    stored = ckpt.get(FINGERPRINT_KEY)
    if stored is not None and stored != computed:
        raise CheckpointError(f"{path}: its content does not match the fingerprint written when it was saved (stored "
                              f"{short(stored)}, content {short(computed)}): the weights or config were changed or "
                              "corrupted since; restore the file or train again")
    _check_finite(path, ckpt)
    ckpt[FINGERPRINT_KEY] = computed  # checkpoints written before fingerprints get theirs computed
    _remember(path, computed)
    return ckpt


#: Method names renamed since a checkpoint was written: (old name, writer versions) -> current name.
#: Up to 0.2.0 'diffpose' was the jointly trained model, now 'diffpose_joint' ('diffpose' is the two-stage
#: model with a frozen pre-trained context encoder). A 0.2.0 config has no model.context_checkpoint key,
#: which tells its 'diffpose' checkpoints from the two-stage ones (same version number).
RENAMED_METHODS = {("diffpose", ("0.1.0",)): "diffpose_joint"}


def current_method_name(ckpt: dict) -> str | None:
    """The method a checkpoint's model is today (applies RENAMED_METHODS)."""
    config = ckpt.get("config") or {}
    name = config.get("method", ckpt.get("method"))
    written_by = (ckpt.get("versions") or {}).get("diffpose_viz")
    for (old, old_versions), new in RENAMED_METHODS.items():
        if name == old and (written_by in old_versions or "context_checkpoint" not in (config.get("model") or {})):
            return new
    return name


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
