"""Horizontal-flip augmentation for H36M-17 poses: at training time (random, per sample) and at test time
(flip test-time augmentation, as MixSTE and DiffPose's video code evaluate).

A flip mirrors the picture about the vertical line through the image centre: in screen-normalised
coordinates (u = 2x/w - 1) that is u -> -u, and the person's left joints become right joints, so the joint
order is permuted with the skeleton's left/right pairs (`Skeleton.flip_permutation`). In the camera frame
the matching 3D mirror is X -> -X with the same permutation. Both are involutions.

Every function works on the joint axis -2, so frame tensors (B,17,C), video tensors (B,T,17,C) and single
poses (17,C) all flip the same way; channel 0 is u (2D) or X (3D), the other channels (v, confidence; Y, Z)
are kept.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from diffpose_viz.models.temporal import window_centre
from diffpose_viz.skeleton import H36M17, Skeleton

Tensor = torch.Tensor


def flip_permutation(skeleton: Skeleton = H36M17, device: torch.device | str | None = None) -> Tensor:
    """(J,) long tensor: index of each joint's mirror partner (identity on the centre line)."""
    return torch.as_tensor(skeleton.flip_permutation, dtype=torch.long, device=device)


def _check_joints(x: Tensor, skeleton: Skeleton, what: str) -> None:
    if x.ndim < 2 or x.shape[-2] != skeleton.num_joints:
        raise ValueError(f"{what}: expected (..., {skeleton.num_joints}, C) with joints on axis -2 "
                         f"({skeleton.name}), found {tuple(x.shape)}")


def swap_left_right(x: Tensor, skeleton: Skeleton = H36M17) -> Tensor:
    """Permute the joint axis (-2) so that each left joint takes its right partner's place and vice versa."""
    _check_joints(x, skeleton, "swap_left_right")
    return x.index_select(-2, flip_permutation(skeleton, x.device))


def _negate_channel0(x: Tensor) -> Tensor:
    if x.shape[-1] < 1:
        raise ValueError(f"flip: the last axis holds no channel to mirror, found {tuple(x.shape)}")
    return torch.cat([-x[..., :1], x[..., 1:]], -1)


def flip_2d(pose2d: Tensor, skeleton: Skeleton = H36M17) -> Tensor:
    """(..., 17, C) screen-normalised 2D (u, v[, confidence]) -> mirrored: u -> -u, left <-> right."""
    return _negate_channel0(swap_left_right(pose2d, skeleton))


def flip_3d(pose3d: Tensor, skeleton: Skeleton = H36M17) -> Tensor:
    """(..., 17, 3) camera-frame 3D -> mirrored: X -> -X, left <-> right (root-relative stays root-relative)."""
    return _negate_channel0(swap_left_right(pose3d, skeleton))


def flip_features(features: Tensor, skeleton: Skeleton = H36M17) -> Tensor:
    """(..., 17, D) per-joint features of a flipped input -> back in the original joint order.

    Only the joint order is undone: feature channels have no known "X" axis to negate, so averaging these
    with the unflipped features is a symmetrisation, not an exact inverse."""
    return swap_left_right(features, skeleton)


OUTPUTS = ("pose", "features")


def flip_average(fn: Callable[[Tensor], Tensor], pose2d: Tensor, *, output: str = "pose",
                 skeleton: Skeleton = H36M17) -> Tensor:
    """Flip test-time augmentation: (fn(x) + unflip(fn(flip_2d(x)))) / 2.

    `output='pose'` unflips with flip_3d (fn returns (..., 17, 3) camera-frame poses); `output='features'`
    unflips the joint order only (flip_features). Both inputs go through fn as one batch (concatenated on
    axis 0), so fn must treat batch rows independently (true of the lifters in eval mode)."""
    if output not in OUTPUTS:
        raise ValueError(f"flip_average: output must be one of {OUTPUTS}, found {output!r}")
    _check_joints(pose2d, skeleton, "flip_average")
    B = pose2d.shape[0]
    both = fn(torch.cat([pose2d, flip_2d(pose2d, skeleton)], 0))
    plain, mirrored = both[:B], both[B:]
    unflip = flip_3d if output == "pose" else flip_features
    return 0.5 * (plain + unflip(mirrored, skeleton))


class FlipTestTime(nn.Module):
    """Wraps a lifter: forward(x) and features(x) averaged over the input and its mirror image.

    Holds no parameters of its own (state_dict keys are the wrapped model's, prefixed `model.`)."""

    def __init__(self, model: nn.Module, skeleton: Skeleton = H36M17) -> None:
        super().__init__()
        self.model, self.skeleton = model, skeleton

    def forward(self, pose2d: Tensor) -> Tensor:
        return flip_average(self.model, pose2d, output="pose", skeleton=self.skeleton)

    def features(self, pose2d: Tensor) -> Tensor:
        return flip_average(self.model.features, pose2d, output="features", skeleton=self.skeleton)


class CentreFramePose(nn.Module):
    """A temporal lifter's flip-averaged, root-centred pose of a window's centre frame: (B,T,17,C) -> (B,17,3)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = FlipTestTime(net)

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        out = window_centre(self.net(window), window.shape[1])
        return out - out[:, :1]


def random_flip(pose2d: Tensor, pose3d: Tensor, p: float = 0.5, *, generator: torch.Generator | None = None,
                skeleton: Skeleton = H36M17) -> tuple[Tensor, Tensor, Tensor]:
    """Training-time augmentation: mirror each sample (axis 0) with probability p, input and target together.

    pose2d (B, ..., 17, C) and pose3d (B, ..., 17, 3) (frame or video, same leading shape up to the joints);
    returns (pose2d', pose3d', flipped (B,) bool). A whole sample (all its T frames) flips or not."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"random_flip: p must be in [0, 1], found {p}")
    if pose2d.shape[:-1] != pose3d.shape[:-1]:
        raise ValueError(f"random_flip: 2D {tuple(pose2d.shape)} and 3D {tuple(pose3d.shape)} must match "
                         f"up to the last axis")
    _check_joints(pose2d, skeleton, "random_flip")
    B = pose2d.shape[0]
    draw = torch.rand(B, generator=generator, device=generator.device if generator is not None else "cpu")
    flipped = (draw < p).to(pose2d.device)
    shape = (B,) + (1,) * (pose2d.ndim - 1)
    out2d = torch.where(flipped.view(shape), flip_2d(pose2d, skeleton), pose2d)
    out3d = torch.where(flipped.view(shape), flip_3d(pose3d, skeleton), pose3d)
    return out2d, out3d, flipped
