"""Old import path: configs moved to `diffpose_viz.config`; the method check is `diffpose_viz.methods`."""
from diffpose_viz.config import *  # noqa: F401,F403
from diffpose_viz.config import (  # noqa: F401
    ConfigError,
    DataConfig,
    DiffusionConfig,
    ExperimentConfig,
    ModelConfig,
    OfficialConfig,
    TrainConfig,
    apply_overrides,
    config_diff,
    from_dict,
    save_config,
    to_dict,
    validate,
)
from diffpose_viz.methods import METHODS, config_from_dict, load_config  # noqa: F401
