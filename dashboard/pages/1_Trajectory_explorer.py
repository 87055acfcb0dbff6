"""Reverse diffusion step by step: h_k and the estimate of h_0 for every hypothesis."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402

from diffpose_viz import figures as F  # noqa: E402

st = common.st
files = common.results_page("Trajectory explorer", "Left: the noisy state h_k of every hypothesis; right: the model's "
                            "estimate of h_0 at that step (joints coloured by error). Use ▶ or the slider under the "
                            "plot.")
with_traj = {}
for name, path in files.items():
    if F.steps_available(common.open_results(path)):
        with_traj[name] = path
if not with_traj:
    st.warning("None of these results files recorded trajectories. Re-run `diffpose-viz evaluate` with "
               "trajectory recording on (see docs/RESULTS_SCHEMA.md: `trajectory`, `x0_estimate`).")
    st.stop()
name, ds = common.pick_model(with_traj, key="traj_model")
i = common.pick_sample(ds, key="traj_sample")
n_hyp = ds.sizes["hypothesis"]
shown = st.slider("Hypotheses shown", 1, n_hyp, min(n_hyp, 5), key="traj_hyps") if n_hyp > 1 else 1

c1, c2, c3 = st.columns(3)
c1.metric("MPJPE of this sample", f"{float(ds['err'].values[i].mean()):.1f} mm" if "err" in ds else "n/a")
c2.metric("recorded steps", ds.sizes["step"])
c3.metric("hypotheses", n_hyp)
common.plot(F.trajectory_from_results(ds, i, max_hypotheses=shown), key="traj_fig")
if "err_step" in ds:
    st.subheader("All samples")
    common.plot(F.error_vs_steps_figure(ds["err_step"].values, ds["timestep"].values
                                        if "timestep" in ds.coords else None), key="traj_steps")
