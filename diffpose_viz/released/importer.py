"""`diffpose-viz import`: the released networks' files as ordinary kit checkpoints (docs/RELEASED_MODELS.md).

Kinds and what each writes under --out:
  diffpose-frame  GCNpose [+ GCNdiff] (Diffpose: gcn_xyz_*.pth, diffpose_uvxyz_*.pth). With both: best.pt, the
                  `official` method (GCNdiff refining GCNpose's pose), and lifter/best.pt, GCNpose alone as a
                  frame `lifter` (phi_ST for the two-stage `diffpose`: model.context_checkpoint). GCNpose alone:
                  best.pt is that lifter.
  diffpose-video  MixSTE2 + GCNdiff (Diffpose_video: mixste_cpn_243f.bin, diffpose_video_uvxyz_cpn.pth):
                  best.pt the `official` method in the video setting, lifter/best.pt the `video_lifter`.
  mixste          MixSTE2 alone: best.pt, a `video_lifter` (the video phi_ST).
  videopose3d     TemporalModel (VideoPose3D: pretrained_h36m_cpn.bin, pretrained_h36m_detectron_coco.bin): best.pt,
                  a `video_lifter` of kind tcn, any receptive field, H36M-17 or COCO-17 input.

Files are told apart by their shapes (order on the command line does not matter). Every network is the kit's
module with `model.released` numerics; the weights are the file's with their names mapped (layouts.py).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from diffpose_viz import inputs
from diffpose_viz.atomic import atomic_write_json, replacing_dir
from diffpose_viz.checkpoint import restore_run_folder, save_checkpoint
from diffpose_viz.config import DataConfig, ExperimentConfig, ModelConfig, OfficialConfig, from_dict, save_config, to_dict
from diffpose_viz.diffusion.setting import DEFAULT_SAMPLING
from diffpose_viz.errors import CheckpointError, ConfigError, OutputExistsError
from diffpose_viz.methods import Lifter, Official, VideoLifter, check_config, get_method
from diffpose_viz.released import layouts
from diffpose_viz.released.files import load_released_state
from diffpose_viz.safe_io import file_sha256
from diffpose_viz.released.kinds import HUMAN36M_DATA, KINDS, PROTOCOLS, TWO_D, VIDEO_PROTOCOLS

GCN_WHAT = "Diffpose GCNpose/GCNdiff"
MIXSTE_WHAT = "MixSTE2"


@dataclass
class Network:
    """One network read from a released file: its kit config and its weights under the kit's names."""

    role: str  # 'gcnpose' | 'gcndiff' | 'mixste' | 'tcn'
    path: Path
    cfg: ExperimentConfig
    weights: dict[str, torch.Tensor]
    note: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- reading one file per network


def _built(cfg: ExperimentConfig) -> dict[str, torch.Tensor]:
    return get_method(cfg.method).build_network(cfg).state_dict()


def read_gcn(path: Path, heads: int = 4, state: dict | None = None) -> Network:
    """GCNpose (2 -> 3 channels) or GCNdiff (5 -> 5), told apart by the input and output projections."""
    state = load_released_state(path, GCN_WHAT) if state is None else state
    layouts.refuse_unless(state, {"gconv_input.weight": 4, "gconv_output.weight": 4}, path, GCN_WHAT)
    order, _, in_dim, hidden = state["gconv_input.weight"].shape
    out_dim = state["gconv_output.weight"].shape[-1]
    roles = {(2, 3): "gcnpose", (5, 5): "gcndiff"}
    if (in_dim, out_dim) not in roles or order != 3:
        raise CheckpointError(f"{path}: not a released {GCN_WHAT} file: gconv_input.weight "
                              f"{tuple(state['gconv_input.weight'].shape)} and gconv_output.weight "
                              f"{tuple(state['gconv_output.weight'].shape)}; expected Chebyshev order 2 (3 slices) and "
                              "2 -> 3 channels (GCNpose) or 5 -> 5 (GCNdiff)")
    role = roles[(in_dim, out_dim)]
    if hidden % heads:
        raise CheckpointError(f"{path}: hidden size {hidden} is not divisible by --heads {heads}")
    layers = layouts.layer_count(state, r"^gconv_layers\.(\d+)\.")
    model = ModelConfig(hidden=int(hidden), layers=layers, heads=heads, released=True)
    cfg = ExperimentConfig(name=f"released {role}", method=Lifter.name if role == "gcnpose" else Official.name,
                           model=model)
    prefix = "net." if role == "gcnpose" else "denoiser."
    weights = layouts.to_kit(state, _built(cfg), layouts.GRAFORMER, path, "GCNpose" if role == "gcnpose" else "GCNdiff",
                             unused=layouts.GCNPOSE_UNUSED if role == "gcnpose" else None, prefix=prefix)
    return Network(role, path, cfg, weights, {"hidden": int(hidden), "layers": layers, "heads": heads})


