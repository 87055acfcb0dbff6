"""Run configuration: dataclasses <-> YAML, one source of truth per setting.

Settings owned by other modules are nested, not copied: the simulated detector is
`DetectorSimConfig`, H_K is `InitConfig`, the noise schedule is `ScheduleConfig`.
Loading is strict: an unknown key raises a KeyError naming the key and the file, and every
value is converted to (and checked against) the field's declared type.

This module checks structure, types and ranges that hold for every method. Which method a run uses,
and what that method needs or ignores, is the method table's business (`diffpose_viz.methods`):
`methods.load_config` / `methods.config_from_dict` are `read_config` / `parse_config` plus that check.
"""
from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from diffpose_viz.atomic import atomic_target
from diffpose_viz.augmentation import AugmentationConfig, BodyAugConfig, ViewAugConfig
from diffpose_viz.detector_sim import DetectorSimConfig
from diffpose_viz.diffusion.schedule import ScheduleConfig
from diffpose_viz.diffusion.setting import DEFAULT_SAMPLING, LEGACY_KEYS, SamplingSetting
from diffpose_viz.errors import ConfigError
from diffpose_viz.initialization.pose_init import InitConfig
from diffpose_viz.models.tcn import filter_widths_for
from diffpose_viz.safe_io import SafeLoadError, check_input_file, load_npz

#: A config is a page of YAML; anything larger is not one.
MAX_CONFIG_BYTES = 2**20

@dataclass
class MotionSource:
    """Another data_3d file whose subjects join the training side (docs/AUGMENTATION.md, "More than one source
    of motion"). Its rows are named '<name>:<subject>' (cameras '<name>/<id>'), so nothing collides with `path`.
    The validation split takes its held-out sequences the same way as from `path`."""

    path: str
    subjects: list[str] = field(default_factory=list)  # required: validate() names the file's subjects when empty
    weight: float = 1.0  # rows per epoch relative to the source's size: 0.5 keeps every other row, 2 repeats each
    cameras: list[str] | None = None  # None: every camera of the file
    name: str | None = None  # row prefix; None: the file's stem
    # A source's own frame stride and frames per sequence (evenly thinned after the stride); None: data.frame_stride,
    # data.max_frames. A source of few people or short takes can give more of its frames than the main file
    # without repeating rows (docs/benchmarks/people.md).
    frame_stride: int | None = None
    max_frames: int | None = None

    @property
    def prefix(self) -> str:
        return self.name or Path(self.path).stem


@dataclass
class DataConfig:
    path: str = "data/demo/data_3d_demo.npz"
    train_subjects: list[str] = field(default_factory=lambda: ["lafan_a", "metarig", "cmu01"])
    test_subjects: list[str] = field(default_factory=lambda: ["lafan_b"])
    cameras: list[str] | None = None  # camera ids (or list indices); None = all of each subject's cameras
    frame_stride: int = 1
    max_frames: int | None = None  # per sequence, evenly thinned after the stride
    input_2d: Literal["detector_sim", "gt", "file"] = "detector_sim"
    # input_2d 'file' (docs/REPRODUCE_PAPER.md): VideoPose3D data_2d or DiffPose GMM files. train_2d feeds the
    # training and validation rows (null = the ground-truth projection, as the released frame recipe trains),
    # test_2d the test rows.
    train_2d: str | None = None
    test_2d: str | None = None
    # Where H_K's x, y kernels come from with file input: 'error_model' (a per-joint mixture of detection
    # errors fitted on the training subjects), 'fixed' (gt_noise_std_px around each keypoint), 'file_gmm'
    # (the kernels of a DiffPose GMM file).
    uncertainty_2d: Literal["error_model", "fixed", "file_gmm"] = "error_model"
    error_model_kernels: int = 3
    # MPI-INF-3DHP test file in the lifting-paper layout (data_test_3dhp.npz): when set, the test rows are its
    # valid frames (test_subjects name the sequences TS1..TS6), with GT 2D; training rows still come from `path`.
    test_3dhp: str | None = None
    test_3dhp_units: Literal["mm", "m"] = "mm"
    occlusion: bool = True  # detector_sim only: off disables self-occlusion, occluders and truncation
    gt_noise_std_px: float = 2.0  # input_2d='gt': the 2D std H_K assumes around each keypoint
    validation_fraction: float = 0.1  # of the training frames, held out by whole sequences
    max_test_samples: int | None = None  # evenly thinned test rows (keeps every action represented)
    # More training motion: other data_3d files (each a MotionSource mapping: path, subjects, weight, cameras,
    # name), projected and simulated like the training subjects of `path`.
    extra_train: list[MotionSource] = field(default_factory=list)


