"""The COCO-17 re-layout for VideoPose3D's COCO model: body joints exact, the face from H36M-17's head."""
from __future__ import annotations

import torch

from diffpose_viz.models.coco_input import COCO17_FROM_H36M17, COCOInputTCNLifter, h36m17_as_coco17
from diffpose_viz.models.tcn import TCNLifter
from diffpose_viz.skeleton import COCO17_NAMES, H36M17, coco17_to_h36m17


def test_body_joints_round_trip_through_the_h36m_layout():
    coco = torch.randn(17, 2).double()
    h36m, _ = coco17_to_h36m17(coco.numpy())
    back = h36m17_as_coco17(torch.as_tensor(h36m))
    body = [i for i, n in enumerate(COCO17_NAMES) if "eye" not in n and "ear" not in n]
    torch.testing.assert_close(back[body], coco[body])
    head = H36M17.joint_names.index("head_top")
    assert [COCO17_FROM_H36M17[COCO17_NAMES.index(n)] for n in ("left_eye", "right_ear")] == [head, head]


def test_coco_lifter_reads_the_relaid_input_with_the_same_weights():
    plain, coco = TCNLifter(9, in_features=2, channels=8), COCOInputTCNLifter(9, in_features=2, channels=8)
    coco.load_state_dict(plain.state_dict())
    plain.eval(), coco.eval()
    x = torch.randn(2, 9, 17, 3)
    x[..., 2] = 1.0
    relaid = torch.cat([h36m17_as_coco17(x[..., :2]), x[..., 2:]], -1)
    torch.testing.assert_close(coco(x), plain(relaid))
