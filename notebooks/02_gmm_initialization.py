# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: -all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,language_info,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
#   language_info:
#     codemirror_mode:
#       name: ipython
#       version: 3
#     file_extension: .py
#     mimetype: text/x-python
#     name: python
#     nbconvert_exporter: python
#     pygments_lexer: ipython3
#     version: '3.11'
# ---

# %% [markdown]
# # 02 · Pose-specific initialization: the GMM H_K
#
# DiffPose does not start reverse diffusion from N(0, I). For each input it fits, per joint, a Gaussian
# mixture **H_K** from the 2D keypoint uncertainty (x, y) and a depth prior (z). The results file stores the
# fitted mixture: `gmm_weight` (sample, joint, kernel), `gmm_mean` and `gmm_var` (… , xyz; metres, m²),
# in the model's state space (camera frame, root-relative).

# %%
import numpy as np
import pandas as pd

from nb_setup import SMOKE, ensure_results, head, open_results

from diffpose_viz import figures as F
from diffpose_viz.skeleton import H36M17

results = ensure_results()
ds = head(open_results(results / "diffpose.nc"))
print(f"samples={ds.sizes['sample']}  kernels per joint={ds.sizes['kernel']}  smoke={SMOKE}")

# %% [markdown]
# ## One input, its mixture on the image plane
# Left: the 2D input with every kernel as an ellipse at ±2σ (opacity = kernel weight) and samples drawn
# from H_K. Results files carry no camera intrinsics, so the metric x/y of H_K is placed on the image with
# a weak-perspective fit (scale + offset) against the visible keypoints. Right: depth kernels per joint.

# %%
i = 0
print(F.describe_sample(ds, i))
F.gmm_from_results(ds, i, n_samples=30 if SMOKE else 60)

# %% [markdown]
# ## How wide is H_K, and where?
# The standard deviation of the whole mixture per joint, split into image-plane (x, y) and depth (z).
# Depth should dominate: a single view says little about it.

# %%
w, mu, var = (ds[k].values for k in ("gmm_weight", "gmm_mean", "gmm_var"))
wn = w / w.sum(-1, keepdims=True)
mean = (wn[..., None] * mu).sum(-2, keepdims=True)
second = (wn[..., None] * (var + (mu - mean) ** 2)).sum(-2)  # (sample, joint, xyz) variance of the mixture
table = pd.DataFrame({
    "xy std (mm)": (np.sqrt(second[..., :2].sum(-1)).mean(0) * 1000).round(1),
    "z std (mm)": (np.sqrt(second[..., 2]).mean(0) * 1000).round(1),
}, index=pd.Index(H36M17.joint_names, name="joint"))
table

# %% [markdown]
# ## Does diffusion improve on its starting point?
# The mixture mean is already a pose estimate. Compare its error with the final error of DiffPose (P-Agg).

# %%
init_err = np.linalg.norm(mean[..., 0, :] - ds["gt"].values, axis=-1) * 1000
cmp = pd.DataFrame({"H_K mean (mm)": init_err.mean(0).round(1), "DiffPose P-Agg (mm)": ds["err"].values.mean(0)
                    .round(1)}, index=pd.Index(H36M17.joint_names, name="joint"))
print(f"MPJPE of the H_K mean: {init_err.mean():.1f} mm   final: {ds['err'].values.mean():.1f} mm")
cmp.T

# %% [markdown]
# ## Degenerate mixtures
# The released DiffPose GMM files put almost all weight on one kernel (π ≈ (1, 0, 0), Diffpose#19), which turns
# the mixture into a single Gaussian. How often does that happen here?

# %%
dominant = w.max(-1)
print(f"joints whose heaviest kernel has weight > 0.95: {(dominant > 0.95).mean():.1%}")
print(f"median weight of the heaviest kernel: {np.median(dominant):.2f}")