@dataclass
class DiffusionConfig:
    """What training fixes about the diffusion; how a trained model samples is the `sampling:` section."""

    schedule: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(kind="cosine", num_steps=50))
    prediction: Literal["x0", "eps"] = "x0"
    # x0-prediction only. "mse": squared error (the released code's loss form, on noise). "mpjpe": mean
    # per-joint Euclidean error, the loss the lifters train with, so a comparison differs only in the method.
    loss: Literal["mse", "mpjpe"] = "mse"
    gaussian_scale: float = 1.0  # gaussian_diffusion: std of the N(0, s^2 I) prior, metres
    antithetic: bool = True  # draw training steps t in antithetic pairs (as the official runner)
    # two-stage diffpose: 'gmm' (the paper: GMM forward from H_K) or 'gaussian' (N(0, s^2 I) forward and start,
    # the same frozen phi_ST and network): the ablation that isolates what the GMM and H_K add. Not the method
    # 'gaussian_diffusion', which trains its context encoder jointly (the baseline of the method table).
    forward: Literal["gmm", "gaussian"] = "gmm"


@dataclass
class VideoLifterConfig:
    """The temporal lifter of the video setting (method video_lifter; the frozen phi_ST of video diffpose and the
    official video mode). 'mixste': MixSTE-style seq2seq transformer, model.hidden wide and model.layers deep
    (a GPU model: seconds per step on a CPU). 'tcn': VideoPose3D's dilated temporal convolutions, trained on the
    centre frame with the strided model and evaluated with the dense one; its receptive field is model.frames,
    a power of filter_width (27, 81, 243 for width 3)."""

    kind: Literal["mixste", "tcn"] = "mixste"
    channels: int = 1024  # tcn: convolution channels (VideoPose3D: 1024)
    filter_width: int = 3  # tcn: the width of every temporal convolution
    dropout: float = 0.25  # tcn (VideoPose3D: 0.25); mixste reads model.dropout, capped at 0.1
    # tcn: BatchNorm momentum, decayed exponentially per epoch from the first to the final value (VideoPose3D:
    # 0.1 -> 0.001 over 80 epochs, while its lr falls 50x). A short run whose lr is still high at the end needs a
    # higher final value, or the running statistics lag the weights (docs/BENCHMARKS.md, "Video setting (TCN").
    bn_momentum: float = 0.1
    bn_momentum_final: float = 0.001


@dataclass
class ModelConfig:
    hidden: int = 96
    layers: int = 5
    heads: int = 4
    dropout: float = 0.25
    context: Literal["frame", "video"] = "frame"
    context_dim: int = 64
    context_hidden: int = 64
    context_layers: int = 2
    context_raw_2d: bool = False  # diffusion: append the raw [u, v, confidence, mask] to the context features
    # diffpose (two-stage): a trained frame-context `lifter` checkpoint, the pre-trained context encoder phi_ST.
    # It is frozen during training and embedded into the DiffPose checkpoint, so the file is not needed later.
    context_checkpoint: str | None = None
    # two-stage diffpose: the denoiser's x0 estimate is phi_ST's 3D pose plus a learnt correction (output layer
    # initialised at zero), so training starts from phi_ST's accuracy instead of from scratch. Chosen on
    # validation (bandai17, docs/benchmarks/history.md: 50.6 mm with it, 55.5 without at equal epochs).
    residual_to_context: bool = True
    frames: int = 27  # video context: frames per window (odd), taken at the data's frame stride
    video_lifter: VideoLifterConfig = field(default_factory=VideoLifterConfig)
    martinez_hidden: int = 1024
    martinez_blocks: int = 2
    # The network as the released code builds it (`diffpose-viz import`, docs/RELEASED_MODELS.md): the GraFormer
    # nets with the released layer norm and learnt-adjacency degrees and (u, v) input; MixSTE embedding (u, v).
    # Its weights are the released ones with their parameter names mapped. Off: the kit's own variants.
    released: bool = False
    # The joint order a released video lifter reads (coco17: VideoPose3D's detectron COCO model; the kit's H36M-17
    # 2D is re-laid out, COCO's eyes and ears taken from H36M-17's head point: models/coco_input.py).
    released_input: Literal["h36m17", "coco17"] = "h36m17"


