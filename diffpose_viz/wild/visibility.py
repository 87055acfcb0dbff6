"""From a detector's per-landmark visibility to a per-joint 2D distribution.

DiffPose's pose-specific initialization starts from a 2D distribution per joint
(the heatmap modes). A real detector gives one point and a visibility score, so
we turn visibility into spread: a confidently seen joint gets a tight Gaussian,
an occluded one a wide Gaussian. Occluded joints therefore stay in the input
and the method (the GMM initialization + diffusion) decides what to do with
them, instead of being dropped. Spread is a fraction of the person's 2D size so
that the rule means the same for a small far-away person and a close-up.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VisibilityRule:
    """std_px = size_px * (min_frac + (max_frac - min_frac) * (1 - visibility) ** power).

    min_frac: spread of a fully visible joint, 2 % of the person's size: the
        simulated detector's heatmap spread (~9 px for a 450 px tall person,
        docs/DETECTOR_SIM.md), so the model sees spreads like the ones it was
        trained with.
    max_frac: spread at visibility 0 (a fifth of the body size: the joint is
        somewhere around its guessed position).
    power: shape of the growth; 1 = linear in (1 - visibility).
    min_std_px: floor so that tiny people still get a sensible spread.
    min_size_px: floor on the person's size (a degenerate box of one point).
    occluded_below: visibility under this marks the joint `occluded`.
    outside_confidence: confidence cap for joints outside the frame. A joint
        outside the frame gets at least max_frac * size plus its distance
        outside the frame as spread (the further out, the less we know).
    """

    min_frac: float = 0.02
    max_frac: float = 0.2
    power: float = 1.0
    min_std_px: float = 1.0
    min_size_px: float = 16.0
    occluded_below: float = 0.5
    outside_confidence: float = 0.1

    def __post_init__(self) -> None:
        if not 0 < self.min_frac <= self.max_frac:
            raise ValueError(f"need 0 < min_frac <= max_frac, got {self.min_frac}, {self.max_frac}")
        if self.power <= 0:
            raise ValueError(f"power must be > 0, got {self.power}")
        if not 0 <= self.occluded_below <= 1 or not 0 <= self.outside_confidence <= 1:
            raise ValueError("occluded_below and outside_confidence must lie in [0, 1]")


def person_size_px(keypoints: np.ndarray, min_size_px: float = 16.0) -> np.ndarray:
    """(..., J, 2) pixels -> (...) the larger side of the keypoints' bounding box.

    NaN keypoints are ignored; a frame with no finite keypoint gets NaN.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    finite = np.isfinite(keypoints).all(-1, keepdims=True)
    lo = np.where(finite, keypoints, np.inf).min(-2)
    hi = np.where(finite, keypoints, -np.inf).max(-2)
    size = (hi - lo).max(-1)  # -inf when nothing is finite
    return np.where(np.isfinite(size), np.maximum(size, min_size_px), np.nan)


def distance_outside_frame(keypoints: np.ndarray, width: int, height: int) -> np.ndarray:
    """(..., 2) pixels -> (...) distance in px to the image rectangle (0 inside, NaN stays NaN)."""
    keypoints = np.asarray(keypoints, dtype=np.float64)
    dx = np.maximum(0.0, np.maximum(-keypoints[..., 0], keypoints[..., 0] - (width - 1)))
    dy = np.maximum(0.0, np.maximum(-keypoints[..., 1], keypoints[..., 1] - (height - 1)))
    return np.hypot(dx, dy)


def visibility_to_std(visibility: np.ndarray, size_px: np.ndarray, rule: VisibilityRule = VisibilityRule()) -> np.ndarray:
    """Per-joint isotropic std in pixels; `size_px` broadcasts over the joint axis (give it shape (..., 1))."""
    v = np.clip(np.nan_to_num(np.asarray(visibility, dtype=np.float64), nan=0.0), 0.0, 1.0)
    frac = rule.min_frac + (rule.max_frac - rule.min_frac) * (1.0 - v) ** rule.power
    return np.maximum(frac * np.asarray(size_px, dtype=np.float64), rule.min_std_px)


@dataclass
class JointUncertainty:
    """Per-joint outcome of the rule, shapes (N, J) except `size_px` (N,) and `person_found` (N,)."""

    std_px: np.ndarray
    confidence: np.ndarray
    occluded: np.ndarray
    outside: np.ndarray
    size_px: np.ndarray
    person_found: np.ndarray


def joint_uncertainty(
    keypoints: np.ndarray,
    visibility: np.ndarray,
    width: int,
    height: int,
    rule: VisibilityRule = VisibilityRule(),
    size_px: np.ndarray | None = None,
) -> JointUncertainty:
    """Apply the rule to (N, J, 2) pixel keypoints and (N, J) visibility in [0, 1].

    Frames whose keypoints are all NaN (no person) get person_found False,
    confidence 0, occluded True and NaN std; they are kept, not removed.
    `size_px` (N,) lets the caller measure the person on a richer landmark set
    (all 33 BlazePose points) than the joints being scored.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    visibility = np.asarray(visibility, dtype=np.float64)
    if keypoints.ndim != 3 or keypoints.shape[-1] != 2:
        raise ValueError(f"keypoints: expected shape (N, J, 2), found {keypoints.shape}")
    if visibility.shape != keypoints.shape[:2]:
        raise ValueError(f"visibility: expected shape {keypoints.shape[:2]}, found {visibility.shape}")
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")

    finite = np.isfinite(keypoints).all(-1)
    person_found = finite.any(-1)
    if size_px is None:
        size_px = person_size_px(keypoints, rule.min_size_px)
    size_px = np.maximum(np.asarray(size_px, dtype=np.float64), rule.min_size_px)

    std = visibility_to_std(visibility, size_px[:, None], rule)
    dist_out = distance_outside_frame(keypoints, width, height)
    outside = finite & (dist_out > 0)
    std = np.where(outside, np.maximum(std, rule.max_frac * size_px[:, None] + dist_out), std)

    confidence = np.clip(np.nan_to_num(visibility, nan=0.0), 0.0, 1.0)
    confidence = np.where(outside, np.minimum(confidence, rule.outside_confidence), confidence)
    confidence = np.where(finite, confidence, 0.0)
    occluded = (confidence < rule.occluded_below) | outside | ~finite
    std = np.where(finite, std, np.nan)
    return JointUncertainty(std_px=std, confidence=confidence, occluded=occluded, outside=outside,
                            size_px=np.where(person_found, size_px, np.nan), person_found=person_found)


def modes_from_uncertainty(keypoints: np.ndarray, std_px: np.ndarray, n_modes: int = 2) -> np.ndarray:
    """(N, J, 2) + (N, J) -> (N, J, n_modes, 5) float32 [weight, mu_u, mu_v, std_u, std_v]: the package's one
    modes builder (`initialization.pose_init.modes_from_keypoints`; a missing joint has weight 0)."""
    from diffpose_viz.initialization.pose_init import modes_from_keypoints

    std = np.nan_to_num(np.asarray(std_px, dtype=np.float64), nan=1.0)
    return modes_from_keypoints(keypoints, std, n_modes=n_modes).astype(np.float32)
