"""The official mode's initial-pose lifter (methods/official.py): restored, like DiffPose's phi_ST, through the
one restore of a frozen stage-1 lifter (`two_stage.frozen_lifter`), with the same checks."""
from __future__ import annotations

import pytest
import torch

from diffpose_viz.checkpoint import load_checkpoint
from diffpose_viz.errors import CheckpointError
from diffpose_viz.methods import METHODS
from diffpose_viz.methods.official import load_lifter_payload

from tiny_runs import tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


def test_frame_lifter_restored_frozen_with_the_checkpoints_weights(tiny_data, lifter_ckpt):
    cfg = tiny_config(tiny_data, method="official", **{"official.lifter_checkpoint": str(lifter_ckpt)})
    payload = load_lifter_payload(lifter_ckpt)  # config and weights only: no method, no normaliser
    lifter = METHODS["official"].restore_extras(cfg, {"lifter": payload}, "here.pt", torch.device("cpu"))["lifter"]
    assert not lifter.training and not any(p.requires_grad for p in lifter.parameters())
    weights = {k.removeprefix("net."): v for k, v in load_checkpoint(lifter_ckpt)["ema"]["module"].items()}
    for k, v in lifter.state_dict().items():
        torch.testing.assert_close(v, weights[k], rtol=0, atol=0)


def test_wrong_frame_lifters_refused(tiny_data, lifter_ckpt):
    cfg = tiny_config(tiny_data, method="official", **{"official.lifter_checkpoint": str(lifter_ckpt)})
    payload = load_lifter_payload(lifter_ckpt)

    def restore(lifter):
        return METHODS["official"].restore_extras(cfg, {"lifter": lifter}, "here.pt", torch.device("cpu"))

    with pytest.raises(CheckpointError, match="here.pt: official-mode checkpoint has no embedded lifter"):
        restore(None)
    other = {**payload, "config": {**payload["config"], "method": "martinez"}}
    with pytest.raises(CheckpointError, match="official.lifter_checkpoint must be a 'lifter' checkpoint .*"
                                              "found 'martinez'"):
        restore(other)
    bad = {**payload, "weights": {k: (torch.zeros(16, 16) if k.endswith("adjacency.weight") else v)
                                  for k, v in payload["weights"].items()}}
    with pytest.raises(CheckpointError, match="17-joint"):
        restore(bad)
