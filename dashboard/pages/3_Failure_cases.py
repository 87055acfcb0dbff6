"""Worst samples first: filter by model, action, joint and occlusion, then look at one in 3D."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from diffpose_viz import figures as F  # noqa: E402
from diffpose_viz.skeleton import H36M17  # noqa: E402

st = common.st
files = common.results_page("Failure cases", "Samples ranked by error. Choose one to see its prediction (joints "
                            "coloured by error), the ground truth and every hypothesis.")
ds = common.pick_model_with_gt(files, "fail_model", ", so samples cannot be ranked by error.")

group_coord = "action_group" if "action_group" in ds.coords else "action"
actions = sorted(set(ds[group_coord].values.astype(str)))
ALL = "all joints (MPJPE)"
col1, col2, col3, col4 = st.columns([2, 2, 2, 1])
picked_actions = col1.multiselect("Actions", actions, default=actions, key="fail_actions")
joint = col2.selectbox("Rank by joint", [ALL, *H36M17.joint_names], key="fail_joint")
occ_filter = col3.radio("Occlusion", ["all", "with hidden joints", "fully visible"], horizontal=True,
                        key="fail_occ")
top_n = col4.number_input("Show", 1, 500, 20, key="fail_top")

err = ds["err"].values
score = err.mean(-1) if joint == ALL else err[:, H36M17.index(joint)]
occ_count = ds["occluded"].values.sum(-1) if "occluded" in ds else np.zeros(len(err), int)
keep = np.isin(ds[group_coord].values.astype(str), picked_actions)
if occ_filter == "with hidden joints":
    keep &= occ_count > 0
elif occ_filter == "fully visible":
    keep &= occ_count == 0
idx = np.flatnonzero(keep)
idx = idx[np.argsort(-score[idx])][: int(top_n)]
if len(idx) == 0:
    st.info("No sample matches these filters.")
    st.stop()
spread = F.hypothesis_spread_mm(ds["hypotheses"].values[idx]).mean(-1) if "hypotheses" in ds and \
    ds.sizes.get("hypothesis", 1) > 1 else np.full(len(idx), np.nan)
table = pd.DataFrame({
    "sample": idx, "subject": ds["subject"].values[idx] if "subject" in ds.coords else "",
    "action": ds["action"].values[idx] if "action" in ds.coords else "",
    "frame": ds["frame"].values[idx] if "frame" in ds.coords else idx,
    "error (mm)": score[idx].round(1), "MPJPE (mm)": err[idx].mean(-1).round(1),
    "hypothesis spread (mm)": spread.round(1), "hidden joints": occ_count[idx],
})
st.dataframe(table, hide_index=True, height=min(38 + 35 * len(idx), 320))

labels = common.sample_labels(ds)
chosen = st.selectbox("Look at", list(idx), format_func=lambda i: labels[i], key="fail_pick")
max_h = ds.sizes.get("hypothesis", 1)
common.plot(F.skeleton_from_results(ds, int(chosen), max_hypotheses=max_h), key="fail_fig")

st.subheader("Occlusion")
pairs = {o: c for c, o in F.occlusion_pairs(ds)}
clean_of = {c: (c, o) for c, o in F.occlusion_pairs(ds)}
pair = (pairs[chosen], chosen) if chosen in pairs else clean_of.get(int(chosen))
if pair is not None:
    st.caption(f"The same frame with and without hidden joints (samples #{pair[0]} and #{pair[1]}).")
    common.plot(F.occlusion_comparison_figure(F.occlusion_case(ds, *pair)), key="fail_occ_fig")
elif "occluded" in ds and ds["occluded"].values.any():
    common.plot(F.occlusion_summary_figure(ds), key="fail_occ_fig")
else:
    st.info("These results have no occluded joints.")
