"""What-if lab: edit one sample's 2D input (hide joints, move them, change the 2D spread) and sample again."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402
import numpy as np  # noqa: E402
import plotly.graph_objects as go  # noqa: E402

from diffpose_viz import figures as F  # noqa: E402
from diffpose_viz import lab  # noqa: E402
from diffpose_viz.diffusion import SamplingSetting  # noqa: E402
from diffpose_viz.skeleton import H36M17  # noqa: E402

st = common.st
common.page_header("What-if lab", "Hide or move 2D joints of one sample, change the 2D spread H_K assumes, and "
                   "re-sample with the sample's own checkpoint: before (left) and after (right).")
directory = common.sidebar_results_dir()
JOINTS = list(H36M17.joint_names)

sources = ["a results file"]
own = st.session_state.get("own_result")
if own and Path(own).exists():
    sources.append("the own-input page's last result")
source = st.sidebar.radio("Sample from", sources, key="lab_source")
if source == sources[0]:
    files = common.require_results(directory)
    name = st.sidebar.selectbox("Results file", list(files), key="lab_file")
    path = files[name]
    ds = common.open_results(path)
else:
    path = Path(own)
    ds = common.open_results(path)
index = common.pick_sample(ds, key="lab_sample")

try:
    sample = lab.open_sample(path, index)
except lab.LabError as exc:
    st.error(f"Cannot rerun this sample: {exc}")
    st.stop()
try:
    model = common.load_model_cached(sample.checkpoint)
except Exception as exc:  # an unreadable checkpoint is a message, not a traceback
    st.error(f"Could not load checkpoint `{sample.checkpoint}`: {type(exc).__name__}: {exc}")
    st.stop()

c1, c2, c3, c4 = st.columns(4)
hide = c1.multiselect("Hide joints", JOINTS[1:], key="lab_hide")
std_px = c2.number_input("2D spread (px)", 0.5, 200.0, lab.DEFAULT_STD_PX, step=0.5, key="lab_std")
n_hyp = c3.slider("N hypotheses", 1, 50, 20, key="lab_n")
n_steps = c4.slider("K steps", 1, 20, 5, key="lab_k")
c5, c6, c7 = st.columns([1, 1, 2])
seed = c5.number_input("Seed", 0, 10_000, 0, key="lab_seed")
# the sampling setting's knobs that change after training (diffpose_viz/diffusion/setting.py)
eta = c5.number_input("eta (0: deterministic DDIM)", 0.0, 1.0, 0.0, step=0.1, key="lab_eta")
start_t = c5.number_input("Start step t (-1: the model's)", -1, 1000, -1, key="lab_start_t")
setting = SamplingSetting(eta=float(eta), start_t=None if start_t < 0 else int(start_t))
moved = c6.multiselect("Move joints", JOINTS, key="lab_move")
offsets = {}
if moved:
    cols = c7.columns(2)
    for j in moved:
        dx = cols[0].number_input(f"{j} dx (px)", -500.0, 500.0, 0.0, step=5.0, key=f"lab_dx_{j}")
        dy = cols[1].number_input(f"{j} dy (px)", -500.0, 500.0, 0.0, step=5.0, key=f"lab_dy_{j}")
        if dx or dy:
            offsets[j] = (dx, dy)

edited = lab.edit_2d(sample, hide=hide, offsets=offsets, std_px=std_px)
try:
    with st.spinner("Re-sampling…"):
        before = lab.rerun(model, lab.edit_2d(sample, std_px=std_px), n_hyp, n_steps, seed=int(seed), sampling=setting)
        after = lab.rerun(model, edited, n_hyp, n_steps, seed=int(seed), sampling=setting)
except Exception as exc:  # a sampling problem is a message, not a traceback
    st.error(f"Re-sampling failed: {type(exc).__name__}: {exc}")
    st.stop()
ood_radius_label = "90 %"
st.caption(f"{sample.label} · `{model.name}` from `{sample.checkpoint.name}` · {after.note} · "
           f"{after.seconds * 1000:.0f} ms per run")
for res, tag in ((before, "the 2D as in the file"), (after, "the edited 2D")):
    if res.outside_training:
        st.warning(f"Out of domain: {tag} is **outside what this model was trained on** (score "
                   f"{res.ood_score:.1f} above the validation threshold); its error bars widen with the score, "
                   f"mean {ood_radius_label} radius {np.nanmean(res.radius_mm[1:]):.0f} mm.")
if after.ood_score is None:
    st.caption("No out-of-domain score: the results' metrics JSON holds no `uncertainty` → `ood` model.")
else:
    st.caption(f"Out-of-domain score {before.ood_score:.2f} (file) → {after.ood_score:.2f} (edited); "
               f"mean calibrated {ood_radius_label} radius {np.nanmean(before.radius_mm[1:]):.0f} → "
               f"{np.nanmean(after.radius_mm[1:]):.0f} mm.")
st.session_state["lab_last"] = {"hidden": list(edited.hidden), "spread_before": before.spread_mm.tolist(),
                                "spread_after": after.spread_mm.tolist()}

table = lab.compare(before, after)
for j in edited.hidden:
    row = table.set_index("joint").loc[j]
    st.metric(f"spread of {j}", f"{row['spread after']:.1f} mm", f"{row['spread change']:+.1f} mm",
              delta_color="off")
left, right = st.columns(2)
for col, res, tag in ((left, before, "before"), (right, after, "after")):
    col.subheader("Before (2D as in the file)" if tag == "before" else "After (edited 2D)")
    s = res.sample
    if res.gmm is not None:
        common.plot(F.gmm_figure(np.nan_to_num(s.keypoints), res.gmm["weight"], res.gmm["mean"], res.gmm["var"],
                                 confidence=s.confidence, title=f"H_K {tag}", height=420), key=f"lab_gmm_{tag}")
    else:
        col.info(res.note)
    if res.trajectory is not None:
        common.plot(F.trajectory_figure(res.trajectory, x0_estimate=res.x0_estimate, gt=s.gt,
                                        timesteps=res.timesteps, title=f"reverse diffusion {tag}", height=480),
                    key=f"lab_traj_{tag}")
    common.plot(F.skeleton_figure(res.pred, gt=s.gt, errors_mm=res.err_mm, hypotheses=res.hypotheses[:20],
                                  title=f"hypotheses {tag}", height=440), key=f"lab_skel_{tag}")

bars = go.Figure([go.Bar(x=JOINTS, y=before.spread_mm, name="spread before"),
                  go.Bar(x=JOINTS, y=after.spread_mm, name="spread after")])
if before.err_mm is not None:
    bars.add_trace(go.Bar(x=JOINTS, y=before.err_mm, name="error before", visible="legendonly"))
    bars.add_trace(go.Bar(x=JOINTS, y=after.err_mm, name="error after", visible="legendonly"))
bars.update_layout(barmode="group", height=380, yaxis_title="mm",
                   title=dict(text="per-joint spread of the hypotheses (and error vs ground truth)"))
common.plot(bars, key="lab_bars")
st.dataframe(table, hide_index=True, key="lab_table")
