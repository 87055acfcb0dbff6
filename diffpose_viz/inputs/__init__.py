"""What a run is fed, in the order it is built: the rows (`splits`; the error-bar calibration's in `calibration`),
their 2D input and network condition (`detections`), video windows (`windows`), H_K (`hk`), and the `Feed` that
holds them for one split and method (`feed`). The names below are the package's face; each lives in the submodule
named.
"""
from diffpose_viz.inputs.calibration import CalibrationRows, calibration_rows
from diffpose_viz.inputs.detections import (
    DEFAULT_FOCAL_FACTOR,
    NORMALISER,
    attach_file,
    check_finite,
    default_camera,
    detector_config,
    file_2d_path,
    fit_error_model,
    make_inputs,
    row_intrinsics,
    screen_input,
    training_2d,
)
from diffpose_viz.inputs.feed import (
    Feed,
    FeedBatch,
    build_feed,
    feed_from_keypoints,
    hk_needed,
    scored_rows,
    window_length,
)
from diffpose_viz.inputs.hk import (
    HK_FIELDS,
    build_hk,
    check_gmm,
    concat_gmms,
    file_identity,
    fit_prior,
    hk_cache_file,
    hk_cache_key,
    rows_digest,
)
from diffpose_viz.inputs.splits import (
    SPLIT_SEEDS,
    AugmentedSplit,
    Splits,
    augment_split,
    augmentation_on,
    load_poses,
    load_source,
    load_splits,
    load_test_poses,
)
from diffpose_viz.inputs.windows import (
    WindowedRows,
    sequence_windows,
    strided_centres,
    thin_windowed,
    window_centres,
    window_indices,
)

__all__ = [
    "DEFAULT_FOCAL_FACTOR", "HK_FIELDS", "NORMALISER", "SPLIT_SEEDS", "AugmentedSplit", "CalibrationRows",
    "Feed", "FeedBatch", "Splits", "WindowedRows", "attach_file", "augment_split", "augmentation_on", "build_feed",
    "build_hk", "calibration_rows", "check_finite", "check_gmm", "concat_gmms", "default_camera",
    "detector_config", "feed_from_keypoints", "file_2d_path", "file_identity", "fit_error_model", "fit_prior",
    "hk_cache_file", "hk_cache_key", "hk_needed", "load_poses", "load_source", "load_splits", "load_test_poses",
    "make_inputs", "row_intrinsics", "rows_digest", "scored_rows", "screen_input", "sequence_windows",
    "strided_centres", "thin_windowed", "training_2d", "window_centres", "window_indices", "window_length"
]
