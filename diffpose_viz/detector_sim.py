"""A simulated 2D keypoint detector for data that comes without detections.

It turns ground-truth 2D projections into detector-like output: per-joint Gaussian noise with a
heavy tail, occasional left/right swaps, self-occlusion from the depth order of the body parts,
random rectangular occluders and image truncation. Each joint also gets a small heatmap
description (two Gaussian modes, pixels) and a confidence derived from the heatmap's spread.
The chosen numbers and the reasoning behind them are in docs/DETECTOR_SIM.md.

Everything is vectorised over frames. Frames are processed in fixed blocks, each with its own
random generator seeded by (seed, block index), so the output depends only on the seed and the
input, and memory stays bounded for a million frames.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from diffpose_viz.camera import Camera
from diffpose_viz.skeleton import H36M17

NUM_JOINTS = H36M17.num_joints
#: Heatmap modes per joint: the main peak and a secondary one (used by left/right swaps).
NUM_MODES = 2
MODE_FIELDS = ("weight", "mu_u_px", "mu_v_px", "std_u_px", "std_v_px")

# Per-axis noise std in pixels for a person ~450 px tall in a 1000 px H36M image. Chosen, not
# fitted: torso joints are easiest, wrists/ankles/elbows hardest (see docs/DETECTOR_SIM.md).
DEFAULT_NOISE_STD_PX: tuple[float, ...] = (
    3.5,  # pelvis
    4.0, 5.0, 6.5,  # right hip, knee, ankle
    4.0, 5.0, 6.5,  # left hip, knee, ankle
    4.0, 3.5, 4.0, 4.5,  # spine, thorax, neck/nose, head top
    4.0, 6.0, 8.0,  # left shoulder, elbow, wrist
    4.0, 6.0, 8.0,  # right shoulder, elbow, wrist
)

# Body-part radius in metres of the bone that ends at each joint (index = child joint; the
# root entry is unused). Rough adult limb half-thicknesses; the torso is wide.
DEFAULT_BONE_RADIUS_M: tuple[float, ...] = (
    0.0,
    0.09, 0.08, 0.055,  # pelvis->right hip, thigh, shin
    0.09, 0.08, 0.055,  # left side
    0.13, 0.13, 0.06, 0.09,  # pelvis->spine, spine->thorax, neck, head
    0.06, 0.05, 0.04,  # thorax->left shoulder, upper arm, forearm
    0.06, 0.05, 0.04,  # right side
)

DEFAULT_SWAP_PAIRS: tuple[tuple[int, int], ...] = tuple(zip(H36M17.left, H36M17.right))

# Frames per random-number block; part of the output's definition, so do not change lightly.
_BLOCK = 8192


@dataclass(frozen=True)
class DetectorSimConfig:
    """Settings of the simulated detector; pixel values refer to a ~450 px tall person unless
    `reference_height_px` rescales them per frame."""

    seed: int = 0
    noise_std_px: tuple[float, ...] = DEFAULT_NOISE_STD_PX
    # Per (frame, joint) difficulty d = exp(s z - s^2), E[d^2] = 1: it scales both the error and
    # the heatmap spread (so confidence tracks error) while keeping the error std at noise_std_px.
    difficulty_sigma: float = 0.3
    gross_error_prob: float = 0.01
    gross_error_std_px: float = 25.0
    swap_prob: float = 0.005  # per left/right pair and frame
    swap_pairs: tuple[tuple[int, int], ...] = DEFAULT_SWAP_PAIRS
    swap_main_weight: float = 0.7  # weight of the (wrong) main mode of a swapped joint
    self_occlusion: bool = True
    bone_radius_m: tuple[float, ...] = DEFAULT_BONE_RADIUS_M
    depth_margin_m: float = 0.0  # extra depth the joint must lie behind the occluding part's back surface
    occluder_prob: float = 0.05  # per frame: one random rectangle over the person
    occluder_size: tuple[float, float] = (0.15, 0.4)  # side as a fraction of the person's 2D box side
    truncation: bool = True  # joints outside the image count as occluded
    occluded_noise_factor: float = 2.5
    occluded_spread_factor: float = 4.0
    occluded_as_missing: bool = False  # NaN keypoints and confidence 0 for occluded joints
    heatmap_sigma_px: float = 8.0  # spread of a perfect detection's heatmap peak
    confidence_scale_px: float = 20.0  # confidence = exp(-0.5 (effective spread / this)^2)
    reference_height_px: float | None = None  # if set, scale pixel settings by person height / this

    def __post_init__(self) -> None:
        for name in ("noise_std_px", "bone_radius_m"):
            v = np.asarray(getattr(self, name), dtype=float)
            if v.shape != (NUM_JOINTS,) or (v < 0).any():
                raise ValueError(f"DetectorSimConfig.{name}: expected {NUM_JOINTS} non-negative values, found {v}")
        for name in ("gross_error_prob", "swap_prob", "occluder_prob", "swap_main_weight"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"DetectorSimConfig.{name} must lie in [0, 1], found {v}")
        for name in ("heatmap_sigma_px", "confidence_scale_px", "occluded_noise_factor", "occluded_spread_factor"):
            if getattr(self, name) <= 0:
                raise ValueError(f"DetectorSimConfig.{name} must be > 0, found {getattr(self, name)}")
        lo, hi = self.occluder_size
        if not 0 < lo <= hi:
            raise ValueError(f"DetectorSimConfig.occluder_size must be 0 < low <= high, found {self.occluder_size}")
        for l, r in self.swap_pairs:
            if not (0 <= l < NUM_JOINTS and 0 <= r < NUM_JOINTS and l != r):
                raise ValueError(f"DetectorSimConfig.swap_pairs: bad pair {(l, r)}")
        flat = [j for pair in self.swap_pairs for j in pair]
        if len(set(flat)) != len(flat):
            raise ValueError(f"DetectorSimConfig.swap_pairs: a joint appears in two pairs: {self.swap_pairs}")

    @classmethod
    def from_dict(cls, d: dict) -> "DetectorSimConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise KeyError(f"DetectorSimConfig: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        conv = {k: tuple(map(tuple, v)) if k == "swap_pairs" else (tuple(v) if isinstance(v, list) else v)
                for k, v in d.items()}
        return cls(**conv)


@dataclass
class Detections2D:
    """Detector output for N frames (see docs/ARCHITECTURE.md).

    keypoints (N,17,2) px (NaN = missing); confidence (N,17) in [0,1]; modes (N,17,Q,5) float32
    [weight, mu_u, mu_v, std_u, std_v] in px; occluded, swapped (N,17) bool.
    """

    keypoints: np.ndarray
    confidence: np.ndarray
    modes: np.ndarray
    occluded: np.ndarray
    swapped: np.ndarray = field(default=None)  # type: ignore[assignment]
    # Whether `confidence` came from the detector (or the file's scores); False when a keypoints-only source
    # gave confidence 1 to every present joint (CPN files). Recorded in the results' attributes.
    scored: bool = True

    def __post_init__(self) -> None:
        n = len(self.keypoints)
        if self.swapped is None:
            self.swapped = np.zeros((n, NUM_JOINTS), dtype=bool)
        expected = {
            "keypoints": (n, NUM_JOINTS, 2),
            "confidence": (n, NUM_JOINTS),
            "occluded": (n, NUM_JOINTS),
            "swapped": (n, NUM_JOINTS),
        }
        for name, shape in expected.items():
            if np.shape(getattr(self, name)) != shape:
                raise ValueError(f"Detections2D.{name}: expected shape {shape}, found {np.shape(getattr(self, name))}")
        m = np.shape(self.modes)
        if len(m) != 4 or m[:2] != (n, NUM_JOINTS) or m[3] != 5:
            raise ValueError(f"Detections2D.modes: expected shape ({n}, {NUM_JOINTS}, Q, 5), found {m}")

    def __len__(self) -> int:
        return len(self.keypoints)

    def subset(self, mask: np.ndarray) -> "Detections2D":
        return Detections2D(self.keypoints[mask], self.confidence[mask], self.modes[mask],
                            self.occluded[mask], self.swapped[mask], self.scored)


# --------------------------------------------------------------------------- occlusion


def estimate_focal_px(pose2d_px: np.ndarray, pose3d_cam: np.ndarray) -> np.ndarray:
    """Per-frame focal length (px) by least squares between 2D spread and normalised 3D spread.

    Ignores distortion; accurate enough to turn body-part radii in metres into pixels.
    """
    p2 = np.asarray(pose2d_px, dtype=np.float64)
    p3 = np.asarray(pose3d_cam, dtype=np.float64)
    q = p3[..., :2] / p3[..., 2:3]
    a = ((p2 - p2.mean(-2, keepdims=True)) ** 2).sum((-1, -2))
    b = ((q - q.mean(-2, keepdims=True)) ** 2).sum((-1, -2))
    return np.sqrt(a / np.where(b > 0, b, np.nan))


def self_occlusion_mask(
    pose2d_px: np.ndarray,
    pose3d_cam: np.ndarray,
    focal_px: np.ndarray | float,
    bone_radius_m: tuple[float, ...] = DEFAULT_BONE_RADIUS_M,
    depth_margin_m: float = 0.0,
) -> np.ndarray:
    """(N,17) bool: the joint is hidden behind a body part, modelled as a cylinder of radius
    `bone_radius_m` around each bone: its 2D position falls inside the part's outline and its depth
    is behind the part's back surface (+ depth_margin_m) on that line of sight. Bones that end at
    the joint itself are ignored.

    pose2d_px (N,17,2) pixels; pose3d_cam (N,17,3) absolute camera-frame metres (z = depth);
    focal_px scalar or (N,). The bone's depth is interpolated at the point nearest to the joint.
    """
    # float32 and per-component arrays: this (N, J, B) test dominates the simulator's run time.
    p2 = np.asarray(pose2d_px, dtype=np.float32)
    z = np.asarray(pose3d_cam, dtype=np.float32)[..., 2]
    focal = np.broadcast_to(np.asarray(focal_px, dtype=np.float32), z.shape[:1])
    parents = np.array(H36M17.parents)
    child = np.arange(1, NUM_JOINTS)
    parent = parents[child]
    r2 = (np.asarray(bone_radius_m, dtype=np.float32)[child] ** 2)[None, None, :]  # (1,1,B)

    ax, ay = p2[:, None, parent, 0], p2[:, None, parent, 1]  # (N,1,B)
    dx, dy = p2[:, None, child, 0] - ax, p2[:, None, child, 1] - ay
    dd = dx * dx + dy * dy
    inv_dd = np.where(dd > 0, 1.0 / np.where(dd > 0, dd, 1.0), 0.0).astype(np.float32)
    rx, ry = p2[:, :, None, 0] - ax, p2[:, :, None, 1] - ay  # (N,J,B)
    t = np.clip((rx * dx + ry * dy) * inv_dd, 0.0, 1.0)
    ex, ey = rx - t * dx, ry - t * dy
    z_par = z[:, None, parent]
    z_bone = z_par + t * (z[:, None, child] - z_par)  # bone depth at the point nearest the joint
    # The body part is a cylinder of radius r around the bone. Along the joint's line of sight it
    # spans depths z_bone +- half_chord; the joint is hidden when it lies behind that span. Testing
    # against the back surface (not the axis) keeps joints on the body's surface, e.g. a shoulder
    # seen obliquely from behind, visible.
    dist_m2 = (ex * ex + ey * ey) * (z_bone / focal[:, None, None]) ** 2
    behind = z[:, :, None] - z_bone - np.float32(depth_margin_m)
    hidden = (dist_m2 < r2) & (behind > 0) & (behind * behind > r2 - dist_m2)
    incident = (parent[None, :] == np.arange(NUM_JOINTS)[:, None]) | (child[None, :] == np.arange(NUM_JOINTS)[:, None])
    return (hidden & ~incident).any(-1)


def _occluder_mask(p2: np.ndarray, u: np.ndarray, cfg: DetectorSimConfig) -> np.ndarray:
    """One random rectangle per selected frame, placed over the person's 2D box. u: (n,5) uniforms."""
    lo, hi = p2.min(1), p2.max(1)  # (n,2)
    side = hi - lo
    active = u[:, 0] < cfg.occluder_prob
    centre = lo + u[:, 1:3] * side
    lo_size, hi_size = cfg.occluder_size
    half = 0.5 * (lo_size + u[:, 3:5] * (hi_size - lo_size)) * side.max(1, keepdims=True)
    inside = (np.abs(p2 - centre[:, None]) < half[:, None]).all(-1)
    return inside & active[:, None]


