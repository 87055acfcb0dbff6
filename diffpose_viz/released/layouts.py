"""The released networks' parameter names and shapes, mapped onto the kit's modules.

A layout is a list of rules, each a released parameter name and the kit name it maps to (`{i}` stands for a
layer index) and how the shape differs. The kit network is built first (from the hyperparameters the file's
shapes imply); its state dict, read through the rules backwards, is the exact list of names and shapes a
released file of that kind holds. A file is accepted only if it matches that list (apart from named
parameters the released forward never reads); otherwise the refusal names the missing and unexpected keys and
the shapes that differ.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import torch

from diffpose_viz.errors import CheckpointError

Shape = tuple[int, ...]


def same(shape: Shape) -> Shape:
    return shape


def cheb_weight(shape: Shape) -> Shape:
    """Kit ChebConv weight (K+1, in, out) -> released (K+1, 1, in, out)."""
    return (shape[0], 1, *shape[1:])


def leading_ones(n: int) -> Callable[[Shape], Shape]:
    """Kit (…) -> released (1, …, 1, …): the released biases (1, 1, out) and positional embeddings (1, R, D)."""
    def shape_fn(shape: Shape) -> Shape:
        return (1,) * n + tuple(shape)
    return shape_fn


@dataclass(frozen=True)
class Rule:
    released: str
    kit: str
    shape: Callable[[Shape], Shape] = same

    def _regex(self, template: str) -> re.Pattern:
        return re.compile("^" + re.escape(template).replace(r"\{i\}", r"(?P<i>\d+)") + "$")

    def released_name(self, kit_key: str) -> str | None:
        m = self._regex(self.kit).match(kit_key)
        if m is None:
            return None
        return self.released.replace("{i}", m.group("i")) if "{i}" in self.released else self.released


def _linear(released: str, kit: str) -> list[Rule]:
    return [Rule(f"{released}.weight", f"{kit}.weight"), Rule(f"{released}.bias", f"{kit}.bias")]


def _cheb(released: str, kit: str) -> list[Rule]:
    return [Rule(f"{released}.weight", f"{kit}.weight", cheb_weight),
            Rule(f"{released}.bias", f"{kit}.bias", leading_ones(2))]


#: GCNpose / GCNdiff (Diffpose models/gcnpose.py, models/gcndiff.py, models/GraFormer.py) onto GraFormerTrunk
#: (+ TimestepEmbedding for GCNdiff); kit names relative to the module holding `trunk`.
GRAFORMER = [
    *_cheb("gconv_input", "trunk.input"),
    *_cheb("gconv_output", "trunk.output"),
    *_cheb("gconv_layers.{i}.gconv1.gconv", "trunk.blocks.{i}.conv1"),
    *_cheb("gconv_layers.{i}.gconv2.gconv", "trunk.blocks.{i}.conv2"),
    *_linear("gconv_layers.{i}.temb_proj", "trunk.blocks.{i}.temb_proj"),
    *[r for n, kit in enumerate(("q", "k", "v", "out"))
      for r in _linear(f"atten_layers.{{i}}.self_attn.linears.{n}", f"trunk.attention.{{i}}.attn.{kit}")],
    Rule("atten_layers.{i}.feed_forward.A_hat", "trunk.attention.{i}.ffn.adjacency.weight"),
    *_linear("atten_layers.{i}.feed_forward.gconv1.fc", "trunk.attention.{i}.ffn.conv1.linear"),
    *_linear("atten_layers.{i}.feed_forward.gconv2.fc", "trunk.attention.{i}.ffn.conv2.linear"),
    Rule("atten_layers.{i}.sublayer.0.norm.a_2", "trunk.attention.{i}.norm1.weight"),
    Rule("atten_layers.{i}.sublayer.0.norm.b_2", "trunk.attention.{i}.norm1.bias"),
    Rule("atten_layers.{i}.sublayer.1.norm.a_2", "trunk.attention.{i}.norm2.weight"),
    Rule("atten_layers.{i}.sublayer.1.norm.b_2", "trunk.attention.{i}.norm2.bias"),
    *_linear("temb.dense.0", "time_embedding.fc1"),
    *_linear("temb.dense.1", "time_embedding.fc2"),
]

#: GCNpose builds a step embedding its forward never calls: in every file, never read.
GCNPOSE_UNUSED = re.compile(r"^temb\.dense\.[01]\.(weight|bias)$")


def _block(released: str, kit: str) -> list[Rule]:
    return [*_linear(f"{released}.norm1", f"{kit}.norm1"), *_linear(f"{released}.attn.qkv", f"{kit}.attn.qkv"),
            *_linear(f"{released}.attn.proj", f"{kit}.attn.proj"), *_linear(f"{released}.norm2", f"{kit}.norm2"),
            *_linear(f"{released}.mlp.fc1", f"{kit}.mlp.0"), *_linear(f"{released}.mlp.fc2", f"{kit}.mlp.3")]


#: MixSTE2 (MixSTE common/model_cross.py; Diffpose_video models/mixste.py) onto MixSTELifter.
MIXSTE = [
    *_linear("Spatial_patch_to_embedding", "joint_embed"),
    Rule("Spatial_pos_embed", "joint_pos", leading_ones(1)),
    Rule("Temporal_pos_embed", "time_pos", leading_ones(1)),
    *_block("STEblocks.{i}", "spatial.{i}"),
    *_block("TTEblocks.{i}", "temporal.{i}"),
    *_linear("Spatial_norm", "spatial_norm"),
    *_linear("Temporal_norm", "temporal_norm"),
    *_linear("head.0", "head.0"),
    *_linear("head.1", "head.1"),
]

def identity_rules(kit_keys) -> list[Rule]:
    """A network the kit builds under the released names (VideoPose3D's TemporalModel: models/tcn.py)."""
    return [Rule(k, k) for k in kit_keys]


def layer_count(state: dict, pattern: str) -> int:
    """1 + the largest index matching `pattern` (a regex with one group), 0 if none."""
    found = [int(m.group(1)) for k in state for m in [re.match(pattern, k)] if m]
    return max(found) + 1 if found else 0


def describe(state: dict, limit: int = 6) -> str:
    items = [f"{k} {tuple(v.shape)}" for k, v in list(state.items())[:limit]]
    return ", ".join(items) + (f", ... ({len(state)} in all)" if len(state) > limit else "")


def refuse_unless(state: dict, needed: dict[str, int], path, what: str) -> None:
    """Refuse a file lacking the keys (with the number of dimensions) that `what`'s shapes are read from."""
    missing = [k for k in needed if k not in state]
    wrong = [f"{k} {tuple(state[k].shape)} (expected {n} dimensions)" for k, n in needed.items()
             if k in state and state[k].ndim != n]
    if missing or wrong:
        detail = f"missing keys {missing}" if missing else "; ".join(wrong)
        raise CheckpointError(f"{path}: not a released {what} file: {detail}; the file holds {describe(state)}")


def to_kit(state: dict[str, torch.Tensor], kit_state: dict[str, torch.Tensor], rules: list[Rule], path,
           what: str, *, unused: re.Pattern | None = None, prefix: str = "") -> dict[str, torch.Tensor]:
    """The file's weights under the kit's names and shapes (kit keys = `prefix` + rule kit names). Refuses,
    naming missing/unexpected keys and shape mismatches, a file that is not exactly `what`."""
    expected: dict[str, tuple[str, Shape]] = {}
    for key, tensor in kit_state.items():
        inner = key[len(prefix):]
        for rule in rules:
            name = rule.released_name(inner)
            if name is not None:
                expected[name] = (key, rule.shape(tuple(tensor.shape)))
                break
        else:
            raise AssertionError(f"no released name for kit parameter {key}")
    missing = [k for k in expected if k not in state]
    unexpected = [f"{k} {tuple(v.shape)}" for k, v in state.items()
                  if k not in expected and not (unused is not None and unused.match(k))]
    shapes = [f"{k}: file {tuple(state[k].shape)} vs {what} {shape}" for k, (_, shape) in expected.items()
              if k in state and tuple(state[k].shape) != shape]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append("shape mismatches: " + "; ".join(shapes[:4]) + (" ..." if len(shapes) > 4 else ""))
        if missing:
            parts.append(f"missing keys: {missing[:6]}" + (f" ... ({len(missing)} in all)" if len(missing) > 6 else ""))
        if unexpected:
            parts.append(f"unexpected keys: {unexpected[:6]}"
                         + (f" ... ({len(unexpected)} in all)" if len(unexpected) > 6 else ""))
        raise CheckpointError(f"{path}: not a released {what} file (" + "; ".join(parts) + ")")
    return {kit_key: state[name].reshape(kit_state[kit_key].shape).to(kit_state[kit_key].dtype).clone()
            for name, (kit_key, _) in expected.items()}