def read_mixste(path: Path, heads: int = 8, frames: int | None = None, state: dict | None = None) -> Network:
    state = load_released_state(path, MIXSTE_WHAT) if state is None else state
    layouts.refuse_unless(state, {"Spatial_patch_to_embedding.weight": 2, "Temporal_pos_embed": 3,
                                  "STEblocks.0.mlp.fc1.weight": 2}, path, MIXSTE_WHAT)
    dim, in_ch = state["Spatial_patch_to_embedding.weight"].shape
    implied = int(state["Temporal_pos_embed"].shape[1])
    check_frames(path, frames, implied, f"Temporal_pos_embed {tuple(state['Temporal_pos_embed'].shape)}")
    ratio = state["STEblocks.0.mlp.fc1.weight"].shape[0] / dim
    if in_ch != 2 or ratio != 2:
        raise CheckpointError(f"{path}: not the released {MIXSTE_WHAT} layout: expected (u, v) input and MLP ratio 2 "
                              f"(Spatial_patch_to_embedding.weight (D, 2), STEblocks.0.mlp.fc1.weight (2D, D)), found "
                              f"{tuple(state['Spatial_patch_to_embedding.weight'].shape)} and "
                              f"{tuple(state['STEblocks.0.mlp.fc1.weight'].shape)}")
    if dim % heads:
        raise CheckpointError(f"{path}: embedding size {dim} is not divisible by --heads {heads}")
    depth = layouts.layer_count(state, r"^STEblocks\.(\d+)\.")
    model = ModelConfig(context="video", frames=implied, hidden=int(dim), layers=depth, heads=heads, released=True)
    cfg = ExperimentConfig(name="released mixste", method=VideoLifter.name, model=model)
    weights = layouts.to_kit(state, _built(cfg), layouts.MIXSTE, path, MIXSTE_WHAT, prefix="net.")
    return Network("mixste", path, cfg, weights, {"frames": implied, "dim": int(dim), "depth": depth, "heads": heads})


def check_frames(path: Path, frames: int | None, implied: int, evidence: str) -> None:
    if frames is not None and frames != implied:
        raise CheckpointError(f"{path}: --frames {frames} does not match the file: its {evidence} implies a "
                              f"receptive field of {implied} frames")


# --------------------------------------------------------------------------- the kit checkpoints


def lifter_payload(net: Network) -> dict[str, Any]:
    """What an official checkpoint embeds of its initial-pose lifter (methods/official.py reads it)."""
    base = {"config": to_dict(net.cfg), "weights": net.weights, "source": str(net.path)}
    if net.cfg.model.context == "video":
        base.update(method=net.cfg.method, normaliser=inputs.NORMALISER)
    return base


def official_config(lifter: Network, denoiser: Network, steps: tuple[int, int], name: str) -> ExperimentConfig:
    model = ModelConfig(**{**to_dict(denoiser.cfg.model), "context": lifter.cfg.model.context,
                           "frames": lifter.cfg.model.frames})
    return ExperimentConfig(name=name, method=Official.name, model=model,
                            official=OfficialConfig(test_num_diffusion_timesteps=steps[0]),
                            sampling=replace(DEFAULT_SAMPLING, official_steps=steps[1]))


def file_record(path: Path) -> dict[str, Any]:
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": file_sha256(path)}


def write_run(folder: Path, cfg: ExperimentConfig, weights: dict, extras: dict, kind: str, nets: list[Network]) -> Path:
    """A run folder like the trainer's: best.pt, config.yaml, and imported.json (each file's path, size, SHA-256,
    and what its shapes implied). No last.pt: there is no training state to `--resume` from."""
    check_config(cfg, f"{kind} import", warn=False)
    folder.mkdir(parents=True, exist_ok=True)
    imported = {"kind": kind, "files": [{**file_record(n.path), "network": n.role, **n.note} for n in nets]}
    payload = {"method": cfg.method, "config": to_dict(cfg), "model": weights, "ema": {"module": weights},
               "optimizer": None, "normaliser": inputs.NORMALISER, "depth_prior": None, "detection_error": None,
               "extras": extras, "history": [], "n_params": sum(int(w.numel()) for w in weights.values()),
               "progress": {"step": 0, "epoch": 0, "batch_in_epoch": 0, "best_val": float("nan"), "best_step": 0},
               "imported": imported}
    save_checkpoint(folder / "best.pt", payload)
    save_config(cfg, folder / "config.yaml")
    atomic_write_json(folder / "imported.json", imported)
    return folder / "best.pt"