@dataclass
class TrainConfig:
    epochs: int = 10
    max_steps: int | None = None  # stop after this many optimiser steps, whatever `epochs` says
    batch_size: int = 256  # global batch (split across DDP ranks)
    lr: float = 1e-3
    lr_gamma: float = 1.0  # learning rate multiplied by this after every epoch
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    seed: int = 0
    eval_every: int = 0  # validate every this many steps; 0 = at the end of every epoch
    val_max_samples: int = 512  # validation rows used for checkpoint selection (evenly thinned)
    val_hypotheses: int = 2  # diffusion methods: hypotheses per validation frame
    log_every: int = 50
    progress: bool = True  # progress display, rank 0 only (a bar on a terminal, a line every 30 s otherwise)
    # Speed (docs/BENCHMARKS.md, "Training throughput"; diffpose_viz/training/perf.py). amp 'bf16': the networks
    # under bf16 autocast (weights, optimiser state, diffusion state and loss stay float32), CPUs with bf16
    # instructions or a GPU; it changes the numbers, so it is opt-in. threads: intra-op threads of this process
    # (null: torch's default; 1 when several runs share a small machine). compile: torch.compile the network
    # (opt-in; one line and eager mode where unavailable). dropout_mask: how dropout draws its random mask while
    # training: 'bernoulli' is torch's (bernoulli_, one generator call per element); 'bits' reads four 16-bit
    # levels from each 64-bit random word (diffpose_viz/models/dropout.py): ~2.5x cheaper dropout, p rounded to
    # 1/65536, a different random stream, so the numbers change: opt-in (validation in docs/BENCHMARKS.md).
    amp: Literal["none", "bf16"] = "none"
    threads: int | None = None
    compile: bool = False
    dropout_mask: Literal["bernoulli", "bits"] = "bernoulli"
    # Video windows only: train on the windows centred on every window_stride-th frame of a sequence instead of
    # on every frame. With the seq2seq loss over all T frames (video_lifter), window_stride = model.frames tiles
    # each sequence with non-overlapping windows, as MixSTE trains: every frame is still supervised once per
    # epoch, with T times fewer windows. Changes the data order and the epoch length, so it is opt-in.
    window_stride: int = 1
    # Two-stage diffpose: encode every training row with the frozen phi_ST once (f_ST kept on the device) instead
    # of in every step. Same input to every step up to float rounding (matrix-product kernels round by a row's
    # position in the batch: up to ~4e-7 m in phi_ST's pose channels); false recomputes it per step as before.
    cache_context: bool = True


@dataclass
class OfficialConfig:
    lifter_checkpoint: str | None = None  # a trained `lifter` checkpoint: the deterministic initial pose
    uv_noise_scale: float = 0.5  # noise scale of the u, v channels (official runner; xyz use 1)
    test_num_diffusion_timesteps: int = 24  # frame CPN config: seq [12, 0] with sampling.official_steps 2


