"""Training: configs (dataclasses <-> YAML), the trainer, checkpoints, DDP helpers, EMA.

Submodules are imported on use (`from diffpose_viz.training.trainer import train`) so that reading a
config does not pull in the whole model stack.
"""
from diffpose_viz.training.config import ExperimentConfig, load_config, save_config

__all__ = ["ExperimentConfig", "load_config", "save_config"]
