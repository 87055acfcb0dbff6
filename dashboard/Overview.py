"""DiffPose analysis dashboard: `streamlit run dashboard/Overview.py` (or `diffpose-viz dashboard`).

This is the overview page; the others live in dashboard/pages/. It opens on the results of `make demo`
(results/demo/); the sidebar (or $DIFFPOSE_VIZ_RESULTS) points it at any folder of results files written by
`diffpose-viz evaluate`.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

common.page_header("Overview", "Explore reverse diffusion, the pose-specific GMM initialization, "
                   "failure cases and baselines. Pick a page on the left.")
directory = common.sidebar_results_dir()
files = common.require_results(directory)

rows = []
for name, path in files.items():
    ds = common.open_results(path)
    row = {"file": path.name, "model": ds.attrs.get("model", name), "samples": ds.sizes["sample"],
           "hypotheses": ds.sizes.get("hypothesis", 1), "steps recorded": ds.sizes.get("step", 0),
           "dataset": ds.attrs.get("dataset", "?")}
    if "err" in ds:
        row["MPJPE (mm)"] = round(float(ds["err"].mean()), 1)
    rows.append(row)
st = common.st
st.subheader(f"Results in `{directory}`")
st.dataframe(rows, hide_index=True)
st.markdown(
    "- **Trajectory explorer**: every hypothesis moving from H_K to the final pose, step by step.\n"
    "- **GMM components**: the pose-specific initial distribution over the 2D input.\n"
    "- **Failure cases**: worst samples by action, joint, occlusion and model, in 3D.\n"
    "- **Per-joint errors**: per joint and action, spread vs error, steps and hypotheses.\n"
    "- **Model comparison**: DiffPose against the baselines in the same folder.\n"
    "- **Your own input**: upload 2D keypoints and lift them.\n"
    "- **Uncertainty**: is the hypotheses' spread a usable error bar; out-of-domain scores.\n"
    "- **What-if lab**: hide a joint or move the 2D, re-sample live.\n"
    "- **Timeline**: one sequence over time (video, 2D, 3D hypotheses, radius, strips), A/B, exports.")
st.caption("Errors are MPJPE in millimetres, root-relative. J-Best and P-Best use ground truth (oracle).")
