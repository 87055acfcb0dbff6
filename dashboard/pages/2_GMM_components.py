"""The pose-specific initial distribution H_K over the 2D input."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402
import pandas as pd  # noqa: E402

from diffpose_viz import figures as F  # noqa: E402
from diffpose_viz.skeleton import H36M17  # noqa: E402

st = common.st
files = common.results_page("GMM components", "Each joint's mixture: ellipses at ±2σ on the image plane (opacity = "
                            "kernel weight), depth bands on the right, and samples drawn from H_K.")
with_gmm = {n: p for n, p in files.items() if "gmm_weight" in common.open_results(p)}
if not with_gmm:
    st.warning("None of these results files stores the fitted H_K (`gmm_weight`, `gmm_mean`, `gmm_var`).")
    st.stop()
name, ds = common.pick_model(with_gmm, key="gmm_model")
i = common.pick_sample(ds, key="gmm_sample")
names = list(H36M17.joint_names)
chosen = st.multiselect("Joints", names, default=names, key="gmm_joints")
n_samples = st.slider("Samples per joint", 0, 200, 40, step=10, key="gmm_nsamples")
if not chosen:
    st.info("Pick at least one joint.")
    st.stop()
joints = [names.index(j) for j in chosen]
try:
    fig = F.gmm_from_results(ds, i, joints=joints, n_samples=n_samples)
except ValueError as exc:  # e.g. too few visible joints to place H_K on the image
    st.error(f"Cannot draw this sample: {exc}")
    st.stop()
common.plot(fig, key="gmm_fig")
w, mu, var = ds["gmm_weight"].values[i], ds["gmm_mean"].values[i], ds["gmm_var"].values[i]
table = pd.DataFrame({
    "joint": names,
    "H_K std (mm)": (F.mixture_std(w, mu, var) * 1000).round(1),
    "weights": [", ".join(f"{v:.2f}" for v in row) for row in w],
    "occluded": ds["occluded"].values[i].astype(bool) if "occluded" in ds else False,
}).iloc[joints]
st.dataframe(table, hide_index=True)
