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
# # 04 · Failure cases and occlusion
#
# Where does DiffPose go wrong, does it know when it is wrong, and what happens when joints are hidden?
# A joint counts as occluded when the results file marks it in `occluded` (its 2D confidence is then low or 0).

# %%
import numpy as np
import pandas as pd

from nb_setup import SMOKE, ensure_results, head, open_results

from diffpose_viz import figures as F

results = ensure_results()
ds = head(open_results(results / "diffpose.nc"))
err = ds["err"].values
print(f"samples={ds.sizes['sample']}  occluded joints={int(ds['occluded'].values.sum())}  smoke={SMOKE}")

# %% [markdown]
# ## The worst samples

# %%
mpjpe = err.mean(-1)
worst = np.argsort(-mpjpe)[:10]
pd.DataFrame({
    "sample": worst,
    "where": [F.describe_sample(ds, int(i)) for i in worst],
    "MPJPE (mm)": mpjpe[worst].round(1),
    "worst joint": [str(ds["joint"].values[err[i].argmax()]) for i in worst],
    "hidden joints": ds["occluded"].values[worst].sum(-1),
})

# %% [markdown]
# ## The worst one in 3D
# Prediction (blue, joints coloured by error), ground truth (green) and every hypothesis (grey). One 3D figure per
# notebook keeps browsers under their WebGL context limit; change `i` to look at another sample.

# %%
i = int(worst[0])
F.skeleton_from_results(ds, i)

# %% [markdown]
# ## Is the uncertainty informative?
# If the hypotheses spread out where the pose is wrong, the spread is a usable confidence signal. A Spearman ρ well
# above 0 says it is.

# %%
spread = F.hypothesis_spread_mm(ds["hypotheses"].values)
corr = F.spread_error_correlation(spread, err)
print(f"Spearman rho = {corr['spearman']:.2f}, Pearson r = {corr['pearson']:.2f}")
F.spread_vs_error_figure(spread, err)

# %% [markdown]
# ## Does it know when an input is unlike its training?
# `evaluate` also scores every sample for being out of domain, without ground truth: how unlike the training 2D the
# input pose is, how badly the prediction reprojects onto its own input, and how the hypotheses' spread compares
# with H_K's. Samples above the validation rows' 99th percentile are flagged "outside what this model was trained
# on"; the stored per-joint `radius` (90 %) widens with the score. Its coverage should hold on both sides of the flag.

# %%
from diffpose_viz.figures import uncertainty as FU

row = FU.ood_row(ds)
print(pd.Series(row).to_string())
fig = FU.ood_score_figure({"diffpose": ds["ood_score"].values}, ds.attrs.get("ood_threshold")) \
    if "ood_score" in ds else None
fig

# %% [markdown]
# ## Occlusion: the same frame with joints hidden
# When the evaluation ran each frame with and without simulated occlusion, the pairs show directly how the initial
# distribution H_K and the hypotheses widen at the hidden joints (marked *), and how the error follows.
# Without such pairs we compare visible and occluded joints over all samples.

# %%
pairs = F.occlusion_pairs(ds)
print(f"{len(pairs)} (clean, occluded) pairs")
if pairs:
    case = F.occlusion_case(ds, *pairs[0])
    hidden = case["occluded"]
    for key in ("initial_spread", "hypothesis_spread", "error"):
        if key in case:
            print(f"{key:18s} at hidden joints: {case[key][0, hidden].mean():6.1f} mm visible -> "
                  f"{case[key][1, hidden].mean():6.1f} mm hidden")
    fig = F.occlusion_comparison_figure(case)
else:
    fig = F.occlusion_summary_figure(ds)
fig

# %% [markdown]
# ## Per joint, visible against occluded

# %%
F.per_joint_error_figure(err, occluded=ds["occluded"].values)

# %% [markdown]
# ## One sequence over time
#
# The Timeline page's figure for notebooks (`diffpose_viz.figures.timeline.timeline_figure`): the 3D pose with
# its hypotheses under a frame slider (▶ plays it), beside the error of every frame. The dashboard's Timeline
# page adds the video, the 2D input, the out-of-domain strip, per-joint traces, A/B and exports.

# %%
from diffpose_viz.figures.sequence import select_sequence
from diffpose_viz.figures.timeline import timeline_figure

timeline_figure(select_sequence(ds, 0, source=str(results / "diffpose.nc")), max_frames=60)