def _by_role(networks: list[Network], kind: str, wanted: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
    found: dict[str, Network] = {}
    for net in networks:
        if net.role in found:
            raise ConfigError(f"import {kind}: {found[net.role].path} and {net.path} are both {net.role} files; give one")
        found[net.role] = net
    missing = [r for r in wanted if r not in found]
    extra = [f"{n.path} ({n.role})" for n in networks if n.role not in wanted + optional]
    if missing or extra:
        raise ConfigError(f"import {kind}: expected {' + '.join(wanted)}" + (f" [+ {', '.join(optional)}]" if optional else "")
                          + (f"; missing {missing}" if missing else "") + (f"; not for this kind: {extra}" if extra else ""))
    return found


def data_section(kind: str, protocol: str, input_layout: str, overrides: dict | None) -> DataConfig:
    """The imported run's `data`: Human3.6M as the released models were trained (kinds.HUMAN36M_DATA), with
    `overrides` (e.g. {'path': ...}) on top."""
    key = f"{kind}/{protocol}"
    two_d = TWO_D[key if key in TWO_D else f"video/{input_layout}"]
    return from_dict(DataConfig, {**HUMAN36M_DATA, **two_d, **(overrides or {})}, source=f"import {kind} data")


def import_released(kind: str, files: list[str | os.PathLike], out: str | os.PathLike, *, force: bool = False,
                    frames: int | None = None, heads: int | None = None, input_layout: str = "h36m",
                    protocol: str = "cpn", data: dict | None = None) -> list[Path]:
    """Read the released file(s) of `kind` and write kit checkpoint(s) under `out`; returns their paths.
    `data`: settings of the runs' `data` section over the Human3.6M defaults (data_section)."""
    if kind not in KINDS:
        raise ConfigError(f"import: kind must be one of {list(KINDS)}, found {kind!r}")
    if protocol not in PROTOCOLS:
        raise ConfigError(f"import: --protocol must be one of {list(PROTOCOLS)}, found {protocol!r}")
    if input_layout not in ("h36m", "coco"):
        raise ConfigError(f"import: --input must be 'h36m' or 'coco', found {input_layout!r}")
    if frames is not None and kind == "diffpose-frame":
        raise ConfigError("import diffpose-frame: --frames is for the video kinds (a frame model has no receptive field)")
    data_cfg = data_section(kind, protocol, input_layout, data)
    out = Path(out)
    restore_run_folder(out)
    if out.exists() and not force:
        raise OutputExistsError(f"{out} already exists; pass --force to replace it")
    paths = [Path(p) for p in files]
    if not paths:
        raise ConfigError(f"import {kind}: give the released file(s)")
    nets = read_networks(kind, paths, frames=frames, heads=heads, input_layout=input_layout)
    for net in nets:
        net.cfg.data = data_cfg
    runs = plan_runs(kind, nets, protocol)
    written = []
    with replacing_dir(out) as stage:
        for sub, (cfg, weights, extras, sources) in runs.items():
            cfg.name = out.name if not sub else f"{out.name}/{sub}"
            written.append(write_run(stage / sub if sub else stage, cfg, weights, extras, kind, sources))
    return [out / p.relative_to(stage) for p in written]


def read_networks(kind: str, paths: list[Path], *, frames: int | None, heads: int | None,
                  input_layout: str) -> list[Network]:
    """Every file of `kind`, read and checked (a MixSTE2 or GCNdiff file for diffpose-video is told apart by
    MixSTE2's embedding)."""
    if kind == "videopose3d":
        from diffpose_viz.released.videopose3d import read_tcn

        return [read_tcn(p, frames, input_layout) for p in paths]
    if kind == "mixste":
        return [read_mixste(p, heads or 8, frames) for p in paths]
    if kind == "diffpose-frame":
        return [read_gcn(p, heads or 4) for p in paths]
    nets = []
    for p in paths:
        state = load_released_state(p, "MixSTE2 or GCNdiff")
        nets.append(read_mixste(p, heads or 8, frames, state) if "Spatial_patch_to_embedding.weight" in state
                    else read_gcn(p, 4, state))
    return nets


def plan_runs(kind: str, nets: list[Network], protocol: str) -> dict[str, tuple]:
    """{sub-folder ('' = --out itself): (config, weights, extras, networks)} for the networks of `kind`."""
    if kind in ("videopose3d", "mixste"):
        if len(nets) != 1:
            raise ConfigError(f"import {kind}: give one file, found {len(nets)}")
        return {"": (nets[0].cfg, nets[0].weights, {}, nets)}
    if kind == "diffpose-frame":
        roles = _by_role(nets, kind, ("gcnpose",), ("gcndiff",))
        lifter, steps, name = roles["gcnpose"], PROTOCOLS[protocol], f"released diffpose-frame ({protocol})"
        if "gcndiff" not in roles:
            return {"": (lifter.cfg, lifter.weights, {}, [lifter])}
    else:
        roles = _by_role(nets, kind, ("mixste", "gcndiff"))
        lifter, steps, name = roles["mixste"], VIDEO_PROTOCOLS[protocol], f"released diffpose-video ({protocol})"
    diff = roles["gcndiff"]
    cfg = official_config(lifter, diff, steps, name)
    cfg.data = lifter.cfg.data
    return {"": (cfg, diff.weights, {"lifter": lifter_payload(lifter)}, [lifter, diff]),
            "lifter": (lifter.cfg, lifter.weights, {}, [lifter])}
