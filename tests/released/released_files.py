"""Tiny files in the released checkpoints' layouts, written the way the released training code saves them.

The key names and shapes are spelled out here from the released model code (Diffpose models/gcndiff.py,
gcnpose.py, GraFormer.py, ChebConv.py; MixSTE common/model_cross.py; VideoPose3D common/model.py), independently
of the kit's mapping (diffpose_viz/released/layouts.py), so a wrong mapping fails these tests. No official code
is needed: the tensors are random.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

J = 17


def _linear(prefix: str, n_out: int, n_in: int) -> dict[str, tuple]:
    return {f"{prefix}.weight": (n_out, n_in), f"{prefix}.bias": (n_out,)}


def _cheb(prefix: str, n_in: int, n_out: int) -> dict[str, tuple]:
    return {f"{prefix}.weight": (3, 1, n_in, n_out), f"{prefix}.bias": (1, 1, n_out)}


def gcn_shapes(hidden: int, layers: int, *, diff: bool) -> dict[str, tuple]:
    """GCNdiff (diff=True: 5 -> 5 channels, step embedding projections) or GCNpose (2 -> 3)."""
    c_in, c_out = (5, 5) if diff else (2, 3)
    shapes = {**_cheb("gconv_input", c_in, hidden)}
    for i in range(layers):
        shapes.update(_cheb(f"gconv_layers.{i}.gconv1.gconv", hidden, hidden))
        shapes.update(_cheb(f"gconv_layers.{i}.gconv2.gconv", hidden, hidden))
        if diff:
            shapes.update(_linear(f"gconv_layers.{i}.temb_proj", hidden, 4 * hidden))
    for i in range(layers):
        a = f"atten_layers.{i}"
        for n in range(4):
            shapes.update(_linear(f"{a}.self_attn.linears.{n}", hidden, hidden))
        shapes[f"{a}.feed_forward.A_hat"] = (J, J)
        shapes.update(_linear(f"{a}.feed_forward.gconv1.fc", 2 * hidden, hidden))
        shapes.update(_linear(f"{a}.feed_forward.gconv2.fc", hidden, 2 * hidden))
        for s in range(2):
            shapes[f"{a}.sublayer.{s}.norm.a_2"] = (hidden,)
            shapes[f"{a}.sublayer.{s}.norm.b_2"] = (hidden,)
    shapes.update(_cheb("gconv_output", hidden, c_out))
    shapes.update(_linear("temb.dense.0", 4 * hidden, hidden))  # GCNpose builds it too (never called)
    shapes.update(_linear("temb.dense.1", 4 * hidden, 4 * hidden))
    return shapes


def _norm(prefix: str, dim: int) -> dict[str, tuple]:
    return {f"{prefix}.weight": (dim,), f"{prefix}.bias": (dim,)}


def _block(prefix: str, dim: int) -> dict[str, tuple]:
    return {**_norm(f"{prefix}.norm1", dim), **_linear(f"{prefix}.attn.qkv", 3 * dim, dim),
            **_linear(f"{prefix}.attn.proj", dim, dim), **_norm(f"{prefix}.norm2", dim),
            **_linear(f"{prefix}.mlp.fc1", 2 * dim, dim), **_linear(f"{prefix}.mlp.fc2", dim, 2 * dim)}


def mixste_shapes(dim: int, depth: int, frames: int) -> dict[str, tuple]:
    shapes = {**_linear("Spatial_patch_to_embedding", dim, 2), "Spatial_pos_embed": (1, J, dim),
              "Temporal_pos_embed": (1, frames, dim)}
    for i in range(depth):
        shapes.update(_block(f"STEblocks.{i}", dim))
        shapes.update(_block(f"TTEblocks.{i}", dim))
    shapes.update({**_norm("Spatial_norm", dim), **_norm("Temporal_norm", dim), **_norm("head.0", dim),
                   **_linear("head.1", 3, dim)})
    return shapes


def tcn_shapes(widths: list[int], channels: int, joints_in: int = J) -> dict[str, tuple]:
    def bn(prefix):
        return {f"{prefix}.{n}": (channels,) for n in ("weight", "bias", "running_mean", "running_var")} | {
            f"{prefix}.num_batches_tracked": ()}

    shapes = {"expand_conv.weight": (channels, joints_in * 2, widths[0]), **bn("expand_bn")}
    for i, w in enumerate(widths[1:]):
        shapes[f"layers_conv.{2 * i}.weight"] = (channels, channels, w)
        shapes.update(bn(f"layers_bn.{2 * i}"))
        shapes[f"layers_conv.{2 * i + 1}.weight"] = (channels, channels, 1)
        shapes.update(bn(f"layers_bn.{2 * i + 1}"))
    shapes.update({"shrink.weight": (J * 3, channels, 1), "shrink.bias": (J * 3,)})
    return shapes


def random_state(shapes: dict[str, tuple], seed: int = 0, prefix: str = "") -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in shapes.items():
        if k.endswith("num_batches_tracked"):
            out[prefix + k] = torch.tensor(7)
        elif k.endswith("running_var") or k.endswith("A_hat"):
            out[prefix + k] = torch.rand(shape, generator=g) + (torch.eye(J) if k.endswith("A_hat") else 0.5)
        else:
            out[prefix + k] = torch.randn(shape, generator=g) * 0.1
    return out


def save_diffpose_file(path: Path, shapes: dict[str, tuple], seed: int = 0) -> Path:
    """Diffpose runners: torch.save([DataParallel state_dict, optimizer.state_dict(), epoch, step, EMA shadow])."""
    state = random_state(shapes, seed, prefix="module.")
    optimizer = {"state": {}, "param_groups": [{"lr": 2e-5, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0,
                                                "amsgrad": False, "params": list(range(len(state)))}]}
    ema = {k[len("module."):]: v.clone() for k, v in state.items()}
    torch.save([state, optimizer, 79, 123456, ema], path)
    return path


def save_run_py_file(path: Path, shapes: dict[str, tuple], seed: int = 0, *, data_parallel: bool = False) -> Path:
    """VideoPose3D / MixSTE run.py: {'epoch', 'lr', 'random_state' (numpy RandomState), 'optimizer', 'model_pos',
    ...}; MixSTE wraps the model in DataParallel ('module.' prefixes), VideoPose3D does not."""
    state = random_state(shapes, seed, prefix="module." if data_parallel else "")
    torch.save({"epoch": 80, "lr": 1e-5, "random_state": np.random.RandomState(1234),
                "optimizer": {"state": {}, "param_groups": [{"lr": 1e-5, "params": [0, 1]}]},
                "model_pos": state, "model_traj": None, "random_state_semi": None}, path)
    return path


def window(batch: int, frames: int, seed: int = 0) -> torch.Tensor:
    """Random (batch, frames, 17, 3) screen-normalised 2D windows with confidence 1."""
    g = torch.Generator().manual_seed(seed)
    uv = torch.randn(batch, frames, 17, 2, generator=g) * 0.3
    return torch.cat([uv, torch.ones_like(uv[..., :1])], -1)


def predict(model, cond) -> np.ndarray:
    """The hypotheses of a loaded (imported) model for one batch, under the model's own sampling setting."""
    from diffpose_viz.inputs import FeedBatch

    return np.asarray(model.method.predict(model, FeedBatch(cond, None), model.method.sampling(model.cfg)).hypotheses)


def tiny_data_section(tiny_data: Path) -> dict:
    """`import`'s `data` section for the tiny synthetic set, instead of Human3.6M."""
    return {"path": str(tiny_data), "train_subjects": ["syn_a", "syn_b", "syn_c"], "test_subjects": ["syn_t"],
            "input_2d": "detector_sim", "train_2d": None, "test_2d": None, "frame_stride": 4,
            "validation_fraction": 0.2}


def import_frame_pair(folder: Path, tiny_data: Path) -> tuple[Path, Path, Path]:
    """The released frame pair (GCNpose, GCNdiff) written as the released code saves it and imported with the
    tiny data section: (official best.pt, its lifter's best.pt, the GCNdiff file)."""
    from diffpose_viz.released import import_released

    pose = save_diffpose_file(folder / "gcn_xyz_cpn.pth", gcn_shapes(8, 1, diff=False), 1)
    diff = save_diffpose_file(folder / "diffpose_uvxyz_cpn.pth", gcn_shapes(8, 1, diff=True), 2)
    official = import_released("diffpose-frame", [pose, diff], folder / "frame", data=tiny_data_section(tiny_data))[0]
    return official, folder / "frame" / "lifter" / "best.pt", diff
