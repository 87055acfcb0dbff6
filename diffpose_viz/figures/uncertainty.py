"""Is the hypotheses' spread a usable error bar? Figures over the numbers of `diffpose_viz.uncertainty`.

The builders take the plain dicts that `uncertainty.uncertainty_summary` returns (and the metrics JSON stores), so a
figure can be drawn from a results file or from its `.metrics.json` alone. Coverage is shown in percent.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from diffpose_viz.uncertainty import TABLE_LEVELS, level_key, parse_level

STATE_COLORS = {"all joints": "#2ca02c", "visible": "#1f77b4", "occluded": "#d62728"}
RAW_DASH = "dash"  # raw (uncalibrated) curves are dashed, calibrated ones solid


def _curve(cov: Mapping | None) -> tuple[np.ndarray, np.ndarray]:
    """{level or level key: coverage} -> (nominal %, empirical %) sorted by level, None values dropped."""
    if not cov:
        return np.array([]), np.array([])
    pts = sorted((parse_level(k), v) for k, v in cov.items() if v is not None)
    return np.array([100.0 * p for p, _ in pts]), np.array([100.0 * v for _, v in pts])


def _diagonal(fig: go.Figure, **where) -> None:
    fig.add_trace(go.Scatter(x=[0, 100], y=[0, 100], mode="lines", name="ideal (empirical = nominal)",
                             line=dict(color="grey", dash="dot"), hoverinfo="skip", showlegend=not where), **where)


def spread_error_bins_figure(series: Mapping[str, Mapping], title: str = "error against spread (binned by spread)",
                             height: int = 420) -> go.Figure:
    """Mean error per spread bin (bars = 25-75th percentile) for each series, e.g. all / visible / occluded
    joints, with the ideal line err = c * spread (c from the hypotheses' own Gaussian, `ideal_slope`).

    Each value of `series` is an `uncertainty.binned_spread_error` dict. Points above the line: the spread
    understates the error (overconfident); below: it overstates it.
    """
    fig = go.Figure()
    top, ideal = 1.0, None
    for i, (name, b) in enumerate(series.items()):
        if not b or not b.get("spread_mm"):
            continue
        x, y = np.asarray(b["spread_mm"]), np.asarray(b["error_mm"])
        lo, hi = np.asarray(b["error_q25_mm"]), np.asarray(b["error_q75_mm"])
        ideal = b.get("ideal_slope") if ideal is None else ideal
        fit = b.get("fitted_slope")
        label = name if fit is None else f"{name} (fit: err = {fit:.2f} x spread)"
        color = STATE_COLORS.get(name, qualitative.Plotly[i % len(qualitative.Plotly)])
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=label, line=dict(color=color),
                                 error_y=dict(type="data", array=hi - y, arrayminus=y - lo, visible=True),
                                 customdata=np.asarray(b["count"]),
                                 hovertemplate="spread %{x:.1f} mm: mean error %{y:.1f} mm (n=%{customdata})"))
        top = max(top, float(x.max()))
    if ideal is not None:
        fig.add_trace(go.Scatter(x=[0, top * 1.05], y=[0, ideal * top * 1.05], mode="lines",
                                 name=f"ideal: err = {ideal:.2f} x spread", line=dict(color="grey", dash="dash")))
    fig.update_layout(title=dict(text=title), height=height, xaxis_title="hypothesis spread, RMS (mm)",
                      yaxis_title="error of P-Agg (mm)", xaxis_rangemode="tozero", yaxis_rangemode="tozero",
                      legend=dict(orientation="h", y=-0.2), margin=dict(l=10, r=10, t=50, b=10))
    fig.layout.meta = dict(ideal_slope=ideal)
    return fig


def reliability_figure(raw: Mapping[str, Mapping], calibrated: Mapping[str, Mapping] | None = None,
                       title: str = "reliability: nominal vs empirical coverage", height: int = 440) -> go.Figure:
    """Empirical coverage of the intervals against their nominal level, one colour per model: raw (from the
    spread alone, dashed) and calibrated on validation (solid). On the diagonal the error bars mean what they say;
    below it they are too narrow."""
    fig = go.Figure()
    _diagonal(fig)
    models = list(dict.fromkeys([*raw, *(calibrated or {})]))
    for i, model in enumerate(models):
        color = qualitative.Plotly[i % len(qualitative.Plotly)]
        for kind, curves, dash in (("raw", raw, RAW_DASH), ("calibrated", calibrated or {}, "solid")):
            x, y = _curve(curves.get(model))
            if x.size:
                fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=f"{model} ({kind})",
                                         line=dict(color=color, dash=dash), legendgroup=model,
                                         hovertemplate="nominal %{x:.0f} %: empirical %{y:.1f} %"))
    fig.update_layout(title=dict(text=title), height=height, xaxis_title="nominal coverage (%)",
                      yaxis_title="empirical coverage (%)", xaxis_range=[0, 100], yaxis_range=[0, 100],
                      margin=dict(l=10, r=10, t=50, b=10))
    return fig


def per_joint_correlation_figure(per_joint: Mapping[str, Mapping], occluded: Mapping[str, Mapping] | None = None,
                                 title: str = "does a wider spread mean a larger error? (per joint)",
                                 height: int = 400) -> go.Figure:
    """Spearman and Pearson correlation of spread and error per joint (the summary's correlation["per_joint"]),
    and Spearman on occluded joints only when given. Missing values (too few joints) are left out."""
    names = list(per_joint)
    bars = [("Spearman, all", per_joint, "spearman", "#2ca02c"), ("Pearson, all", per_joint, "pearson", "#98df8a")]
    if occluded:
        bars.append(("Spearman, occluded", occluded, "spearman", STATE_COLORS["occluded"]))
    fig = go.Figure()
    for label, source, key, color in bars:
        y = [np.nan if (source.get(n) or {}).get(key) is None else source[n][key] for n in names]
        n = [(source.get(j) or {}).get("n", 0) for j in names]
        fig.add_trace(go.Bar(x=names, y=y, name=label, marker_color=color, customdata=n,
                             hovertemplate="%{x}: %{y:.2f} (n=%{customdata})"))
    fig.update_layout(barmode="group", title=dict(text=title), height=height, yaxis_title="correlation",
                      yaxis_range=[-1, 1], xaxis_tickangle=-45, legend=dict(orientation="h", y=1.12),
                      margin=dict(l=10, r=10, t=70, b=10))
    return fig


def occlusion_uncertainty_figure(occlusion: Mapping[str, Mapping], title: str = "visible vs occluded joints",
                                 height: int = 420) -> go.Figure:
    """Left: mean spread and mean error for visible and occluded joints. Right: coverage against the nominal level
    per state, raw (dashed) and calibrated (solid, when the summary has it). `occlusion` is the summary's
    "occlusion" entry."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.4, 0.6], horizontal_spacing=0.1,
                        subplot_titles=("mean spread and error (mm)", "coverage (%)"))
    states = [s for s in ("visible", "occluded") if (occlusion.get(s) or {}).get("n")]
    for metric, key, pattern in (("spread", "mean_spread_mm", ""), ("error", "mean_error_mm", "/")):
        y = [occlusion[s].get(key) for s in states]
        fig.add_trace(go.Bar(x=states, y=[np.nan if v is None else v for v in y], name=f"mean {metric}",
                             marker=dict(color=[STATE_COLORS[s] for s in states], pattern=dict(shape=pattern)),
                             customdata=[occlusion[s]["n"] for s in states],
                             hovertemplate=f"%{{x}}: mean {metric} %{{y:.1f}} mm (n=%{{customdata}})"), row=1, col=1)
    _diagonal(fig, row=1, col=2)
    for s in states:
        for kind, key, dash in (("raw", "coverage_raw", RAW_DASH), ("calibrated", "coverage_calibrated", "solid")):
            x, y = _curve(occlusion[s].get(key))
            if x.size:
                fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=f"{s} ({kind})",
                                         line=dict(color=STATE_COLORS[s], dash=dash),
                                         hovertemplate="nominal %{x:.0f} %: empirical %{y:.1f} %"), row=1, col=2)
    fig.update_xaxes(title_text="nominal (%)", range=[0, 100], row=1, col=2)
    fig.update_yaxes(range=[0, 100], row=1, col=2)
    fig.update_layout(barmode="group", title=dict(text=title), height=height, legend=dict(orientation="h", y=-0.2),
                      margin=dict(l=10, r=10, t=70, b=10))
    return fig


