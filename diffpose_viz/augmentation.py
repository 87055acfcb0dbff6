"""Training-time augmentation: new bodies (bone-length rescaling) and new viewpoints (virtual cameras).

Pure functions over numpy arrays; nothing here reads files or knows about the
trainer. Distributions and conventions are described in docs/AUGMENTATION.md.

Bodies: `augment_bodies` rescales each bone of the H36M-17 tree by
`global * group` while keeping every bone's direction, so joint angles are
unchanged. Views: `virtual_cameras` draws pinhole cameras aimed at the subject,
`fit_cameras` keeps the subject in front of them and inside the image,
`project_virtual` re-views poses through them. `augment_rows` does all of it
for rows in the layout of `PoseSet` (camera-frame root-relative pose + root).

This module imports only `skeleton` and `camera` (the geometry layer).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .camera import Camera, quaternion_to_matrix
from .skeleton import H36M17

# --------------------------------------------------------------------------- bodies

#: Segment groups, in the column order of the scale table; left and right share a group.
BODY_GROUPS = ("hips", "shoulders", "spine", "neck_head", "upper_arms", "lower_arms", "thighs", "shins")

#: Group of the bone that ends at each non-root joint (keyed by joint name, child end).
BONE_GROUP_BY_CHILD = {
    "right_hip": "hips", "left_hip": "hips",
    "right_knee": "thighs", "left_knee": "thighs",
    "right_ankle": "shins", "left_ankle": "shins",
    "spine": "spine", "thorax": "spine",
    "neck_nose": "neck_head", "head_top": "neck_head",
    "left_shoulder": "shoulders", "right_shoulder": "shoulders",
    "left_elbow": "upper_arms", "right_elbow": "upper_arms",
    "left_wrist": "lower_arms", "right_wrist": "lower_arms",
}

#: Groups whose lengths a bank person gives directly: joint centre to joint centre, the same in every rig. The trunk
#: groups (hip and shoulder centres, thorax, head) follow each rig's own convention, so a bank person only sets
#: their size (the ratio of the limbs), never their shape.
LIMB_GROUPS = ("upper_arms", "lower_arms", "thighs", "shins")
BANK_SIZES = ("absolute", "proportions")

_BONES = H36M17.bones
#: Group index (into BODY_GROUPS) of every bone of `H36M17.bones`, in that order.
BONE_GROUP_INDEX = np.array([BODY_GROUPS.index(BONE_GROUP_BY_CHILD[H36M17.joint_names[c]]) for _, c in _BONES])


def _check_range(owner: str, name: str, value, lo: float, hi: float, *, lo_open: bool = False,
                 hi_open: bool = False) -> None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = number and (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi)
    if not ok:
        interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise ValueError(f"{owner}.{name} must be a number in {interval}, found {value!r}")


def _check_pair(owner: str, name: str, pair, lo: float, hi: float, *, lo_open: bool = False,
                hi_open: bool = False, what: str = "range") -> tuple[float, float]:
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ValueError(f"{owner}.{name} must be a pair (low, high), found {pair!r}")
    for i, v in enumerate(pair):
        _check_range(owner, f"{name}[{i}]", v, lo, hi, lo_open=lo_open, hi_open=hi_open)
    if what == "range" and pair[0] > pair[1]:
        raise ValueError(f"{owner}.{name} is an empty range: low {pair[0]!r} > high {pair[1]!r}; "
                         f"expected low <= high within [{lo:g}, {hi:g}]")
    return float(pair[0]), float(pair[1])


def _check_scale(owner: str, name: str, pair) -> None:
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ValueError(f"{owner}.{name} must be a pair (median, log_std), found {pair!r}")
    _check_range(owner, f"{name}[0] (median)", pair[0], 0.25, 4.0)
    _check_range(owner, f"{name}[1] (log_std)", pair[1], 0.0, 0.5)


@dataclass(frozen=True)
class BodyAugConfig:
    """New body proportions, drawn independently for every row.

    Each scale is `median * exp(log_std * z)` with `z ~ N(0, 1)` redrawn while
    `|z| > truncate`, so scales are positive, log-symmetric around the median,
    and their spread is close to `median * log_std` for small `log_std`. A bone
    becomes `length * global * group`. Defaults: rounded adult anthropometry,
    see docs/AUGMENTATION.md; they keep the source skeleton as the centre.
    """

    enabled: bool = True
    prob: float = 1.0  # fraction of rows that get a new body; the others keep scale 1
    global_scale: tuple[float, float] = (1.0, 0.06)  # stature: adult CV about 6 %
    hips: tuple[float, float] = (1.0, 0.08)  # pelvis width (both pelvis->hip bones)
    shoulders: tuple[float, float] = (1.0, 0.07)  # both thorax->shoulder bones
    spine: tuple[float, float] = (1.0, 0.04)  # pelvis->spine->thorax
    neck_head: tuple[float, float] = (1.0, 0.06)  # thorax->neck/nose->head top
    upper_arms: tuple[float, float] = (1.0, 0.04)
    lower_arms: tuple[float, float] = (1.0, 0.04)
    thighs: tuple[float, float] = (1.0, 0.04)
    shins: tuple[float, float] = (1.0, 0.04)
    truncate: float = 3.0  # |z| limit, in standard deviations
    # Real people (docs/AUGMENTATION.md "Real bodies"): a skeletons file (datasets/skeleton_bank.py), relative to
    # the repository root; None = only the log-normal draws above.
    bank: str | None = None
    bank_fraction: float = 0.5  # of the rows that get a new body, the share that gets a bank person's instead
    bank_size: str = "absolute"  # "absolute": the person's limb lengths; "proportions": their ratios at the row's size
    bank_exclude: tuple[int, ...] = ()  # CMU subjects never drawn (test, calibration, validation people)

    def __post_init__(self) -> None:
        owner = "BodyAugConfig"
        if not isinstance(self.enabled, bool):
            raise ValueError(f"{owner}.enabled must be true or false, found {self.enabled!r}")
        _check_range(owner, "prob", self.prob, 0.0, 1.0)
        _check_range(owner, "truncate", self.truncate, 0.0, 5.0, lo_open=True)
        for name in ("global_scale", *BODY_GROUPS):
            _check_scale(owner, name, getattr(self, name))
        if self.bank is not None and (not isinstance(self.bank, str) or not self.bank.strip()):
            raise ValueError(f"{owner}.bank must be the path of a skeletons file or null, found {self.bank!r}")
        _check_range(owner, "bank_fraction", self.bank_fraction, 0.0, 1.0)
        if self.bank_size not in BANK_SIZES:
            raise ValueError(f"{owner}.bank_size must be one of {list(BANK_SIZES)}, found {self.bank_size!r}")
        bad = [e for e in self.bank_exclude if isinstance(e, bool) or not isinstance(e, int) or e < 1]
        if bad:
            raise ValueError(f"{owner}.bank_exclude must list CMU subject numbers (positive integers), found {bad}")

    def table(self) -> np.ndarray:
        """(9, 2) [median, log_std] rows: global first, then BODY_GROUPS."""
        return np.array([getattr(self, n) for n in ("global_scale", *BODY_GROUPS)], dtype=np.float64)


def as_rng(rng_or_seed) -> np.random.Generator:
    """A numpy Generator from a Generator (used as is), an int seed, or a SeedSequence."""
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    if rng_or_seed is None:
        raise ValueError("rng_or_seed must be a numpy Generator or an int seed, found None "
                         "(augmentation must be reproducible: pass a seed)")
    return np.random.default_rng(rng_or_seed)


def truncated_normal(rng: np.random.Generator, shape, limit: float) -> np.ndarray:
    """Standard normal draws with |z| <= limit; out-of-range values are redrawn (vectorised)."""
    z = rng.standard_normal(shape)
    bad = np.abs(z) > limit
    while bad.any():  # P(|z| > 3) = 0.27 %: two or three passes
        z[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(z) > limit
    return z


def group_lengths(bone_lengths: np.ndarray) -> np.ndarray:
    """(..., 16) lengths of `H36M17.bones` -> (..., 8) total length of each of BODY_GROUPS (both sides)."""
    b = np.asarray(bone_lengths, dtype=np.float64)
    onehot = np.eye(len(BODY_GROUPS))[BONE_GROUP_INDEX]  # (16, 8)
    return b @ onehot


def bank_group_scales(row_groups: np.ndarray, person_groups: np.ndarray, size: str = "absolute") -> np.ndarray:
    """(N, 8) group scales that give each row the limbs of a bank person (rows and people paired, (N, 8) each).

    Limb groups get the person's length ("absolute") or the person's limb proportions at the row's own total limb
    length ("proportions"); trunk groups keep the row's shape and grow with the person's size (their limbs over
    the row's) in "absolute", stay as they are in "proportions".
    """
    limbs = [BODY_GROUPS.index(g) for g in LIMB_GROUPS]
    row = np.maximum(np.asarray(row_groups, dtype=np.float64), 1e-6)
    person = np.asarray(person_groups, dtype=np.float64)
    size_ratio = person[:, limbs].sum(-1) / row[:, limbs].sum(-1)  # (N,)
    out = np.repeat(size_ratio[:, None], len(BODY_GROUPS), 1) if size == "absolute" else np.ones_like(row)
    limb_scale = person[:, limbs] / row[:, limbs]
    out[:, limbs] = limb_scale if size == "absolute" else limb_scale / size_ratio[:, None]
    return out


def draw_body_scales(n: int, rng_or_seed, cfg: BodyAugConfig = BodyAugConfig(), *,
                     row_groups: np.ndarray | None = None, bank_groups: np.ndarray | None = None
                     ) -> dict[str, np.ndarray]:
    """Per-row scales: {"global": (n,), "hips": (n,), ...}; rows not drawn (prob, disabled) are 1.

    With a bank (`cfg.bank`; `bank_groups` (P, 8) the people's `group_lengths`, `row_groups` (n, 8) the rows'),
    a `cfg.bank_fraction` share of the drawn rows takes a uniformly drawn person's limbs (`bank_group_scales`)
    instead of the log-normal draw.
    """
    rng = as_rng(rng_or_seed)
    names = ("global", *BODY_GROUPS)
    if not cfg.enabled:
        return {k: np.ones(n) for k in names}
    # Draw for every row, then mask, so the stream does not depend on prob.
    chosen = rng.random(n) < cfg.prob
    z = truncated_normal(rng, (n, len(names)), cfg.truncate)
    table = cfg.table()
    s = table[:, 0] * np.exp(table[:, 1] * z)
    if cfg.bank is not None:  # drawn after the log-normal ones, so a config without a bank keeps its stream
        if bank_groups is None or row_groups is None or len(bank_groups) == 0:
            raise ValueError(f"augmentation.body.bank is {cfg.bank!r}, but no bank people (or row lengths) were "
                             "given; inputs.augment_split reads the file")
        real = rng.random(n) < cfg.bank_fraction
        person = rng.integers(len(bank_groups), size=n)
        s[real, 0] = 1.0
        s[real, 1:] = bank_group_scales(row_groups[real], np.asarray(bank_groups)[person[real]], cfg.bank_size)
    s[~chosen] = 1.0
    return {k: s[:, i].copy() for i, k in enumerate(names)}


def bone_scale_matrix(scales: Mapping[str, np.ndarray]) -> np.ndarray:
    """(N, 16) total scale of every bone of `H36M17.bones`: global * group."""
    groups = np.stack([np.asarray(scales[g], dtype=np.float64) for g in BODY_GROUPS], -1)
    return groups[:, BONE_GROUP_INDEX] * np.asarray(scales["global"], dtype=np.float64)[:, None]


def rescale_bones(pose3d: np.ndarray, bone_scale: np.ndarray) -> np.ndarray:
    """Multiply each bone vector of (N,17,3) poses by (N,16) factors, rebuilding children from the root out.

    Joint 0 stays where it is; every bone keeps its direction.
    """
    pose = np.asarray(pose3d)
    dtype = pose.dtype if pose.dtype.kind == "f" else np.float64
    pose = pose.astype(dtype, copy=False)
    k = np.asarray(bone_scale, dtype=dtype)
    out = np.empty_like(pose)
    out[:, 0] = pose[:, 0]
    # Parents precede children in H36M17, so each parent is final when its child is built.
    for b, (p, c) in enumerate(_BONES):
        out[:, c] = out[:, p] + (pose[:, c] - pose[:, p]) * k[:, b, None]
    return out


def augment_bodies(pose3d: np.ndarray, rng_or_seed, cfg: BodyAugConfig = BodyAugConfig(), *,
                   bank_bones: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """New body proportions for (N,17,3) poses (any frame; root-relative keeps the pelvis at 0).

    Returns the new poses (float dtype of the input) and the scales drawn
    (`draw_body_scales`): bone b's new length is old * global * group(b).
    bank_bones: (P, 16) real people's lengths of `H36M17.bones` in metres, needed when `cfg.bank` is set.
    """
    pose = np.asarray(pose3d)
    if pose.ndim != 3 or pose.shape[1:] != (H36M17.num_joints, 3):
        raise ValueError(f"pose3d: expected (N, 17, 3) H36M-17 positions, found shape {pose.shape}")
    if cfg.enabled and cfg.bank is not None:
        row_groups = group_lengths(H36M17.bone_lengths(pose.astype(np.float64)))
        scales = draw_body_scales(len(pose), rng_or_seed, cfg, row_groups=row_groups,
                                  bank_groups=None if bank_bones is None else group_lengths(bank_bones))
    else:
        scales = draw_body_scales(len(pose), rng_or_seed, cfg)
    if not cfg.enabled:
        return pose.astype(pose.dtype if pose.dtype.kind == "f" else np.float64, copy=True), scales
    out = rescale_bones(pose, bone_scale_matrix(scales))
    if cfg.prob < 1.0:  # rows left alone are copied, not rebuilt, so they match bit for bit
        same = np.all([v == 1.0 for v in scales.values()], axis=0)
        out[same] = pose[same]
    return out, scales


# --------------------------------------------------------------------------- viewpoints
VIEW_SAMPLERS = ("uniform", "real_cameras")


@dataclass(frozen=True)
class ViewAugConfig:
    """Virtual pinhole cameras around the subject (no lens distortion).

    Angles in degrees. yaw: azimuth around the up axis (0 = the side of the
    reference direction, e.g. the real camera); elevation: camera height angle
    above the aim point (positive looks down); roll: about the optical axis.
    The aim point is the pelvis plus a uniform offset of up to `aim_jitter_m` per
    axis. Focal lengths are for `image_size`; fx = fy. After drawing, cameras
    are pushed back until every joint is `min_depth_m` in front, and the focal
    length is shrunk (never grown) until every joint is `margin_px` inside the
    image (see `fit_cameras`).
    """

    enabled: bool = True
    prob: float = 0.5  # fraction of rows seen through a virtual camera
    # "uniform": focal_px and distance_m uniform, focal shrunk to keep every joint in frame (the first sampler);
    # "real_cameras": the size-cue-preserving sampler of docs/AUGMENTATION.md: focal from a horizontal field of
    # view drawn uniformly in `hfov_deg` (real cameras), distance log-uniform in `distance_m`, both independent of
    # the body, and the focal is never shrunk to fit the body (rows that leave the image stay truncated).
    sampler: str = "uniform"
    hfov_deg: tuple[float, float] = (40.0, 75.0)
    yaw_deg: tuple[float, float] = (0.0, 360.0)
    elevation_deg: tuple[float, float] = (-10.0, 35.0)
    roll_deg: tuple[float, float] = (-5.0, 5.0)
    distance_m: tuple[float, float] = (2.5, 8.0)
    focal_px: tuple[float, float] = (700.0, 1500.0)
    principal_jitter_px: float = 20.0  # uniform +- around the image centre, per axis
    image_size: tuple[int, int] = (1000, 1000)  # width, height in pixels
    aim_jitter_m: float = 0.2
    min_depth_m: float = 1.0
    margin_px: float = 5.0

    def __post_init__(self) -> None:
        owner = "ViewAugConfig"
        if not isinstance(self.enabled, bool):
            raise ValueError(f"{owner}.enabled must be true or false, found {self.enabled!r}")
        _check_range(owner, "prob", self.prob, 0.0, 1.0)
        yaw = _check_pair(owner, "yaw_deg", self.yaw_deg, -360.0, 720.0)
        if yaw[1] - yaw[0] > 360.0:
            raise ValueError(f"{owner}.yaw_deg spans {yaw[1] - yaw[0]:g} degrees; expected at most 360")
        _check_pair(owner, "elevation_deg", self.elevation_deg, -90.0, 90.0, lo_open=True, hi_open=True)
        _check_pair(owner, "roll_deg", self.roll_deg, -45.0, 45.0)
        _check_pair(owner, "distance_m", self.distance_m, 0.5, 100.0)
        _check_pair(owner, "focal_px", self.focal_px, 1.0, 1e5)
        if self.sampler not in VIEW_SAMPLERS:
            raise ValueError(f"{owner}.sampler must be one of {list(VIEW_SAMPLERS)}, found {self.sampler!r}")
        _check_pair(owner, "hfov_deg", self.hfov_deg, 10.0, 150.0)
        if not (isinstance(self.image_size, (tuple, list)) and len(self.image_size) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and 16 <= v <= 20000 for v in self.image_size)):
            raise ValueError(f"{owner}.image_size must be (width, height) integers in [16, 20000], "
                             f"found {self.image_size!r}")
        w, h = self.image_size
        _check_range(owner, "margin_px", self.margin_px, 0.0, min(w, h) / 4)
        _check_range(owner, "principal_jitter_px", self.principal_jitter_px, 0.0, min(w, h) / 4 - self.margin_px)
        _check_range(owner, "aim_jitter_m", self.aim_jitter_m, 0.0, 1.0)
        _check_range(owner, "min_depth_m", self.min_depth_m, 0.1, self.distance_m[0], lo_open=False)


@dataclass(frozen=True)
class AugmentationConfig:
    """What the trainer nests in its config: body and view augmentation, each with its own `prob`."""

    body: BodyAugConfig = field(default_factory=BodyAugConfig)
    view: ViewAugConfig = field(default_factory=ViewAugConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.body, BodyAugConfig):
            raise ValueError(f"AugmentationConfig.body must be a BodyAugConfig, found {type(self.body).__name__}")
        if not isinstance(self.view, ViewAugConfig):
            raise ValueError(f"AugmentationConfig.view must be a ViewAugConfig, found {type(self.view).__name__}")


@dataclass(frozen=True)
class VirtualCameras:
    """N pinhole cameras, one per row, in the Camera conventions (camera-to-world, centre in metres).

    `rotation` is `quaternion_to_matrix(orientation)`, the same matrix `camera(i)`
    uses, so the batch projection and `Camera.project` agree.
    """

    orientation: np.ndarray  # (N, 4) camera-to-world quaternion (w, x, y, z)
    translation: np.ndarray  # (N, 3) camera centre in the world (the caller's frame)
    focal: np.ndarray  # (N, 2) fx, fy pixels
    center: np.ndarray  # (N, 2) principal point pixels
    res: np.ndarray  # (N, 2) int32 width, height
    yaw_deg: np.ndarray  # (N,) as drawn
    elevation_deg: np.ndarray  # (N,) as drawn
    roll_deg: np.ndarray  # (N,) as drawn
    distance_m: np.ndarray  # (N,) aim point to camera centre (after any push-back)
    rotation: np.ndarray = field(repr=False, default=None)  # (N, 3, 3) camera-to-world

    def __post_init__(self) -> None:
        if self.rotation is None:
            object.__setattr__(self, "rotation", quaternion_to_matrix(self.orientation))

    def __len__(self) -> int:
        return len(self.orientation)

    def camera(self, i: int) -> Camera:
        """Row i as a `Camera` (zero distortion)."""
        return Camera(
            id=f"virtual{i}", res_w=int(self.res[i, 0]), res_h=int(self.res[i, 1]),
            focal=tuple(float(v) for v in self.focal[i]), center=tuple(float(v) for v in self.center[i]),
            orientation=tuple(float(v) for v in self.orientation[i]),
            translation=tuple(float(v) for v in self.translation[i]),
        )

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        """(N, J, 3) world points -> (N, J, 3) camera frame, row i through camera i."""
        x = np.asarray(points, dtype=np.float64) - self.translation[:, None, :]
        return np.einsum("nji,nik->njk", x, self.rotation)

    def project(self, x_cam: np.ndarray) -> np.ndarray:
        """(N, J, 3) camera-frame points -> (N, J, 2) pixels (same formula as `Camera.project`, no distortion)."""
        x_cam = np.asarray(x_cam, dtype=np.float64)
        z = x_cam[..., 2:3]
        if np.any(z <= 0):
            rows = np.flatnonzero((z <= 0).any(axis=(1, 2)))
            raise ValueError(f"virtual cameras: rows {rows[:5].tolist()} have points at or behind the camera (z <= 0)")
        return x_cam[..., :2] / z * self.focal[:, None, :] + self.center[:, None, :]


def matrix_to_quaternion(r: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 4) unit quaternions (w, x, y, z) with w >= 0.

    Picks, per matrix, the largest of 4w^2, 4x^2, 4y^2, 4z^2 to divide by, so no
    branch divides by a small number.
    """
    r = np.asarray(r, dtype=np.float64)
    m00, m11, m22 = r[..., 0, 0], r[..., 1, 1], r[..., 2, 2]
    cand = np.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    k = np.argmax(cand, -1)
    s = np.sqrt(np.maximum(np.take_along_axis(cand, k[..., None], -1)[..., 0], 1e-300)) * 2  # 4 * |component|
    d21, d02, d10 = r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] - r[..., 0, 1]
    s01, s02, s12 = r[..., 0, 1] + r[..., 1, 0], r[..., 0, 2] + r[..., 2, 0], r[..., 1, 2] + r[..., 2, 1]
    q = np.where(
        (k == 0)[..., None], np.stack([s / 4, d21 / s, d02 / s, d10 / s], -1), np.where(
            (k == 1)[..., None], np.stack([d21 / s, s / 4, s01 / s, s02 / s], -1), np.where(
                (k == 2)[..., None], np.stack([d02 / s, s01 / s, s / 4, s12 / s], -1),
                np.stack([d10 / s, s02 / s, s12 / s, s / 4], -1))))
    q = q * np.where(q[..., :1] < 0, -1.0, 1.0)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def _rows(v, n: int, name: str, default) -> np.ndarray:
    v = np.asarray(default if v is None else v, dtype=np.float64)
    if v.shape == (3,):
        return np.broadcast_to(v, (n, 3))
    if v.shape != (n, 3):
        raise ValueError(f"{name}: expected (3,) or ({n}, 3), found shape {v.shape}")
    return v


