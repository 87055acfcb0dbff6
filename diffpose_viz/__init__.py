"""diffpose_viz: DiffPose (Gong et al., CVPR 2023) re-implemented, with an analysis kit.

Layers, bottom to top (docs/ARCHITECTURE.md): skeleton/camera -> datasets -> detector_sim, metrics
-> initialization (GMM), diffusion, models -> config, checkpoint -> inputs -> methods -> inference
-> training, evaluation -> figures -> cli, wild, dashboard, notebooks.
"""
__version__ = "0.2.0"
