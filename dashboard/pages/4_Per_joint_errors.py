"""Where the error comes from: joints, actions, uncertainty, steps and hypotheses."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402

from diffpose_viz import figures as F  # noqa: E402

st = common.st
files = common.results_page("Per-joint errors", "MPJPE per joint and per action, whether the hypotheses' spread "
                            "predicts the error, and how error falls with reverse steps and hypotheses.")
ds = common.pick_model_with_gt(files, "joint_model", ": nothing to break down.")
err = ds["err"].values
split = st.checkbox("Split visible / occluded", value=True, key="joint_split") if "occluded" in ds else False
c1, c2, c3 = st.columns(3)
c1.metric("MPJPE (P-Agg)", f"{err.mean():.1f} mm")
c2.metric("samples", ds.sizes["sample"])
c3.metric("hypotheses", ds.sizes.get("hypothesis", 1))
common.plot(F.per_joint_error_figure(err, occluded=ds["occluded"].values if split else None), key="joint_fig")
group = ds["action_group"].values if "action_group" in ds.coords else ds["action"].values
common.plot(F.per_action_error_figure(err, group), key="action_fig")
if "hypotheses" in ds and ds.sizes.get("hypothesis", 1) > 1:
    spread = F.hypothesis_spread_mm(ds["hypotheses"].values)
    st.subheader("Is the uncertainty informative?")
    common.plot(F.spread_vs_error_figure(spread, err), key="spread_fig")
    if "gt" in ds:
        common.plot(F.error_vs_hypotheses_figure(F.error_vs_hypotheses(ds["hypotheses"].values, ds["gt"].values)),
                    key="nhyp_fig")
else:
    st.info("One hypothesis per sample: no spread or hypothesis-count analysis for this model.")
if "err_step" in ds and ds.sizes.get("step", 0) > 1:
    common.plot(F.error_vs_steps_figure(ds["err_step"].values,
                                        ds["timestep"].values if "timestep" in ds.coords else None), key="step_fig")
