"""The rule table's two directions: kit name -> released name, and a state dict converted with its shapes."""
from __future__ import annotations

import pytest
import torch

from diffpose_viz.errors import CheckpointError
from diffpose_viz.released.layouts import GRAFORMER, MIXSTE, Rule, cheb_weight, to_kit


def _released(kit_key: str, rules) -> str | None:
    return next((n for r in rules if (n := r.released_name(kit_key)) is not None), None)


def test_names_map_with_their_layer_index():
    assert _released("trunk.attention.3.attn.k.weight", GRAFORMER) == "atten_layers.3.self_attn.linears.1.weight"
    assert _released("trunk.blocks.12.conv2.bias", GRAFORMER) == "gconv_layers.12.gconv2.gconv.bias"
    assert _released("time_embedding.fc2.weight", GRAFORMER) == "temb.dense.1.weight"
    assert _released("temporal.0.mlp.3.weight", MIXSTE) == "TTEblocks.0.mlp.fc2.weight"
    assert _released("trunk.blocks.x.conv2.bias", GRAFORMER) is None


def test_to_kit_reshapes_and_refuses_by_name():
    rules = [Rule("w", "net.w", cheb_weight)]
    kit = {"net.w": torch.zeros(3, 2, 4)}
    out = to_kit({"w": torch.ones(3, 1, 2, 4)}, kit, rules, "f.pth", "thing")
    assert out["net.w"].shape == (3, 2, 4)
    with pytest.raises(CheckpointError, match=r"f\.pth: not a released thing file \(shape mismatches: w: file "
                                              r"\(3, 2, 4\) vs thing \(3, 1, 2, 4\)\)"):
        to_kit({"w": torch.ones(3, 2, 4)}, kit, rules, "f.pth", "thing")
