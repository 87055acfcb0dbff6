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
# # 01 · Reverse diffusion, step by step
#
# DiffPose starts every hypothesis from the pose-specific distribution **H_K** and walks it back to a
# 3D pose with a DDIM sampler. At every recorded step the results file keeps
#
# - `trajectory`: the state **h_k** of every hypothesis,
# - `x0_estimate`: the network's estimate of the final pose **h_0** made at that step,
# - `err_step`: the error (mm) of the mean x0 estimate against the ground truth.
#
# This notebook opens those arrays for one sample and for the whole test set.
# Set `DIFFPOSE_VIZ_SMOKE=1` for a small run; `DIFFPOSE_VIZ_RESULTS` picks another results folder.

# %%
import numpy as np
import pandas as pd

from nb_setup import SMOKE, ensure_results, head, open_results

from diffpose_viz import figures as F

results = ensure_results()
ds = head(open_results(results / "diffpose.nc"))
print(f"model={ds.attrs.get('model')}  samples={ds.sizes['sample']}  hypotheses={ds.sizes['hypothesis']}  "
      f"recorded steps={ds.sizes.get('step', 0)}  smoke={SMOKE}")
ds

# %% [markdown]
# ## The recorded schedule
# `step` 0 is h_K (the start); the last step is the final h_0. The `timestep` coordinate holds the diffusion
# time t of each recorded state.

# %%
pd.DataFrame({"step": ds["step"].values, "t": ds["timestep"].values}).set_index("step").T

# %% [markdown]
# ## One sample, all hypotheses
# We pick the sample with the median error, so it is typical rather than a best or worst case.
# Left: h_k of every hypothesis; right: the estimate of h_0 at that step, joints coloured by their error.
# Press ▶ or drag the slider under the plot. The person is drawn upright in camera coordinates
# (x right, depth away from the camera, up), to scale.

# %%
mpjpe = ds["err"].values.mean(-1)
i = int(np.argsort(mpjpe)[len(mpjpe) // 2])
print(F.describe_sample(ds, i), f"— MPJPE {mpjpe[i]:.1f} mm")
F.trajectory_from_results(ds, i, max_hypotheses=5 if SMOKE else 10)

# %% [markdown]
# ## What changes along the way
# Two numbers per step for this sample: how far apart the hypotheses are (spread of h_k, mm) and how wrong
# the mean x0 estimate is. Spread should shrink as the sampler commits to a pose.

# %%
traj = ds["trajectory"].values[i]  # (hypothesis, step, joint, xyz), metres
spread = np.linalg.norm(traj - traj.mean(0, keepdims=True), axis=-1).mean((0, 2)) * 1000
per_step = pd.DataFrame({
    "t": ds["timestep"].values,
    "h_k spread (mm)": spread.round(1),
    "x0-estimate MPJPE (mm)": ds["err_step"].values[i].mean(-1).round(1),
}, index=pd.Index(ds["step"].values, name="step"))
per_step

# %% [markdown]
# ## Over the whole test set
# The mean error of the x0 estimate per recorded step, with the 25–75th percentile band across samples.

# %%
F.error_vs_steps_figure(ds["err_step"].values, ds["timestep"].values)

# %% [markdown]
# ## Take-aways
# - If the curve is flat after a few steps, fewer DDIM steps would do (see notebook 03 for the ablations).
# - A spread that collapses to ~0 mm means the hypotheses are identical: the multi-hypothesis output would add
#   nothing (a known failure of the official code, Diffpose#9).
