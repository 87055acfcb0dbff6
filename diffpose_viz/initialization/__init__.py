"""Pose-specific initialization H_K: batched GMM EM, depth priors, per-frame 3D GMMs, GMM-file generator.

See docs/INITIALIZATION.md for what is the paper's and what is our reconstruction.
"""
from diffpose_viz.initialization.gmm_em import GMMFit, benchmark_em, fit_gmm, gmm_log_prob, sample_gmm
from diffpose_viz.initialization.depth_prior import ConditionalDepthPrior, DepthPrior, depth_prior_from_dict
from diffpose_viz.initialization.pose_init import (
    InitConfig,
    PoseGMM,
    build_pose_gmm,
    estimate_root_depth,
    fit_depth_prior,
    intrinsics_from_camera,
    modes_from_keypoints,
    pose_gmm_from_keypoints,
)

__all__ = [
    "GMMFit", "fit_gmm", "gmm_log_prob", "sample_gmm", "benchmark_em",
    "DepthPrior", "ConditionalDepthPrior", "depth_prior_from_dict",
    "InitConfig", "PoseGMM", "build_pose_gmm", "pose_gmm_from_keypoints", "modes_from_keypoints",
    "estimate_root_depth", "fit_depth_prior", "intrinsics_from_camera",
]