def coverage_table(summary: Mapping, levels: Sequence[float] = TABLE_LEVELS) -> pd.DataFrame:
    """Coverage (%) at the given nominal levels: raw and, when present, calibrated, on all, visible and occluded
    joints. One row per level; columns only for what the summary holds."""
    occ = summary.get("occlusion") or {}
    sources = [("raw, all joints", summary.get("coverage_raw")),
               ("raw, visible", (occ.get("visible") or {}).get("coverage_raw")),
               ("raw, occluded", (occ.get("occluded") or {}).get("coverage_raw")),
               ("calibrated, all joints", summary.get("coverage_calibrated")),
               ("calibrated, visible", (occ.get("visible") or {}).get("coverage_calibrated")),
               ("calibrated, occluded", (occ.get("occluded") or {}).get("coverage_calibrated"))]
    rows = {}
    for p in levels:
        key = level_key(p)
        row = {"nominal (%)": 100.0 * p}
        for name, cov in sources:
            if cov:
                v = cov.get(key)
                row[name] = np.nan if v is None else 100.0 * v
        rows[f"{key} %"] = row
    return pd.DataFrame.from_dict(rows, orient="index")


# --------------------------------------------------------------------------- out of domain (diffpose_viz.ood)

OOD_VARIABLES = ("ood_score", "ood_flag", "radius")
NO_OOD = ("no out-of-domain score in this file (written by `diffpose-viz evaluate`, or by `sample`/`wild "
          "--calibration <metrics.json>`)")


