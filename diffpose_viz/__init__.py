"""diffpose_viz: DiffPose (Gong et al., CVPR 2023) re-implemented, with an analysis kit.

Layers, bottom to top: skeleton/camera -> datasets -> detector_sim -> initialization (GMM)
-> diffusion + models -> training/evaluation -> results (xarray) -> figures -> notebooks/dashboard.
"""
__version__ = "0.1.0"
