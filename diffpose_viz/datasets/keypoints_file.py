"""The one reader of user 2D keypoint files (the `sample` command and the dashboard's own-input page).

Formats, pixels throughout:
- .npz: array `keypoints` (or `keypoints_2d`, `pose2d`, or the only array) shaped (F,J,2|3) or (J,2|3),
  optional `confidence` (F,J) and `format` (a string); read with allow_pickle=False.
- .json: {"keypoints": F x J x [x, y(, score)], "confidence": ..., "format": ...} or a bare list.
- .csv: one frame per row, J*2 (x, y, ...) or J*3 (x, y, score, ...) numbers, optional header line.
Layouts: coco17, h36m17 (17-joint files cannot be told apart: the file or the caller must say), blazepose33.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from diffpose_viz.errors import DataError, data_error_from
from diffpose_viz.safe_io import SafeLoadError, SafeNpzFile, check_input_file
from diffpose_viz.skeleton import blazepose33_to_h36m17, coco17_to_h36m17

#: Layout name -> joint count.
FORMATS = {"coco17": 17, "h36m17": 17, "blazepose33": 33}
_NPZ_KEYS = ("keypoints", "keypoints_2d", "pose2d")
#: A keypoint file is read whole into memory; an hour of 33-joint video at 60 fps is ~50 MB of text.
MAX_KEYPOINT_BYTES = 2 * 2**30


@dataclass
class KeypointFile:
    keypoints: np.ndarray  # (F,J,2) pixels, NaN = missing
    confidence: np.ndarray | None  # (F,J) in [0, 1], None when the file has none
    format: str
    source: str


#: Largest pixel coordinate accepted (a 1-megapixel-wide image is far beyond any camera).
MAX_PIXEL = 1e6


def _npz(source: str, data: bytes) -> tuple[np.ndarray, np.ndarray | None, str | None]:
    # safe_io checks every array header against the data before allocating (a tiny file claiming a huge array)
    try:
        z = SafeNpzFile(source, data=data)
    except SafeLoadError as err:
        raise data_error_from(err) from None
    with z:
        keys = list(z.files)
        key = next((k for k in _NPZ_KEYS if k in keys), keys[0] if len(keys) == 1 else None)
        if key is None:
            raise DataError("no keypoints array", path=source, key="keypoints", expected="one of " + ", ".join(
                _NPZ_KEYS), found=f"keys {keys}")
        arrays = {}
        for k in (key, "confidence", "format"):
            if k not in keys:
                continue
            try:
                arrays[k] = z[k]
            except SafeLoadError as err:
                raise data_error_from(err) from None
            if not isinstance(arrays[k], np.ndarray) or arrays[k].dtype.hasobject:
                raise DataError("holds an array that needs pickle to read; save plain numeric arrays", path=source,
                                key=k, expected="a numeric array", found="a pickled object array")
        try:
            kp = np.asarray(arrays[key], np.float64)
            conf = np.asarray(arrays["confidence"], np.float64) if "confidence" in arrays else None
        except (TypeError, ValueError) as err:
            raise DataError(f"not numbers ({err})", path=source, key=key) from None
        declared = str(arrays["format"]) if "format" in arrays else None
    return kp, conf, declared


def _json(source: str, data: bytes) -> tuple[np.ndarray, np.ndarray | None, str | None]:
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"not valid JSON ({err})", path=source) from None
    conf = declared = None
    if isinstance(obj, dict):
        if "keypoints" not in obj:
            raise DataError("JSON object lacks the keypoints", path=source, key="keypoints",
                            expected="frames x J x [x, y(, score)]", found=f"keys {sorted(obj)}")
        raw, conf, declared = obj["keypoints"], obj.get("confidence"), obj.get("format")
    else:
        raw = obj
    try:
        kp = np.asarray(raw, np.float64)
        conf = None if conf is None else np.asarray(conf, np.float64)
    except (TypeError, ValueError) as err:
        raise DataError(f"keypoints are not a rectangular array of numbers ({err})", path=source,
                        key="keypoints") from None
    return kp, conf, None if declared is None else str(declared)


def _csv(source: str, data: bytes) -> np.ndarray:
    text = data.decode("utf-8", errors="replace")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if lines:
        try:
            [float(v) for v in lines[0].split(",")]
        except ValueError:
            lines = lines[1:]  # a header line
    if not lines:
        raise DataError("no data rows", path=source, expected="one frame per row: x0,y0[,s0],x1,y1,...",
                        found="an empty file (or a header only)")
    try:
        arr = np.loadtxt(io.StringIO("\n".join(lines)), delimiter=",", ndmin=2)
    except ValueError as err:
        raise DataError(f"not a table of numbers ({err})", path=source) from None
    width = arr.shape[1]
    for joints, per in ((17, 2), (17, 3), (33, 2), (33, 3)):
        if width == joints * per:
            return arr.reshape(len(arr), joints, per)
    raise DataError("wrong number of columns", path=source, expected="34 or 51 (17 joints) or 66 or 99 (33 joints)",
                    found=width)


def read_keypoints(source: str | Path, fmt: str = "auto", data: bytes | None = None) -> KeypointFile:
    """Read a keypoint file (from disk, or `data` bytes of an upload named `source`)."""
    source = str(source)
    if fmt != "auto" and fmt not in FORMATS:
        raise DataError("unknown keypoint layout", key="--format", expected=f"auto or one of {sorted(FORMATS)}",
                        found=fmt)
    if data is None:
        try:
            path = check_input_file(source, "a 2D keypoint file (.npz, .json or .csv)", max_bytes=MAX_KEYPOINT_BYTES)
        except SafeLoadError as err:
            raise data_error_from(err) from None
        data = path.read_bytes()
    suffix = Path(source).suffix.lower()
    conf = declared = None
    if suffix == ".npz":
        kp, conf, declared = _npz(source, data)
    elif suffix == ".json":
        kp, conf, declared = _json(source, data)
    elif suffix == ".csv":
        kp = _csv(source, data)
    else:
        raise DataError("unsupported file type", path=source, expected=".npz, .json or .csv", found=suffix or "none")
    if kp.ndim == 2 and kp.shape[1] in (34, 51, 66, 99):
        kp = kp.reshape(len(kp), -1, 2 if kp.shape[1] in (34, 66) else 3)
    if kp.ndim == 2:
        kp = kp[None]
    if kp.ndim != 3 or kp.shape[-1] not in (2, 3) or kp.shape[0] == 0:
        raise DataError("keypoints have the wrong shape", path=source, key="keypoints",
                        expected="(frames >= 1, J, 2) or (frames, J, 3) pixels", found=kp.shape)
    if kp.shape[-1] == 3:
        conf = kp[..., 2] if conf is None else conf
        kp = kp[..., :2]
    if conf is not None:
        if conf.shape != kp.shape[:2]:
            raise DataError("confidence has the wrong shape", path=source, key="confidence",
                            expected=kp.shape[:2], found=conf.shape)
        finite = conf[np.isfinite(conf)]
        if finite.size and (finite.min() < 0 or finite.max() > 1):
            raise DataError("confidence outside [0, 1]", path=source, key="confidence", expected="values in [0, 1]",
                            found=f"[{finite.min():.3g}, {finite.max():.3g}]")
    if np.isinf(kp).any():
        raise DataError("infinite keypoint coordinates", path=source, key="keypoints",
                        expected="finite pixels or NaN for a missing joint", found=f"{int(np.isinf(kp).sum())} inf")
    with np.errstate(invalid="ignore"):
        huge = np.abs(kp) > MAX_PIXEL
    if huge.any():  # no image is this large: a unit mistake or a hostile file (sampling would overflow)
        frame = int(np.argwhere(huge)[0][0])
        raise DataError("keypoint coordinates out of range", path=source, key="keypoints",
                        expected=f"pixels within +-{MAX_PIXEL:g}",
                        found=f"{float(np.nanmax(np.abs(kp))):g} (frame {frame})")
    J = kp.shape[1]
    if declared is not None and declared not in FORMATS:
        raise DataError("unknown declared layout", path=source, key="format", expected=sorted(FORMATS), found=declared)
    if fmt != "auto" and declared is not None and declared != fmt:
        raise DataError("the file declares another layout than --format", path=source, key="format",
                        expected=fmt, found=declared)
    layout = fmt if fmt != "auto" else declared
    if layout is None:
        if J == 33:
            layout = "blazepose33"
        else:
            raise DataError(f"{J} joints: say which layout (--format coco17 or h36m17; 17-joint COCO and "
                            "Human3.6M cannot be told apart from the numbers)", path=source, key="format")
    if J != FORMATS[layout]:
        raise DataError(f"layout {layout} has {FORMATS[layout]} joints", path=source, key="keypoints",
                        expected=FORMATS[layout], found=J)
    return KeypointFile(kp, conf, layout, source)


def to_h36m17(kp: np.ndarray, conf: np.ndarray | None, fmt: str) -> tuple[np.ndarray, np.ndarray]:
    """(F,J,2) px in layout `fmt` -> (F,17,2) H36M-17 px (NaN where missing) and (F,17) confidence."""
    if conf is not None:
        kp = np.where((conf > 0)[..., None], kp, np.nan)
    if fmt == "coco17":
        return coco17_to_h36m17(kp, conf)
    if fmt == "blazepose33":
        return blazepose33_to_h36m17(kp, conf)
    c = np.isfinite(kp).all(-1).astype(np.float64) if conf is None else np.where(np.isfinite(kp).all(-1), conf, 0.0)
    return kp, c


def load_keypoints_h36m17(source: str | Path, fmt: str = "auto",
                          data: bytes | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """read_keypoints + to_h36m17: (F,17,2) float32 px, (F,17) float32 confidence, the layout read."""
    f = read_keypoints(source, fmt, data)
    kp, conf = to_h36m17(f.keypoints, f.confidence, f.format)
    return kp.astype(np.float32), np.asarray(conf, np.float32), f.format
