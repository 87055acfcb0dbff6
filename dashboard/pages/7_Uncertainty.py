"""Can the hypotheses' spread be trusted as an error bar? Coverage, calibration, correlation and occlusion."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402
import pandas as pd  # noqa: E402

from diffpose_viz import uncertainty as U  # noqa: E402
from diffpose_viz.figures import uncertainty as FU  # noqa: E402

st = common.st
files = common.results_page("Uncertainty", "Is the spread of the hypotheses a usable error bar? A ball around the "
                            "P-Agg pose, its radius scaled from the spread, should hold the true joint as often as "
                            "its nominal level says. Pelvis excluded (it is the origin).")

NO_CALIBRATION = ("Raw coverage only: calibration needs validation residuals. `diffpose-viz evaluate` fits it on "
                  "the validation split (`diffpose_viz.uncertainty.fit_calibration`) and stores it in "
                  "`<results>.metrics.json` under `uncertainty` → `calibration`; this page then shows calibrated "
                  "coverage next to the raw one.")


def stored_calibration(path: Path, fingerprint: str | None = None) -> tuple[str | None, str | None]:
    """(calibration as JSON text, problem) from the results' metrics JSON; (None, None) when there is none. A
    metrics JSON made by another checkpoint than the results file (`fingerprint`, its checkpoint_fingerprint
    attribute) is not used: its calibration belongs to another model."""
    metrics_path = path.with_suffix(".metrics.json")
    if not metrics_path.exists():
        return None, None
    try:
        metrics = json.loads(metrics_path.read_text())
        made_by = metrics.get("checkpoint_fingerprint") if isinstance(metrics, dict) else None
        if fingerprint and made_by and made_by != fingerprint:
            return None, (f"`{metrics_path.name}` was made by the checkpoint with fingerprint {made_by[:16]}, "
                          f"`{path.name}` by {fingerprint[:16]}: its calibration belongs to another model; showing "
                          "raw coverage.")
        cal = U.calibration_from_metrics(metrics)
    except (OSError, ValueError) as exc:
        return None, f"`{metrics_path.name}`: calibration not usable ({exc}); showing raw coverage."
    return (None if cal is None else json.dumps(cal.to_dict())), None


@st.cache_data(show_spinner="Measuring spread and coverage…", max_entries=32)
def analyse(path: str, mtime: float, calibration_json: str | None, _ds) -> dict:
    """The JSON summary of one results file; cached per (file, modification time, stored calibration)."""
    cal = U.Calibration.from_dict(json.loads(calibration_json)) if calibration_json else None
    return U.uncertainty_summary(_ds, cal)


def pct(v) -> float | None:
    return None if v is None else round(100.0 * v, 1)


multi, single, no_gt = {}, {}, []
for name, path in files.items():
    ds = common.open_results(path)
    if "err" not in ds and "gt" not in ds:
        no_gt.append(name)
        continue
    cal_json, problem = stored_calibration(path, ds.attrs.get("checkpoint_fingerprint"))
    if problem:
        st.warning(problem)
    summary = analyse(str(path), path.stat().st_mtime, cal_json, ds)
    (multi if summary["n_hypotheses"] > 1 else single)[name] = summary

if no_gt:
    st.info(f"No ground truth, no coverage: {', '.join(f'`{n}`' for n in no_gt)}.")

if multi:
    rows = []
    for name, s in multi.items():
        cal = s.get("calibration")
        rows.append({
            "model": name, "hypotheses": s["n_hypotheses"], "mean spread (mm)": round(s["mean_spread_mm"], 1),
            "mean error (mm)": round(s["mean_error_mm"], 1),
            "error ≤ 1× spread (%)": pct(s["frac_within_1x_spread"]),
            "error ≤ 2× spread (%)": pct(s["frac_within_2x_spread"]),
            "Spearman": s["correlation"]["spearman"], "Pearson": s["correlation"]["pearson"],
            "raw coverage at 90 % (%)": pct(s["coverage_raw"].get("90")),
            "calibrated coverage at 90 % (%)": pct((s.get("coverage_calibrated") or {}).get("90")),
            "calibration": f"{cal['method']} on {cal['fitted_on']}" if cal else "none",
        })
    st.subheader("Spread against error")
    st.dataframe(pd.DataFrame(rows).set_index("model").round(2), key="unc_overview")
    common.plot(FU.reliability_figure({n: s["coverage_raw"] for n, s in multi.items()},
                                      {n: s["coverage_calibrated"] for n, s in multi.items()
                                       if s.get("coverage_calibrated")}), key="unc_reliability")
    if not any(s.get("calibration") for s in multi.values()):
        st.info(NO_CALIBRATION)
    st.caption("Raw interval: the truth taken as one more draw from the hypotheses' own isotropic Gaussian, radius "
               "= spread · √((N+1)/(N−1) · F⁻¹(p; 3, 3(N−1))) (the chi-3 ball for large N). Calibrated: one factor "
               "on the spread per joint and occlusion state, fitted on validation scores error / spread.")
    for tab, (name, s) in zip(st.tabs(list(multi)), multi.items()):
        with tab:
            c1, c2, c3, c4 = st.columns(4)
            c1.metric("mean spread (RMS)", f"{s['mean_spread_mm']:.1f} mm")
            c2.metric("mean error", f"{s['mean_error_mm']:.1f} mm")
            c3.metric("error ≤ 2× spread", f"{100 * s['frac_within_2x_spread']:.0f} %")
            rho = s["correlation"]["spearman"]
            c4.metric("Spearman ρ", "n/a" if rho is None else f"{rho:.2f}")
            st.markdown("**Coverage (%)** — how often the true joint lies inside the interval")
            st.dataframe(FU.coverage_table(s).round(1), key=f"unc_cov_{name}")
            if s.get("calibration_warning"):
                st.warning(s["calibration_warning"])
            occ = s["occlusion"]
            if occ["occluded"]["n"] and occ["occluded"]["coverage_raw"]:
                drop = {k: 100 * (occ["occluded"]["coverage_raw"][k] - occ["visible"]["coverage_raw"][k])
                        for k in ("50", "90") if occ["visible"]["coverage_raw"]}
                if drop:
                    st.caption(f"On occluded joints ({occ['occluded']['n']} of "
                               f"{occ['occluded']['n'] + occ['visible']['n']}) raw coverage changes by "
                               f"{drop['50']:+.0f} points at 50 % and {drop['90']:+.0f} points at 90 % "
                               "against visible joints.")
            else:
                st.caption("No occluded joints in these results.")
            common.plot(FU.spread_error_bins_figure(
                {"all joints": s["binned"], "visible": occ["visible"]["binned"],
                 "occluded": occ["occluded"]["binned"]}), key=f"unc_bins_{name}")
            common.plot(FU.per_joint_correlation_figure(
                s["correlation"]["per_joint"],
                (occ["occluded"]["correlation"] or {}).get("per_joint")), key=f"unc_corr_{name}")
            common.plot(FU.occlusion_uncertainty_figure(occ), key=f"unc_occ_{name}")
            per_action = s["correlation"]["per_action"]
            if per_action:
                st.markdown("**Correlation of spread and error per action**")
                st.dataframe(pd.DataFrame(per_action).T.round(2), key=f"unc_actions_{name}")
elif single:
    st.info("No model in this folder has more than one hypothesis: there is no spread to judge.")

for name, s in single.items():
    st.info(f"`{name}` is deterministic (one hypothesis per sample): no spread, so no raw interval. A conformal "
            "radius per joint on the error alone, fitted on validation, is still a valid error bar"
            + (" — shown below." if s.get("coverage_calibrated") else "; none is stored for it yet."))
    if s.get("coverage_calibrated"):
        st.markdown(f"**`{name}`: coverage of the per-joint conformal radius (%)**")
        st.dataframe(FU.coverage_table(s).round(1), key=f"unc_cov_{name}")
        cal = U.Calibration.from_dict(s["calibration"])
        if 0.9 in cal.levels and cal.score == "absolute":
            radius = cal.factor(range(len(cal.joint_names)), False, 0.9)
            st.dataframe(pd.DataFrame({"joint": cal.joint_names, "radius at 90 % (mm)": radius}).round(1),
                         hide_index=True, key=f"unc_radius_{name}")

st.subheader("Out of domain: does the model know when an input is unlike its training?")
ood_rows, ood_scores, threshold = {}, {}, None
for name, path in files.items():
    ds = common.open_results(path)
    ood_rows[name] = FU.ood_row(ds)
    if "ood_score" in ds:
        ood_scores[name] = ds["ood_score"].values
        threshold = ds.attrs.get("ood_threshold", threshold)
        share = float(ds["ood_flag"].values.astype(bool).mean())
        if share > 0.1:
            st.warning(f"`{name}`: {100 * share:.0f} % of the samples are **outside what this model was trained on** "
                       "(score above the 99th percentile of its validation rows): expect larger errors; the "
                       "score-conditional radius widens for them, the unconditional calibration does not.")
if ood_scores:
    st.dataframe(pd.DataFrame(ood_rows).T, key="unc_ood")
    common.plot(FU.ood_score_figure(ood_scores, threshold), key="unc_ood_hist")
else:
    st.info(f"Out of domain: {FU.NO_OOD}; the error bars above are then the unconditional ones.")
st.caption("Score: mean robust z against the validation rows of the 2D pose's distance to the training 2D, the "
           "reprojection residual of the prediction and the hypotheses' spread against H_K's (no ground truth). "
           "Radius: normalised conformal ball around the P-Agg pose, fitted on validation (docs/RESULTS_SCHEMA.md).")