# --------------------------------------------------------------------------- simulation


def _simulate_block(p2, p3, res, focal, cfg: DetectorSimConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = len(p2)
    # Draw every random number in a fixed order whatever the options, so switching one effect off
    # leaves the others' draws unchanged.
    z_noise = rng.standard_normal((n, NUM_JOINTS, 2))
    z_difficulty = rng.standard_normal((n, NUM_JOINTS))
    u_gross = rng.random((n, NUM_JOINTS))
    z_gross = rng.standard_normal((n, NUM_JOINTS, 2))
    u_swap = rng.random((n, len(cfg.swap_pairs)))
    u_occluder = rng.random((n, 5))

    occluded = np.zeros((n, NUM_JOINTS), dtype=bool)
    if cfg.self_occlusion:
        occluded |= self_occlusion_mask(p2, p3, focal, cfg.bone_radius_m, cfg.depth_margin_m)
    if cfg.occluder_prob > 0:
        occluded |= _occluder_mask(p2, u_occluder, cfg)
    if cfg.truncation:
        occluded |= ((p2 < 0) | (p2 >= res[:, None, :])).any(-1)

    if cfg.reference_height_px:
        height = p2[..., 1].max(1) - p2[..., 1].min(1)
        scale = (height / cfg.reference_height_px)[:, None]
    else:
        scale = np.ones((n, 1))
    s = cfg.difficulty_sigma
    difficulty = np.exp(s * z_difficulty - s * s)
    base_std = np.asarray(cfg.noise_std_px)[None, :] * difficulty * scale  # (n,J)
    noise_std = base_std * np.where(occluded, cfg.occluded_noise_factor, 1.0)
    gross = (u_gross < cfg.gross_error_prob)[..., None] * (cfg.gross_error_std_px * scale[..., None]) * z_gross
    detected = p2 + noise_std[..., None] * z_noise + gross
    spread = np.sqrt((cfg.heatmap_sigma_px * scale) ** 2 + base_std**2)
    spread = spread * np.where(occluded, cfg.occluded_spread_factor, 1.0)

    # Left/right swaps: a swapped joint's main peak sits on its partner's detection; its own
    # detection survives as the secondary mode.
    source = np.broadcast_to(np.arange(NUM_JOINTS), (n, NUM_JOINTS)).copy()
    swapped = np.zeros((n, NUM_JOINTS), dtype=bool)
    for k, (l, r) in enumerate(cfg.swap_pairs):  # a handful of pairs, not frames
        hit = u_swap[:, k] < cfg.swap_prob
        source[hit, l], source[hit, r] = r, l
        swapped[hit, l] = swapped[hit, r] = True
    main_mu = np.take_along_axis(detected, source[..., None], axis=1)
    main_sd = np.take_along_axis(spread, source, axis=1)
    main_w = np.where(swapped, cfg.swap_main_weight, 1.0)

    modes = np.empty((n, NUM_JOINTS, NUM_MODES, 5))
    modes[:, :, 0, 0] = main_w
    modes[:, :, 0, 1:3] = main_mu
    modes[:, :, 0, 3] = modes[:, :, 0, 4] = main_sd
    modes[:, :, 1, 0] = 1.0 - main_w  # 0 when not swapped: the secondary then repeats the main
    modes[:, :, 1, 1:3] = detected
    modes[:, :, 1, 3] = modes[:, :, 1, 4] = spread

    # Confidence reads the main peak's height (weight / std^2, like a detector's maxval) through
    # a monotone map of the equivalent single-Gaussian spread.
    effective = main_sd / np.sqrt(np.maximum(main_w, 1e-12)) / scale
    confidence = np.exp(-0.5 * (effective / cfg.confidence_scale_px) ** 2)
    keypoints = main_mu
    if cfg.occluded_as_missing:
        keypoints = np.where(occluded[..., None], np.nan, keypoints)
        confidence = np.where(occluded, 0.0, confidence)
        modes[occluded, :, 1:] = np.nan
        modes[occluded, :, 0] = 0.0
    return dict(keypoints=keypoints, confidence=confidence, modes=modes, occluded=occluded, swapped=swapped)


def simulate_detections(
    pose2d_px: np.ndarray,
    pose3d_cam: np.ndarray,
    res: np.ndarray | tuple[int, int],
    config: DetectorSimConfig | None = None,
    *,
    focal_px: np.ndarray | float | None = None,
) -> Detections2D:
    """Simulate a 2D detector on N frames.

    pose2d_px: (N,17,2) ground-truth projections in pixels.
    pose3d_cam: (N,17,3) camera-frame metres INCLUDING the root position (absolute depth), used
      for the depth order of self-occlusion.
    res: (2,) or (N,2) image width, height in pixels.
    focal_px: scalar or (N,) focal length; estimated from the 2D/3D pair when None.
    """
    cfg = config or DetectorSimConfig()
    p2 = np.asarray(pose2d_px, dtype=np.float64)
    p3 = np.asarray(pose3d_cam, dtype=np.float64)
    if p2.ndim != 3 or p2.shape[1:] != (NUM_JOINTS, 2):
        raise ValueError(f"pose2d_px: expected (N, {NUM_JOINTS}, 2) pixels, found {p2.shape}")
    n = len(p2)
    if p3.shape != (n, NUM_JOINTS, 3):
        raise ValueError(f"pose3d_cam: expected ({n}, {NUM_JOINTS}, 3) camera-frame metres, found {p3.shape}")
    if not np.isfinite(p2).all() or not np.isfinite(p3).all():
        raise ValueError("pose2d_px / pose3d_cam: ground truth must be finite")
    if (p3[..., 2] <= 0).any():
        raise ValueError(
            "pose3d_cam: found joints with depth z <= 0; pass absolute camera-frame positions "
            "(root-relative pose plus the root), not root-relative ones"
        )
    res_arr = np.broadcast_to(np.asarray(res, dtype=np.float64), (n, 2))
    if focal_px is None:
        focal = estimate_focal_px(p2, p3)
    else:
        focal = np.broadcast_to(np.asarray(focal_px, dtype=np.float64), (n,))

    keypoints = np.empty((n, NUM_JOINTS, 2), dtype=np.float32)
    confidence = np.empty((n, NUM_JOINTS), dtype=np.float32)
    modes = np.empty((n, NUM_JOINTS, NUM_MODES, 5), dtype=np.float32)
    occluded = np.empty((n, NUM_JOINTS), dtype=bool)
    swapped = np.empty((n, NUM_JOINTS), dtype=bool)
    for block, start in enumerate(range(0, n, _BLOCK)):  # bounded-memory blocks, not frames
        sl = slice(start, min(start + _BLOCK, n))
        rng = np.random.default_rng([cfg.seed, block])
        out = _simulate_block(p2[sl], p3[sl], res_arr[sl], focal[sl], cfg, rng)
        keypoints[sl], confidence[sl], modes[sl] = out["keypoints"], out["confidence"], out["modes"]
        occluded[sl], swapped[sl] = out["occluded"], out["swapped"]
    return Detections2D(keypoints, confidence, modes, occluded, swapped)


def simulate_from_poseset(poses, config: DetectorSimConfig | None = None, *,
                          focal_px: np.ndarray | None = None) -> Detections2D:
    """Run `simulate_detections` on a `PoseSet`-like object (attributes pose2d, pose3d, root, res,
    camera, cameras), using each row's camera focal length, or `focal_px` (N,) where the rows are seen by
    other cameras than `poses.cameras` (augmented virtual views)."""
    pose3d_abs = np.asarray(poses.pose3d, dtype=np.float64) + np.asarray(poses.root, dtype=np.float64)[:, None, :]
    if focal_px is not None:
        return simulate_detections(poses.pose2d, pose3d_abs, poses.res, config, focal_px=focal_px)
    cam_ids = np.asarray(poses.camera)
    focal = np.empty(len(cam_ids))
    for cid in np.unique(cam_ids):
        if str(cid) not in poses.cameras:
            raise KeyError(f"PoseSet.cameras has no camera {cid!r}; known: {sorted(poses.cameras)}")
        focal[cam_ids == cid] = float(np.mean(poses.cameras[str(cid)].focal))
    return simulate_detections(poses.pose2d, pose3d_abs, poses.res, config, focal_px=focal)


# --------------------------------------------------------------------------- visualisation


def render_heatmaps(
    modes: np.ndarray, size: int = 64, crop: tuple[float, float, float] | None = None
) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Heatmap images of one frame for display.

    modes: (Q,5) for one joint or (J,Q,5) for every joint of one frame, in pixels.
    crop: (x0, y0, side) square window in image pixels; by default one window around all modes.
    Returns (images (size,size) or (J,size,size), each scaled to peak 1 (zeros for missing joints),
    crop used). Image row i, column k samples pixel (x0 + (k+0.5) side/size, y0 + (i+0.5) side/size).
    """
    m = np.asarray(modes, dtype=np.float64)
    single = m.ndim == 2
    if single:
        m = m[None]
    if m.ndim != 3 or m.shape[-1] != 5:
        raise ValueError(f"modes: expected (Q, 5) or (J, Q, 5), found {np.shape(modes)}")
    if crop is None:
        ok = np.isfinite(m).all(-1) & (m[..., 0] > 0)
        if not ok.any():
            raise ValueError("render_heatmaps: no finite mode to centre the crop on; pass crop=")
        lo = (m[..., 1:3] - 3 * m[..., 3:5])[ok].min(0)
        hi = (m[..., 1:3] + 3 * m[..., 3:5])[ok].max(0)
        side = float((hi - lo).max())
        centre = (lo + hi) / 2
        crop = (float(centre[0] - side / 2), float(centre[1] - side / 2), side)
    x0, y0, side = crop
    grid = (np.arange(size) + 0.5) * side / size
    xs, ys = x0 + grid, y0 + grid
    w, mu_u, mu_v, sd_u, sd_v = (np.nan_to_num(m[..., i])[..., None, None] for i in range(5))
    sd_u, sd_v = np.maximum(sd_u, 1e-6), np.maximum(sd_v, 1e-6)
    gx = np.exp(-0.5 * ((xs[None, None, None, :] - mu_u) / sd_u) ** 2)
    gy = np.exp(-0.5 * ((ys[None, None, :, None] - mu_v) / sd_v) ** 2)
    img = (w / (sd_u * sd_v) * gx * gy).sum(1)  # (J,size,size)
    peak = img.max((-1, -2), keepdims=True)
    img = np.where(peak > 0, img / np.where(peak > 0, peak, 1.0), 0.0)
    return (img[0] if single else img), (float(x0), float(y0), float(side))


# --------------------------------------------------------------------------- a controlled scene
#: A standing person facing the camera, camera axes (x right in the image, y down, z away), metres, pelvis at 0.
#: The person's left is image right. With SYNTHETIC_CAMERA it is the scene the simulator's error levels are
#: tested (tests/test_detector_sim.py) and measured (scripts/detector_stats.py) on.
STANDING_BODY = np.array([
    [0.00, 0.00, 0.00],
    [-0.13, 0.00, 0.00], [-0.14, 0.45, -0.03], [-0.14, 0.88, 0.00],
    [0.13, 0.00, 0.00], [0.14, 0.45, -0.03], [0.14, 0.88, 0.00],
    [0.00, -0.23, 0.00], [0.00, -0.48, 0.00], [0.00, -0.58, -0.06], [0.00, -0.72, 0.00],
    [0.18, -0.45, 0.00], [0.24, -0.18, 0.02], [0.27, 0.06, 0.00],
    [-0.18, -0.45, 0.00], [-0.24, -0.18, 0.02], [-0.27, 0.06, 0.00],
])
SYNTHETIC_CAMERA = Camera(id="synthetic", res_w=1000, res_h=1000, focal=(1145.0, 1145.0), center=(500.0, 500.0))
#: The simulator with its Gaussian noise alone (no gross errors, swaps, occlusion or truncation).
NOISE_ONLY = DetectorSimConfig(gross_error_prob=0.0, swap_prob=0.0, self_occlusion=False, occluder_prob=0.0,
                               truncation=False)


def synthetic_frames(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n camera-frame poses (absolute, metres) of STANDING_BODY at random headings, 4.5-5.5 m in front of
    SYNTHETIC_CAMERA, and their undistorted projections (px)."""
    rng = np.random.default_rng(seed)
    yaw = rng.uniform(-np.pi, np.pi, n)
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.zeros((n, 3, 3))
    rot[:, 0, 0], rot[:, 0, 2], rot[:, 1, 1], rot[:, 2, 0], rot[:, 2, 2] = c, s, 1.0, -s, c
    root = np.stack([rng.uniform(-0.5, 0.5, n), rng.uniform(-0.2, 0.2, n), rng.uniform(4.5, 5.5, n)], -1)
    pose = np.einsum("nij,kj->nki", rot, STANDING_BODY) + root[:, None]
    return pose, SYNTHETIC_CAMERA.project(pose, distort=False)
