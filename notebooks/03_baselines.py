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
# # 03 · DiffPose against the baselines
#
# Every results file in the folder is one model run on the same test set (`diffpose.nc` plus baselines such as
# `gaussian_diffusion.nc`, `deterministic_lifter.nc`, …). Metrics are MPJPE in millimetres, root-relative.
# **J-Best and P-Best are oracles**: they pick hypotheses using the ground truth, so they are shown next to, never
# instead of, the practical aggregates P-Agg (mean of the hypotheses) and J-Agg (per joint, the hypothesis with the
# smallest 2D reprojection error).

# %%
from nb_setup import SMOKE, ensure_results, head, open_all

from diffpose_viz import figures as F

results = ensure_results()
runs = {name: head(ds) for name, ds in open_all(results).items() if "err" in ds}
print("models:", list(runs), " smoke:", SMOKE)

# %% [markdown]
# ## Summary
# Frame-wise MPJPE and the mean over actions (the field reports the latter).

# %%
F.model_summary_table(runs).round(1)

# %% [markdown]
# ## Per action

# %%
per_action = F.per_action_table(runs)
F.model_comparison_figure(per_action)

# %% [markdown]
# ## Sample by sample
# Each point is one test frame, matched across files on subject, action, camera and frame. Points below the diagonal
# are frames where the baseline beats DiffPose.

# %%
baselines = [m for m in runs if m != "diffpose"]
if "diffpose" in runs and baselines:
    ea, eb, labels = F.matched_sample_errors(runs["diffpose"], runs[baselines[0]])
    fig = F.paired_error_figure(ea, eb, "diffpose", baselines[0], labels)
else:
    fig = None
    print("need diffpose.nc and at least one baseline in", results)
fig

# %% [markdown]
# ## How many hypotheses?
# Error when only the first n hypotheses are used. P-Agg is what a user gets; the dotted oracles bound what a
# perfect selector could get.

# %%
ds = runs.get("diffpose")
if ds is not None and ds.sizes.get("hypothesis", 1) > 1:
    curves = F.error_vs_hypotheses(ds["hypotheses"].values, ds["gt"].values)
    fig = F.error_vs_hypotheses_figure(curves)
else:
    fig = None
fig
