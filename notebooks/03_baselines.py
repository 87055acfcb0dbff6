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

# %% [markdown]
# ## Comparing people (issue 28)
# Bodies of the real people converted by `diffpose-viz data hdm05|cmu_asf|reactidle` (git-ignored
# `data/cache/<name>/`): per person the frames and the joint-centre widths and height the rigs give
# (`scripts/body_stats.py`). Rigs place shoulders and hips differently (docs/AUGMENTATION.md), which is a large part of
# the cross-person error in docs/benchmarks/people.md. Skipped when nothing has been converted on this machine.

# %%
from nb_setup import REPO

from diffpose_viz.datasets import load_3d
from diffpose_viz.datasets.cross_body import body_measurements

rows = []
for name in ("hdm05", "cmu_asf", "reactidle"):
    path = REPO / "data" / "cache" / name / f"data_3d_{name}.npz"
    if path.exists():
        for person, m in body_measurements(load_3d(path)).items():
            rows.append((name, person, m["frames"], m["hip_width"], m["shoulder_width"], m["height"]))
if rows:
    print(f"{'source':10s} {'person':8s} {'frames':>7s} {'hips m':>7s} {'shoulders m':>11s} {'height m':>8s}")
    for name, person, frames, hips, shoulders, height in rows:
        print(f"{name:10s} {person:8s} {frames:7d} {hips:7.3f} {shoulders:11.3f} {height:8.3f}")
else:
    print("no converted people in data/cache (run `diffpose-viz data hdm05 --from ...`): section skipped")