@dataclass
class ExperimentConfig:
    name: str = "experiment"
    method: str = "diffpose"  # a name in diffpose_viz.methods.METHODS
    data: DataConfig = field(default_factory=DataConfig)
    detector: DetectorSimConfig = field(default_factory=DetectorSimConfig)
    init: InitConfig = field(default_factory=InitConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    official: OfficialConfig = field(default_factory=OfficialConfig)
    # How the trained model samples by default (N, K, eta, start, ...): every knob that may change after training
    # (diffpose_viz/diffusion/setting.py; requests from the command line change it per run).
    sampling: SamplingSetting = field(default_factory=lambda: DEFAULT_SAMPLING)
    # Training-set body and viewpoint augmentation (docs/AUGMENTATION.md). Off when a config omits it, so
    # configs and checkpoints written before it existed keep their meaning; every shipped config turns it on.
    augmentation: AugmentationConfig = field(default_factory=lambda: AugmentationConfig(
        body=BodyAugConfig(enabled=False), view=ViewAugConfig(enabled=False)))
    device: str = "cpu"
    # Settings this config holds for another run of it than its own method: dotted key -> the overrides that run
    # uses (e.g. model.context_dim: [method=diffpose_joint]). The method check does not warn about such a key
    # when those overrides make it read (it still warns when they do not).
    for_overrides: dict[str, list[str]] = field(default_factory=dict)


#: Counts and sizes with their least sensible value (null stays allowed where the field is optional), so a
#: negative or zero count is refused naming its key instead of failing deep inside numpy or torch.
COUNT_MINIMA = {
    "data.max_frames": 1, "data.max_test_samples": 1, "data.error_model_kernels": 1,
    "init.n_kernels": 1, "init.n_samples": 1, "init.em_iters": 0, "init.em_n_init": 1,
    "init.depth_prior_components": 1, "init.min_bones_for_depth": 0, "init.chunk_size": 1,
    "diffusion.schedule.num_steps": 1, "model.hidden": 1, "model.layers": 1, "model.heads": 1,
    "model.context_dim": 1, "model.context_hidden": 1, "model.context_layers": 0, "model.frames": 1,
    "model.video_lifter.channels": 1, "model.video_lifter.filter_width": 1, "model.martinez_hidden": 1, "model.martinez_blocks": 0, "train.eval_every": 0, "train.val_max_samples": 1,
    "train.val_hypotheses": 1, "train.log_every": 1, "official.test_num_diffusion_timesteps": 1,
}


def _check_counts(cfg: "ExperimentConfig", bad) -> None:
    for key, minimum in COUNT_MINIMA.items():
        node = cfg
        for part in key.split("."):
            node = getattr(node, part, None)
        if node is not None and isinstance(node, (int, float)) and node < minimum:
            bad(key, f"expected {'null or ' if key in _OPTIONAL_COUNTS else ''}an integer >= {minimum}, found {node}")


_OPTIONAL_COUNTS = ("data.max_frames", "data.max_test_samples")


#: No setting is a number this large (pixels, metres, rates, weights); larger is a typo or a hostile file.
MAX_CONFIG_NUMBER = 1e6
#: An extra training source is repeated at most this many times per epoch (its `weight`).
MAX_SOURCE_WEIGHT = 100.0


def _numbers(node: Any, key: str = "") -> typing.Iterator[tuple[str, float]]:
    """(dotted key, value) of every float setting of a config, lists and nested dataclasses included."""
    if dataclasses.is_dataclass(node):
        for f in dataclasses.fields(node):
            yield from _numbers(getattr(node, f.name), f"{key}.{f.name}" if key else f.name)
    elif isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            yield from _numbers(item, f"{key}[{i}]")
    elif isinstance(node, float):
        yield key, node


def _check_numbers(cfg: "ExperimentConfig", bad) -> None:
    for key, value in _numbers(cfg):
        if not math.isfinite(value):
            bad(key, f"expected a finite number, found {value}")
        if abs(value) > MAX_CONFIG_NUMBER:
            bad(key, f"expected a number of magnitude <= {MAX_CONFIG_NUMBER:g}, found {value:g}")


def _file_subjects(path: str) -> str:
    """'it holds [...]' for a data_3d file (read only on this error path), or why that cannot be said."""
    if not Path(path).is_file():
        return "which does not exist (yet)"
    try:
        positions = load_npz(path, keys=["positions_3d"])["positions_3d"]
        return f"it holds {sorted(positions.item())}"
    except (SafeLoadError, KeyError, ValueError, OSError, AttributeError) as err:
        return f"whose subjects could not be read ({type(err).__name__})"


def _check_sampling(cfg: "ExperimentConfig", bad) -> None:
    """The model's own sampling setting against what training fixed (the schedule, the official step range)."""
    s, num_steps = cfg.sampling, cfg.diffusion.schedule.num_steps
    for key in ("n_hypotheses", "n_steps", "eta", "skip", "start_from", "official_steps", "amp", "record",
                "batch_size", "start_step"):
        if getattr(s, key) is None:
            bad(f"sampling.{key}", "expected a value (only start_t, clip_x0, sampler and seed may be null)")
    if s.n_steps < 1:
        bad("sampling.n_steps", f"expected an integer >= 1, found {s.n_steps}")
    if s.n_steps > num_steps:
        bad("sampling.n_steps", f"{s.n_steps} exceeds the schedule's {num_steps} steps")
    if s.start_t is not None and not s.start_t < num_steps:
        bad("sampling.start_t", f"expected null or a step in [0, {num_steps - 1}], found {s.start_t}")
    if s.start_t is not None and s.n_steps > s.start_t + 1:
        bad("sampling.n_steps", f"{s.n_steps} steps do not fit below start_t {s.start_t}")
    if s.official_steps > cfg.official.test_num_diffusion_timesteps:
        bad("sampling.official_steps", "must not exceed official.test_num_diffusion_timesteps")


def validate(cfg: ExperimentConfig, source: str = "config") -> None:
    def bad(key: str, msg: str) -> None:
        raise ConfigError(f"{source}: {key}: {msg}")

    _check_numbers(cfg, bad)
    if cfg.data.input_2d not in ("detector_sim", "gt", "file"):
        bad("data.input_2d", f"expected 'detector_sim', 'gt' or 'file', found {cfg.data.input_2d!r}")
    _check_counts(cfg, bad)
    for i, src in enumerate(cfg.data.extra_train):
        key = f"data.extra_train[{i}]"
        if not src.subjects:
            bad(f"{key}.subjects", f"missing: expected a list of the subjects of {src.path} to train on, "
                f"{_file_subjects(src.path)}")
        if not (0 < src.weight <= MAX_SOURCE_WEIGHT):
            bad(f"{key}.weight", f"expected a number in (0, {MAX_SOURCE_WEIGHT:g}] (rows per epoch relative to the "
                f"source), found {src.weight!r}")
        for field_name in ("frame_stride", "max_frames"):
            value = getattr(src, field_name)
            if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                bad(f"{key}.{field_name}", f"expected a whole number >= 1 or null (data.{field_name}), found {value!r}")
        if cfg.data.input_2d == "file" and cfg.data.train_2d is not None:
            bad(key, "extra motion has no detections in data.train_2d; train on GT projections (train_2d: null) or "
                     "drop the extra source")
    names = [src.prefix for src in cfg.data.extra_train]
    if len(set(names)) != len(names):
        bad("data.extra_train", f"two sources share the row prefix in {names}; give each a distinct `name`")
    if cfg.data.input_2d == "file":
        if cfg.data.test_2d is None:
            bad("data.test_2d", "input_2d: file needs the test rows' 2D file (a VideoPose3D data_2d or DiffPose GMM npz)")
        if cfg.data.train_2d is not None and (cfg.augmentation.body.enabled or cfg.augmentation.view.enabled):
            bad("augmentation", "body/view augmentation re-projects the training poses, so it needs training 2D that "
                "is a projection (data.train_2d: null), not detections read from a file")
        if cfg.data.error_model_kernels < 1:
            bad("data.error_model_kernels", f"expected an integer >= 1, found {cfg.data.error_model_kernels}")
    if not 0.0 <= cfg.data.validation_fraction < 1.0:
        bad("data.validation_fraction", f"expected a value in [0, 1), found {cfg.data.validation_fraction}")
    if cfg.data.frame_stride < 1:
        bad("data.frame_stride", f"expected >= 1, found {cfg.data.frame_stride}")
    overlap = set(cfg.data.train_subjects) & set(cfg.data.test_subjects)
    if overlap:
        bad("data.test_subjects", f"subjects {sorted(overlap)} are also training subjects")
    _check_sampling(cfg, bad)
    if cfg.diffusion.loss == "mpjpe" and cfg.diffusion.prediction != "x0":
        bad("diffusion.loss", "'mpjpe' needs diffusion.prediction: x0 (an MPJPE on noise has no meaning)")
    if cfg.model.context == "video" and cfg.model.frames % 2 == 0:
        bad("model.frames", f"video context needs an odd window, found {cfg.model.frames}")
    vl = cfg.model.video_lifter
    if vl.kind not in ("mixste", "tcn"):
        bad("model.video_lifter.kind", f"expected 'mixste' or 'tcn', found {vl.kind!r}")
    if not 0.0 <= vl.dropout < 1.0:
        bad("model.video_lifter.dropout", f"expected a value in [0, 1), found {vl.dropout}")
    for key, value in (("bn_momentum", vl.bn_momentum), ("bn_momentum_final", vl.bn_momentum_final)):
        if not 0.0 < value <= 1.0:
            bad(f"model.video_lifter.{key}", f"expected a value in (0, 1], found {value}")
    if cfg.model.context == "video" and vl.kind == "tcn":
        try:
            filter_widths_for(cfg.model.frames, vl.filter_width)
        except ValueError as err:
            bad("model.frames", f"the tcn video lifter's receptive field: {err}")
    if cfg.train.epochs < 1:
        bad("train.epochs", f"expected an integer >= 1, found {cfg.train.epochs} (an untrained model is never "
            "saved as 'best')")
    if cfg.train.max_steps is not None and cfg.train.max_steps < 1:
        bad("train.max_steps", f"expected null or an integer >= 1, found {cfg.train.max_steps}")
    if cfg.train.batch_size < 1:
        bad("train.batch_size", f"expected an integer >= 1, found {cfg.train.batch_size}")
    if cfg.train.threads is not None and cfg.train.threads < 1:
        bad("train.threads", f"expected null or an integer >= 1, found {cfg.train.threads}")
    if cfg.train.window_stride < 1:
        bad("train.window_stride", f"expected an integer >= 1, found {cfg.train.window_stride}")
    if cfg.train.amp not in ("none", "bf16"):
        bad("train.amp", f"expected 'none' or 'bf16', found {cfg.train.amp!r}")
    if cfg.train.dropout_mask not in ("bernoulli", "bits"):
        bad("train.dropout_mask", f"expected 'bernoulli' or 'bits', found {cfg.train.dropout_mask!r}")
    for key in ("lr", "grad_clip"):
        if not getattr(cfg.train, key) > 0:
            bad(f"train.{key}", f"expected a number > 0, found {getattr(cfg.train, key)}")
    if not 0.0 <= cfg.train.ema_decay < 1.0:
        bad("train.ema_decay", f"expected a value in [0, 1), found {cfg.train.ema_decay}")
    for key, overrides in cfg.for_overrides.items():
        if not isinstance(overrides, list) or not overrides or not all(isinstance(o, str) and "=" in o
                                                                         for o in overrides):
            bad(f"for_overrides.{key}", f"expected a list of key=value overrides, found {overrides!r}")
    if not (cfg.device == "cpu" or cfg.device.startswith("cuda") or cfg.device == "mps"):
        bad("device", f"expected 'cpu', 'cuda' or 'cuda:N', found {cfg.device!r}")


# --------------------------------------------------------------------------- dict <-> dataclass


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _convert(value: Any, tp: Any, key: str, source: str) -> Any:
    """Convert a YAML value to the declared type `tp`, or raise naming the key and file."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)

    def fail(expected: str) -> typing.NoReturn:
        raise ConfigError(f"{source}: key '{key}': expected {expected}, found {value!r} ({type(value).__name__})")

    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            fail(" or ".join(str(a) for a in args))
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, key, source)
            except ConfigError as err:
                errors.append(str(err))
        fail(" or ".join(getattr(a, "__name__", str(a)) for a in args if a is not type(None)))
    if origin is Literal:
        if value not in args:
            fail(f"one of {list(args)}")
        return value
    if _is_dataclass_type(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            fail(f"a mapping of {tp.__name__} fields")
        return from_dict(tp, value, source=source, prefix=f"{key}.")
    if tp is bool:
        if isinstance(value, bool):
            return value
        fail("true or false")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            fail("an integer")
        return int(value)
    if tp is float:
        if isinstance(value, bool):
            fail("a number")
        if isinstance(value, str):  # YAML 1.1 reads '1e-3' as a string
            try:
                return float(value)
            except ValueError:
                fail("a number")
        if not isinstance(value, (int, float)):
            fail("a number")
        return float(value)
    if tp is str:
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
        fail("a string")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            fail(f"a list ({tp})")
        if origin is list:
            return [_convert(v, args[0] if args else Any, f"{key}[{i}]", source) for i, v in enumerate(value)]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{key}[{i}]", source) for i, v in enumerate(value))
        if args and len(args) != len(value):
            fail(f"{len(args)} values")
        return tuple(_convert(v, a, f"{key}[{i}]", source) for i, (v, a) in enumerate(zip(value, args or [Any] * len(value))))
    return value


def from_dict(cls: type, data: dict, *, source: str = "config", prefix: str = "") -> Any:
    """Build dataclass `cls` from a nested dict; unknown keys raise KeyError naming key and source."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: '{prefix.rstrip('.') or '<top level>'}' must be a mapping, found "
                          f"{type(data).__name__}")
    if cls is ExperimentConfig:
        data = _sampling_section(data, source)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in names]
    if unknown:
        raise KeyError(f"{source}: unknown config key '{prefix}{unknown[0]}' "
                       f"(known keys under '{prefix.rstrip('.') or '<top level>'}': {sorted(names)})")
    kwargs = {k: _convert(v, hints[k], f"{prefix}{k}", source) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{source}: invalid values under '{prefix.rstrip('.') or '<top level>'}': {err}") from None


def _sampling_section(data: dict, source: str) -> dict:
    """The config with a full `sampling:` section: DEFAULT_SAMPLING, changed by the keys an older config kept
    under diffusion:/official: (LEGACY_KEYS), changed by its own sampling: keys. A key set in both places is
    refused (which one would win is not obvious)."""
    data = dict(data)
    given = data.get("sampling") or {}
    if isinstance(given, SamplingSetting):
        return data
    if not isinstance(given, dict):
        raise ConfigError(f"{source}: 'sampling' must be a mapping, found {type(given).__name__}")
    section = {f.name: getattr(DEFAULT_SAMPLING, f.name) for f in dataclasses.fields(SamplingSetting)}
    for dotted, key in LEGACY_KEYS.items():
        parent, old = dotted.split(".")
        block = data.get(parent)
        if isinstance(block, dict) and old in block:
            if key in given:
                raise ConfigError(f"{source}: both {dotted} (an older name) and sampling.{key} are set; keep "
                                  f"sampling.{key}")
            section[key] = block[old]
            data[parent] = {k: v for k, v in block.items() if k != old}
    data["sampling"] = {**section, **given}
    return data


def to_dict(cfg: Any) -> dict:
    """Plain nested dict (tuples become lists) suitable for YAML and JSON."""
    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return plain(asdict(cfg))


def parse_config(data: dict, source: str = "config") -> ExperimentConfig:
    """The config in a plain dict, checked for structure, types and ranges (not for the method's rules)."""
    cfg = from_dict(ExperimentConfig, data, source=source)
    validate(cfg, source)
    return cfg


def read_config(path: str | os.PathLike, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML config (checked as `parse_config` does); `overrides` are 'dotted.key=value' strings (value
    parsed as YAML)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config file {path} does not exist")
    check_input_file(path, "a YAML config file", max_bytes=MAX_CONFIG_BYTES)
    try:
        data = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start}); expected "
                          "a YAML config saved as UTF-8") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if data is None:
        raise ConfigError(f"{path}: the config file is empty; expected a mapping with at least 'method' "
                          "(see configs/demo.yaml)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, found {type(data).__name__}")
    data = apply_overrides(data, overrides or [], source=str(path))
    return parse_config(data, source=str(path))


