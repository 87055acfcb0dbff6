"""Old import path, kept so code written against earlier versions still imports.

`pipeline` was split: inputs (splits, 2D input, H_K) are `diffpose_viz.inputs`, the networks and every
method-specific step are `diffpose_viz.methods`, loading a model and lifting are `diffpose_viz.inference`.
"""
from diffpose_viz.inference import autocast, gather_cond, load_model, predict, run_inference  # noqa: F401
from diffpose_viz.inputs import (  # noqa: F401
    NORMALISER,
    SPLIT_SEEDS,
    Splits,
    build_hk,
    check_finite,
    check_gmm,
    concat_gmms,
    default_camera,
    fit_prior,
    load_poses,
    load_splits,
    make_inputs,
    row_intrinsics,
    screen_input,
    window_indices,
)
from diffpose_viz.inputs import InputError as PipelineError  # noqa: F401
from diffpose_viz.methods import (  # noqa: F401
    DiffusionNetwork,
    LoadedModel,
    OfficialNetwork,
    Prediction,
    RegressionNetwork,
    get_method,
)


def build_network(cfg):
    """The trainable network of cfg's method (None for init_only)."""
    return get_method(cfg.method).build_network(cfg)
