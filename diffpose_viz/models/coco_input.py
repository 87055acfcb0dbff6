"""A released lifter trained on COCO-17 keypoints (VideoPose3D's pretrained_h36m_detectron_coco.bin) inside a
package that carries every 2D pose as H36M-17.

The COCO joints the H36M-17 layout keeps (shoulders, elbows, wrists, hips, knees, ankles, and the nose as
neck_nose) are copied back exactly. COCO's eyes and ears have no H36M-17 counterpart: H36M-17's head point stands
in for all four (from COCO keypoints it is the mean of the eyes, from BlazePose the mean of the ears), so the
network sees a face collapsed onto one point: an approximation, stated in docs/RELEASED_MODELS.md.
"""
from __future__ import annotations

import torch

from diffpose_viz.models.context import masked_2d_features
from diffpose_viz.models.tcn import TCNLifter
from diffpose_viz.skeleton import COCO17_NAMES, H36M17

Tensor = torch.Tensor

#: Per COCO-17 joint, the H36M-17 joint it is read from.
_FACE = {"nose": "neck_nose", "left_eye": "head_top", "right_eye": "head_top", "left_ear": "head_top",
         "right_ear": "head_top"}
COCO17_FROM_H36M17 = tuple(H36M17.joint_names.index(_FACE.get(name, name)) for name in COCO17_NAMES)


def h36m17_as_coco17(features: Tensor) -> Tensor:
    """(..., 17, C) per-joint values in H36M-17 order -> the same values in COCO-17 order (see the module doc)."""
    return features[..., list(COCO17_FROM_H36M17), :]


class COCOInputTCNLifter(TCNLifter):
    """TCNLifter whose network reads COCO-17 (u, v): the H36M-17 input is re-laid out first. Same parameters."""

    def prepare(self, pose2d: Tensor) -> Tensor:
        if pose2d.ndim != 4:
            raise ValueError(f"COCOInputTCNLifter: expected (B, T, 17, 2|3) 2D poses, found {tuple(pose2d.shape)}")
        return h36m17_as_coco17(masked_2d_features(pose2d))[..., :self.in_features]