def apply_overrides(data: dict, overrides: list[str], source: str = "config") -> dict:
    """Set dotted keys in a nested dict: ['train.lr=3e-4', 'data.cameras=[0]']. Keys are checked later; the older
    names of the sampling keys (LEGACY_KEYS, e.g. diffusion.n_sampling_steps) set them in the sampling section."""
    data = yaml.safe_load(yaml.safe_dump(data))  # deep copy
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--override {item!r}: expected key=value, e.g. train.epochs=2")
        key, raw = item.split("=", 1)
        if key.strip() in LEGACY_KEYS:  # an older name (scripts, notes) of a key the sampling section holds now
            key = f"sampling.{LEGACY_KEYS[key.strip()]}"
        value = yaml.safe_load(raw) if raw.strip() else None
        node = data
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--override {item!r}: '{p}' is not a section")
        node[parts[-1]] = value
    return data


def save_config(cfg: ExperimentConfig, path: str | os.PathLike) -> Path:
    """Write the config as YAML atomically."""
    path = Path(path)
    text = yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None)
    with atomic_target(path) as tmp:
        tmp.write_text(text)
    return path


def config_diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain config dicts."""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k, "<missing>"), b.get(k, "<missing>")
        if isinstance(va, dict) and isinstance(vb, dict):
            out += config_diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}: {va!r} != {vb!r}")
    return out
