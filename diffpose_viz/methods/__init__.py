"""The method table: the one list of methods. Everything that differs between methods lives in the
method objects; the trainer, evaluation, bench, sample and the scripts look methods up here.

Adding a method: write one file in this folder with a `Method` subclass and add one line to `METHODS`.
"""
from __future__ import annotations

import logging
import os

from diffpose_viz import config as _config
from diffpose_viz.config import ExperimentConfig, to_dict
from diffpose_viz.errors import ConfigError
from diffpose_viz.diffusion import AMP_CHOICES, SamplingSetting
from diffpose_viz.methods.base import LoadedModel, Method, Prediction, TrainBatch, centre_frame
from diffpose_viz.methods.diffusion import DiffPoseJoint, DiffusionNetwork, GaussianDiffusion
from diffpose_viz.methods.init_only import InitOnly
from diffpose_viz.methods.official import Official, OfficialNetwork
from diffpose_viz.methods.regression import Lifter, Martinez, RegressionNetwork
from diffpose_viz.methods.video import VideoLifter
from diffpose_viz.methods.two_stage import ContextDiffusionNetwork, TwoStageDiffPose

log = logging.getLogger(__name__)

METHODS: dict[str, Method] = {m.name: m for m in (
    TwoStageDiffPose(),
    DiffPoseJoint(),
    GaussianDiffusion(),
    Lifter(),
    VideoLifter(),
    Martinez(),
    InitOnly(),
    Official(),
)}


def get_method(name: str, source: str = "config") -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(f"{source}: method: expected one of {list(METHODS)}, found {name!r}") from None


def _differs_from_default(cfg: ExperimentConfig, dotted: str) -> bool:
    default, actual = to_dict(ExperimentConfig()), to_dict(cfg)
    for part in dotted.split("."):
        default, actual = default.get(part), actual.get(part)
    return default != actual


def check_config(cfg: ExperimentConfig, source: str = "config", *, warn: bool = True) -> Method:
    """The method check every config passes before use: a known method, the method's own rules, and a
    warning for settings the method never reads (when they differ from the defaults)."""
    method = get_method(cfg.method, source)
    method.check(cfg, source)
    if method.uses_windows(cfg) and cfg.augmentation.view.enabled:
        raise ConfigError(f"{source}: augmentation.view.enabled: virtual cameras are drawn per row, which breaks "
                          "the temporal windows of video context; turn view augmentation off for video models")
    if warn:
        unread = unread_settings(cfg, method)
        ignored = [label for key, label in unread.items() if not _read_under_overrides(cfg, key)]
        if ignored:
            log.warning("%s: method %s does not read %s; those settings have no effect", source, method.name,
                        ", ".join(ignored))
    return method


def unread_settings(cfg: ExperimentConfig, method: Method) -> dict[str, str]:
    """{dotted key: how to say it} of the settings `cfg` changes from the defaults that `method` never reads."""
    unread = {k: k for k in method.ignores if _differs_from_default(cfg, k)}
    if cfg.model.context == "frame" and _differs_from_default(cfg, "model.frames"):
        unread["model.frames"] = "model.frames (frame context)"
    if cfg.data.input_2d != "gt" and _differs_from_default(cfg, "data.gt_noise_std_px"):
        unread["data.gt_noise_std_px"] = f"data.gt_noise_std_px (input_2d is {cfg.data.input_2d!r})"
    return unread


def _read_under_overrides(cfg: ExperimentConfig, key: str) -> bool:
    """Whether the run `cfg.for_overrides` names for `key` (its overrides applied) reads that key."""
    overrides = cfg.for_overrides.get(key)
    if not overrides:
        return False
    try:
        other = _config.parse_config(_config.apply_overrides(to_dict(cfg), overrides), "for_overrides")
        return not any(key == k or key.startswith(k + ".") for k in unread_settings(other, get_method(other.method)))
    except (KeyError, ValueError):  # overrides that do not make a valid config read nothing
        return False


def config_from_dict(data: dict, source: str = "config") -> ExperimentConfig:
    """`diffpose_viz.config.parse_config` plus the method check."""
    cfg = _config.parse_config(data, source)
    check_config(cfg, source, warn=False)
    return cfg


def load_config(path: str | os.PathLike, overrides: list[str] | None = None) -> ExperimentConfig:
    """`diffpose_viz.config.read_config` plus the method check (with warnings for unused settings)."""
    cfg = _config.read_config(path, overrides)
    check_config(cfg, str(path))
    return cfg


def names(*, trainable: bool | None = None, samples_with_ddim: bool | None = None) -> list[str]:
    """Method names in table order, optionally filtered by what they do."""
    return [n for n, m in METHODS.items()
            if (trainable is None or m.trainable == trainable)
            and (samples_with_ddim is None or m.samples_with_ddim == samples_with_ddim)]


def applicable(cfg: ExperimentConfig) -> list[str]:
    """Methods (table order) that can run with `cfg`'s settings apart from `method` (e.g. video_lifter needs
    model.context 'video'); scripts that run "every method" on a config run these."""
    from dataclasses import replace

    out = []
    for name, method in METHODS.items():
        try:
            method.check(replace(cfg, method=name), "config")
        except ConfigError:
            continue
        out.append(name)
    return out


def training_order(selected: list[str] | None = None) -> list[str]:
    """Method names in an order that trains every dependency first (methods with a `lifter_checkpoint_key`,
    the official mode and the two-stage diffpose, come after the lifter)."""
    chosen = list(METHODS) if selected is None else [get_method(n).name for n in selected]
    return sorted(chosen, key=lambda n: METHODS[n].lifter_checkpoint_key is not None)


__all__ = ["AMP_CHOICES", "METHODS", "ContextDiffusionNetwork", "DiffPoseJoint", "DiffusionNetwork",
           "GaussianDiffusion", "InitOnly", "Lifter", "LoadedModel", "Martinez", "Method", "Official",
           "OfficialNetwork", "Prediction", "RegressionNetwork", "SamplingSetting", "TrainBatch", "TwoStageDiffPose",
           "applicable", "centre_frame", "check_config", "config_from_dict", "get_method", "load_config", "names",
           "training_order"]