def _unit(v: np.ndarray, name: str) -> np.ndarray:
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    if np.any(norm < 1e-12):
        raise ValueError(f"{name}: zero-length direction in rows {np.flatnonzero(norm[:, 0] < 1e-12)[:5].tolist()}")
    return v / norm


def virtual_cameras(
    n: int,
    rng_or_seed,
    cfg: ViewAugConfig = ViewAugConfig(),
    *,
    target: np.ndarray | None = None,
    up: np.ndarray | None = None,
    reference: np.ndarray | None = None,
    target_height_m: float = 1.0,
) -> VirtualCameras:
    """Draw n cameras aimed at `target` (+ aim jitter) in the caller's world frame.

    target: (3,) or (n, 3) aim points; default (0, 0, target_height_m), a pelvis
    in a Z-up world with the floor at z = 0. up: world up, default +Z.
    reference: direction from the target towards yaw 0 (its horizontal part is
    used), default +X. The draw does not look at any pose; call `fit_cameras`
    to keep a subject in front and in frame.
    """
    rng = as_rng(rng_or_seed)
    target = _rows(target, n, "target", (0.0, 0.0, target_height_m))
    up = _unit(_rows(up, n, "up", (0.0, 0.0, 1.0)), "up")
    reference = _rows(reference, n, "reference", (1.0, 0.0, 0.0))

    u = rng.random((n, 7))  # one draw per row and quantity, in a fixed order
    lerp = lambda pair, x: pair[0] + (pair[1] - pair[0]) * x  # noqa: E731
    yaw = lerp(cfg.yaw_deg, u[:, 0])
    elev = lerp(cfg.elevation_deg, u[:, 1])
    roll = lerp(cfg.roll_deg, u[:, 2])
    w, h = cfg.image_size
    if cfg.sampler == "real_cameras":  # field of view of a real camera, distance log-uniform; body-blind
        dist = np.exp(lerp(np.log(cfg.distance_m), u[:, 3]))
        focal = (w / 2.0) / np.tan(np.radians(lerp(cfg.hfov_deg, u[:, 4])) / 2.0)
    else:
        dist = lerp(cfg.distance_m, u[:, 3])
        focal = lerp(cfg.focal_px, u[:, 4])
    pp = (u[:, 5:7] * 2 - 1) * cfg.principal_jitter_px
    aim = target + (rng.random((n, 3)) * 2 - 1) * cfg.aim_jitter_m

    # Horizontal basis: h0 towards yaw 0, h1 = up x h0 (counter-clockwise seen from above).
    h0 = reference - (reference * up).sum(-1, keepdims=True) * up
    flat = np.linalg.norm(h0, axis=-1) < 1e-9
    if flat.any():  # reference along up: any horizontal direction will do
        alt = np.where(np.abs(up[flat, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
        h0[flat] = alt - (alt * up[flat]).sum(-1, keepdims=True) * up[flat]
    h0 = _unit(h0, "reference")
    h1 = np.cross(up, h0)
    y, e, r = np.radians(yaw)[:, None], np.radians(elev)[:, None], np.radians(roll)[:, None]
    out_dir = np.cos(e) * (np.cos(y) * h0 + np.sin(y) * h1) + np.sin(e) * up  # aim point -> camera
    centre = aim + dist[:, None] * out_dir

    # Camera axes (x right, y down, z forward): forward x up points right, since |elevation| < 90.
    z_axis = -out_dir
    x_axis = _unit(np.cross(z_axis, up), "camera x axis")
    y_axis = np.cross(z_axis, x_axis)
    x_rolled = np.cos(r) * x_axis + np.sin(r) * y_axis
    y_rolled = -np.sin(r) * x_axis + np.cos(r) * y_axis
    q = matrix_to_quaternion(np.stack([x_rolled, y_rolled, z_axis], -1))  # columns = camera axes in world

    return VirtualCameras(
        orientation=q, translation=centre, focal=np.stack([focal, focal], -1),
        center=np.array([w / 2.0, h / 2.0]) + pp, res=np.broadcast_to(np.array([w, h], np.int32), (n, 2)).copy(),
        yaw_deg=yaw, elevation_deg=elev, roll_deg=roll, distance_m=dist,
    )


def fit_cameras(cams: VirtualCameras, points: np.ndarray, cfg: ViewAugConfig = ViewAugConfig()) -> VirtualCameras:
    """Make every point of row i lie `min_depth_m` in front of camera i and `margin_px` inside its image.

    points: (N, J, 3) absolute positions in the cameras' world frame. A camera
    too close is moved back along its optical axis (aim and angles unchanged);
    then (sampler "uniform" only) a focal length that would put a joint outside the
    margin is reduced to the largest that fits. The principal point is never moved.
    """
    x_cam = cams.world_to_camera(points)
    push = np.maximum(cfg.min_depth_m - x_cam[..., 2].min(-1), 0.0)
    forward = cams.rotation[:, :, 2]
    translation = cams.translation - push[:, None] * forward
    z = x_cam[..., 2] + push[:, None]
    ratio = x_cam[..., :2] / z[..., None]  # (N, J, 2) normalised image coordinates
    res = cams.res.astype(np.float64)
    room_hi = (res - cfg.margin_px - cams.center)[:, None, :]  # pixels to the right / bottom margin
    room_lo = (cams.center - cfg.margin_px)[:, None, :]
    with np.errstate(divide="ignore"):
        limit = np.where(ratio > 0, room_hi / ratio, np.where(ratio < 0, room_lo / -ratio, np.inf))
    fmax = limit.min(axis=(1, 2))
    # Shrinking the focal to fit the body makes a large body look like a small one: the real-camera sampler
    # keeps the drawn focal (the 2D size cue) and leaves out-of-frame joints to the detector's truncation.
    focal = cams.focal if cfg.sampler == "real_cameras" else np.minimum(cams.focal, fmax[:, None])
    return VirtualCameras(
        orientation=cams.orientation, translation=translation, focal=focal, center=cams.center, res=cams.res,
        yaw_deg=cams.yaw_deg, elevation_deg=cams.elevation_deg, roll_deg=cams.roll_deg,
        distance_m=cams.distance_m + push, rotation=cams.rotation,
    )


class ViewProjection(NamedTuple):
    pose3d: np.ndarray  # (N, 17, 3) root-relative, virtual camera frame
    root: np.ndarray  # (N, 3) root in the virtual camera frame
    pose2d: np.ndarray  # (N, 17, 2) pixels
    res: np.ndarray  # (N, 2) int32 width, height


def project_virtual(pose3d: np.ndarray, root: np.ndarray | None, cams: VirtualCameras) -> ViewProjection:
    """Re-view poses through virtual cameras.

    pose3d: (N, 17, 3) root-relative positions (axes of the cameras' world frame)
    with `root` (N, 3) their root in that frame, or absolute positions with
    root=None. Output arrays use the float dtype of `pose3d` (float32 stays
    float32); the arithmetic is float64. Raises ValueError if a joint is not in
    front of its camera (use `fit_cameras` first).
    """
    pose = np.asarray(pose3d)
    if pose.ndim != 3 or pose.shape[1:] != (H36M17.num_joints, 3) or len(pose) != len(cams):
        raise ValueError(f"pose3d: expected ({len(cams)}, 17, 3), found shape {pose.shape}")
    dtype = pose.dtype if pose.dtype.kind == "f" else np.float64
    p = pose.astype(np.float64)
    if root is None:
        root_w = p[:, 0].copy()
        p = p - root_w[:, None]
    else:
        root_w = np.asarray(root, dtype=np.float64)
        if root_w.shape != (len(pose), 3):
            raise ValueError(f"root: expected ({len(pose)}, 3), found shape {root_w.shape}")
    rel = np.einsum("nji,nik->njk", p, cams.rotation)  # rotation only: no cancellation on the root offset
    root_c = np.einsum("ni,nik->nk", root_w - cams.translation, cams.rotation)
    uv = cams.project(rel + root_c[:, None])
    return ViewProjection(rel.astype(dtype), root_c.astype(dtype), uv.astype(dtype), cams.res.copy())


def camera_up_vectors(cameras: Mapping[str, Camera], keys: np.ndarray, world_up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """(N, 3) world up expressed in each row's real camera frame (R^T up)."""
    keys = np.asarray(keys)
    out = np.empty((len(keys), 3))
    for k in np.unique(keys):
        out[keys == k] = cameras[str(k)].rotation.T @ np.asarray(world_up, dtype=np.float64)
    return out


class ViewAugResult(NamedTuple):
    pose3d: np.ndarray
    root: np.ndarray
    pose2d: np.ndarray
    res: np.ndarray
    cameras: VirtualCameras


def view_augment(pose3d_cam: np.ndarray, root_cam: np.ndarray, rng_or_seed, cfg: ViewAugConfig = ViewAugConfig(),
                 *, up: np.ndarray | None = None) -> ViewAugResult:
    """Re-view camera-frame rows from new viewpoints: the real camera frame serves as the world.

    pose3d_cam (N,17,3) root-relative and root_cam (N,3) in the real camera frame.
    up: world up in that frame per row (`camera_up_vectors`); default -y (a level
    camera). Yaw 0 is the side of the real camera. Cameras are fitted to each
    row's pose (in front, in frame) before projecting.
    """
    root_cam = np.asarray(root_cam, dtype=np.float64)
    n = len(root_cam)
    up = _rows(up, n, "up", (0.0, -1.0, 0.0))
    cams = virtual_cameras(n, rng_or_seed, cfg, target=root_cam, up=up, reference=-root_cam)
    cams = fit_cameras(cams, np.asarray(pose3d_cam, dtype=np.float64) + root_cam[:, None], cfg)
    return ViewAugResult(*project_virtual(pose3d_cam, root_cam, cams), cams)


# --------------------------------------------------------------------------- rows of a PoseSet
class AugmentedRows(NamedTuple):
    pose3d: np.ndarray  # (N, 17, 3) camera-frame root-relative metres (new body, new view where `virtual`)
    root: np.ndarray  # (N, 3)
    pose2d: np.ndarray  # (N, 17, 2) pixels: virtual camera where `virtual`, else the real camera (distorted)
    res: np.ndarray  # (N, 2) int32
    focal: np.ndarray  # (N,) mean focal length in pixels (for the detector simulator)
    virtual: np.ndarray  # (N,) bool, row seen through a virtual camera
    scales: dict  # body scales, see draw_body_scales
    intrinsics: np.ndarray  # (N, 4) [fx, fy, cx, cy] pixels of each row's (real or virtual) camera


def augment_rows(
    pose3d: np.ndarray,
    root: np.ndarray,
    camera_keys: np.ndarray,
    cameras: Mapping[str, Camera],
    rng_or_seed,
    cfg: AugmentationConfig = AugmentationConfig(),
    *,
    tangential_order: str = "h36m",
    world_up=(0.0, 0.0, 1.0),
    bank_bones: np.ndarray | None = None,
) -> AugmentedRows:
    """Body + view augmentation of PoseSet-shaped rows (pose3d, root, camera, cameras).

    Every row gets a new body (prob `cfg.body.prob`); a `cfg.view.prob` fraction is
    re-viewed through a virtual camera, the rest are re-projected through their
    real camera (with its distortion) so 2D matches the new body. Body scaling
    about the pelvis can push a joint of a real-camera row out of its image;
    such rows are kept (the detector simulator treats them as truncated).
    bank_bones: the real people of `cfg.body.bank` (see `augment_bodies`).
    """
    rng = as_rng(rng_or_seed)
    pose3d = np.asarray(pose3d)
    root = np.asarray(root)
    keys = np.asarray(camera_keys)
    n = len(pose3d)
    if root.shape != (n, 3) or keys.shape != (n,):
        raise ValueError(f"root/camera_keys: expected ({n}, 3) and ({n},), found {root.shape} and {keys.shape}")
    missing = sorted(set(np.unique(keys).astype(str).tolist()) - set(cameras))
    if missing:
        raise KeyError(f"cameras has no entry for camera keys {missing[:5]}; known: {sorted(cameras)}")
    new_pose, scales = augment_bodies(pose3d, rng, cfg.body, bank_bones=bank_bones)
    virtual = (rng.random(n) < cfg.view.prob) if cfg.view.enabled else np.zeros(n, bool)
    view_rng = np.random.default_rng(rng.integers(2**63))  # view draws do not shift with the mask size

    dtype = new_pose.dtype
    out_pose = new_pose.copy()
    out_root = root.astype(dtype, copy=True)
    pose2d = np.empty((n, 17, 2), dtype)
    res = np.empty((n, 2), np.int32)
    focal = np.empty(n)
    intrinsics = np.empty((n, 4))
    real = ~virtual
    for k in np.unique(keys[real]):
        rows = real & (keys == k)
        cam = cameras[str(k)]
        absolute = new_pose[rows].astype(np.float64) + root[rows, None, :].astype(np.float64)
        pose2d[rows] = cam.project(absolute, tangential_order=tangential_order)
        res[rows] = (cam.res_w, cam.res_h)
        focal[rows] = float(np.mean(cam.focal))
        intrinsics[rows] = (*cam.focal, *cam.center)
    if virtual.any():
        up = camera_up_vectors(cameras, keys[virtual], world_up)
        v = view_augment(new_pose[virtual], root[virtual], view_rng, cfg.view, up=up)
        out_pose[virtual], out_root[virtual], pose2d[virtual], res[virtual] = v.pose3d, v.root, v.pose2d, v.res
        focal[virtual] = v.cameras.focal.mean(-1)
        intrinsics[virtual] = np.concatenate([v.cameras.focal, v.cameras.center], -1)
    return AugmentedRows(out_pose, out_root, pose2d, res, focal, virtual, scales, intrinsics)