def ood_row(ds) -> dict:
    """One table row about a results Dataset's out-of-domain fields; `note` says what is missing."""
    missing = [v for v in OOD_VARIABLES if v not in ds]
    if missing:
        return {"samples": int(ds.sizes["sample"]), "note": NO_OOD + f": lacks {', '.join(missing)}"}
    score, flag = ds["ood_score"].values, ds["ood_flag"].values.astype(bool)
    radius = ds["radius"].values[:, 1:]
    row = {"samples": int(ds.sizes["sample"]), "outside training (%)": round(100.0 * float(flag.mean()), 1),
           "median score": float(np.nanmedian(score)), "threshold": float(ds.attrs.get("ood_threshold", np.nan)),
           f"mean radius at {100 * float(ds['radius'].attrs.get('level', 0.9)):.0f} % (mm)":
               float(radius[np.isfinite(radius)].mean()) if np.isfinite(radius).any() else None, "note": ""}
    if "err" in ds:
        err = ds["err"].values[:, 1:]
        for name, rows in (("inside", ~flag), ("outside", flag)):
            covered = err[rows] <= ds["radius"].values[:, 1:][rows]
            row[f"coverage, {name} (%)"] = round(100.0 * float(covered.mean()), 1) if rows.any() else None
    return row


def ood_score_figure(scores: Mapping[str, np.ndarray], threshold: float | None = None,
                     title: str = "out-of-domain score per sample", height: int = 360) -> go.Figure:
    """Histogram of the score per results file, with the flag threshold (validation 99th percentile)."""
    fig = go.Figure()
    for i, (name, s) in enumerate(scores.items()):
        s = np.asarray(s, np.float64)
        fig.add_trace(go.Histogram(x=s[np.isfinite(s)], name=name, opacity=0.6, histnorm="probability",
                                   marker_color=qualitative.Plotly[i % len(qualitative.Plotly)]))
    if threshold is not None and np.isfinite(threshold):
        fig.add_vline(x=threshold, line_dash="dash", line_color="black",
                      annotation_text="outside what the model was trained on →")
    fig.update_layout(barmode="overlay", title=title, height=height, xaxis_title="score (robust z vs validation)",
                      yaxis_title="fraction of samples")
    return fig
