"""Can the hypotheses' spread be trusted as an error bar?

Everything here works on plain arrays: hypotheses (S,N,17,3), pred (S,17,3), gt (S,17,3) in metres; spreads,
errors and radii come out in millimetres. `uncertainty_summary` reads a results Dataset
(docs/RESULTS_SCHEMA.md) and returns plain JSON numbers (documented there under "Uncertainty (metrics JSON)").

Conventions
- spread of a joint = RMS distance of the N hypotheses to their mean (mm). With an isotropic Gaussian of
  per-axis std sigma, E[spread^2] = 3 sigma^2 (N-1)/N, so sigma ~ spread / sqrt(3) for large N.
  (`kind="mean"` gives the mean distance instead, the number the "Per-joint errors" page shows.)
- error of a joint = distance of the aggregate pose `pred` (P-Agg, the mean of the hypotheses) to gt, root-relative.
- the interval of a joint at level p is a ball around `pred` with radius r_p; coverage = fraction of joints with
  error <= r_p. The pelvis (joint 0) is left out of every statistic: it is the origin of the root-relative pose,
  so its spread and error are both 0 by construction and would count as covered for free.
- levels are fractions (0.9); JSON keys are percentages as strings ("90", see `level_key`).

Raw intervals (no calibration): the truth is treated as one more draw from the hypotheses' own isotropic Gaussian.
- `n_hypotheses=None` (the large-N form): sigma = spread/sqrt(3); |gt - pred| / sigma follows the chi distribution
  with 3 degrees of freedom, so r_p = spread / sqrt(3) * chi3.ppf(p).
- `n_hypotheses=N` (exact for finite N, the default of `uncertainty_summary`): pred is the mean of N draws, so
  gt - pred ~ N(0, sigma^2 (1 + 1/N) I3) and |gt - pred|^2 / (sigma^2 (1 + 1/N)) ~ chi2_3; N spread^2 / sigma^2 ~
  chi2_{3(N-1)}, independent of it (mean and scatter of a Gaussian sample are independent). Their ratio, each over
  its degrees of freedom, is F(3, 3(N-1)) = |gt - pred|^2 (N-1) / (spread^2 (N+1)), hence
  r_p = spread * sqrt((N+1)/(N-1) * F.ppf(p; 3, 3(N-1))). It tends to the chi form as N grows; with N = 10 the
  chi form covers only 81 % at a nominal 90 % even when the hypotheses are perfectly calibrated.

Calibration (fit on VALIDATION data only, see `fit_calibration`): a nonconformity score per joint,
error / max(spread, floor) ("scaled") or, for deterministic models (N = 1, no spread), the error itself in mm
("absolute"), and per (joint, occlusion state) one number per level: the empirical p-quantile of the scores
(method "quantile") or the split-conformal quantile, the ceil((n+1)p)-th smallest of n scores (method
"conformal"). The radius is that number times max(spread, floor), or the number itself for "absolute".
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import special, stats

from diffpose_viz.metrics import mpjpe_per_joint
from diffpose_viz.skeleton import H36M17

#: Nominal levels of the reliability diagram.
DEFAULT_LEVELS: tuple[float, ...] = (0.5, 0.68, 0.8, 0.9, 0.95)
#: Levels of the dashboard's coverage table.
TABLE_LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95)
#: Spreads below this (mm) count as this in the score error / spread. The root's spread is exactly 0 and a
#: collapsed sampler gives spreads of micrometres; one millimetre is below any meaningful pose precision (marker
#: mocap itself is good to about a millimetre), so real spreads (tens of mm) are untouched while the score stays
#: finite. The same floor is used when fitting and when applying a calibration, so the score is one fixed function
#: of (spread, error) and the conformal guarantee is unaffected.
SPREAD_FLOOR_MM: float = 1.0
#: Fewer validation scores than this in a (joint, occlusion state) cell: pool (see `fit_calibration`).
MIN_CELL: int = 30
ROOT = 0
STATES: tuple[str, ...] = ("visible", "occluded")
#: Calibration cell sources, in fallback order.
SOURCES: tuple[str, ...] = ("joint and state", "all joints, same state", "joint, both states", "all joints")
SPREAD_DEFINITION = "RMS distance of the hypotheses to their mean (mm)"


# --------------------------------------------------------------------------- small helpers


def level_key(level: float) -> str:
    """0.9 -> "90", 0.68 -> "68", 0.975 -> "97.5": the JSON key of a nominal level."""
    return f"{round(float(level) * 100.0, 6):g}"


def parse_level(key: str | float) -> float:
    """Inverse of `level_key`: values >= 1 are percentages ("90", 90), values in (0, 1) fractions (0.9)."""
    value = float(key)
    value = value / 100.0 if value >= 1.0 else value
    if not 0.0 < value < 1.0:
        raise ValueError(f"a nominal level must lie in (0, 1) (or (0, 100) as a percentage), got {key!r}")
    return value


def _levels(levels: Iterable[float]) -> tuple[float, ...]:
    out = tuple(parse_level(p) for p in levels)
    if not out:
        raise ValueError("at least one nominal level is needed")
    return out


def _num(x) -> float | None:
    """A JSON-safe float: None for NaN/inf."""
    x = float(x)
    return x if math.isfinite(x) else None


def scored_joints(shape: tuple[int, ...], exclude_root: bool = True) -> np.ndarray:
    """Boolean (S,J) mask of the (sample, joint) pairs that enter the statistics (all but the pelvis)."""
    mask = np.ones(shape, dtype=bool)
    if exclude_root:
        mask[..., ROOT] = False
    return mask


def _mask(shape: tuple[int, ...], mask: np.ndarray | None) -> np.ndarray:
    base = scored_joints(shape)
    if mask is None:
        return base
    m = np.asarray(mask, dtype=bool)
    if m.shape != shape:
        raise ValueError(f"mask shape {m.shape} does not match (sample, joint) {shape}")
    return base & m


def _pair(spread: np.ndarray, err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s, e = np.asarray(spread, dtype=np.float64), np.asarray(err, dtype=np.float64)
    if s.shape != e.shape or s.ndim != 2:
        raise ValueError(f"spread {s.shape} and error {e.shape} must both be (sample, joint)")
    return s, e


# --------------------------------------------------------------------------- spread and error


def hypothesis_spread_mm(hypotheses: np.ndarray, kind: str = "rms") -> np.ndarray:
    """(S,N,J,3) metres -> (S,J) mm: RMS (`kind="rms"`) or mean (`kind="mean"`) distance of the hypotheses
    from their mean. `kind="mean"` equals `diffpose_viz.figures.errors.hypothesis_spread_mm`. N = 1 gives 0."""
    h = np.asarray(hypotheses, dtype=np.float64)
    if h.ndim != 4 or h.shape[-1] != 3:
        raise ValueError(f"hypotheses must be (sample, hypothesis, joint, 3), found shape {h.shape}")
    d = np.linalg.norm(h - h.mean(1, keepdims=True), axis=-1)
    if kind == "rms":
        return np.sqrt((d**2).mean(1)) * 1000.0
    if kind == "mean":
        return d.mean(1) * 1000.0
    raise ValueError(f"kind must be 'rms' or 'mean', got {kind!r}")


def joint_errors_mm(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(S,J,3) metres -> (S,J) mm, root-relative: the results file's `err`."""
    return mpjpe_per_joint(pred, gt)


def ideal_error_per_spread(n_hypotheses: int | None = None) -> float:
    """c in "mean error = c * spread" if the truth were one more draw from the hypotheses' isotropic Gaussian.

    With the F form of the module docstring |gt - pred| / spread = sqrt((N+1)/(N-1) F), F ~ F(3, 3(N-1)), and
    E[sqrt F] = sqrt(d2/3) Gamma(2) Gamma((d2-1)/2) / (Gamma(3/2) Gamma(d2/2)) with d2 = 3(N-1). For N -> inf
    (`n_hypotheses=None`) c = E[chi3] / sqrt(3) = 2 sqrt(2) / sqrt(3 pi) = 0.921.
    """
    if n_hypotheses is None:
        return float(2.0 * math.sqrt(2.0) / math.sqrt(3.0 * math.pi))
    n = int(n_hypotheses)
    if n < 2:
        raise ValueError(f"a spread needs at least 2 hypotheses, got {n}")
    d2 = 3.0 * (n - 1)
    log_e = 0.5 * math.log(d2 / 3.0) + special.gammaln(2.0) + special.gammaln((d2 - 1) / 2) \
        - special.gammaln(1.5) - special.gammaln(d2 / 2)
    return float(math.sqrt((n + 1) / (n - 1)) * math.exp(log_e))


def binned_spread_error(spread: np.ndarray, err: np.ndarray, n_bins: int = 10, mask: np.ndarray | None = None,
                        n_hypotheses: int | None = None) -> dict:
    """Joints binned by spread quantile: mean spread, mean/median/quartile error and count per bin (mm),
    with `ideal_slope` (`ideal_error_per_spread`) and `fitted_slope` (least squares of error on spread through
    the origin). A trustworthy spread puts the bin means on the ideal line err = ideal_slope * spread; with few
    hypotheses even a perfect sampler's lowest-spread bins sit somewhat above it (a noisy spread estimate is
    smallest where it underestimates most). Plain lists (JSON). Empty selections give empty lists."""
    s, e = _pair(spread, err)
    m = _mask(s.shape, mask) & np.isfinite(s) & np.isfinite(e)
    s, e = s[m], e[m]
    out = {"spread_mm": [], "error_mm": [], "error_median_mm": [], "error_q25_mm": [], "error_q75_mm": [],
           "spread_lo_mm": [], "spread_hi_mm": [], "count": [],
           "ideal_slope": ideal_error_per_spread(n_hypotheses), "fitted_slope": None}
    if s.size == 0:
        return out
    if np.sum(s * s) > 0:
        out["fitted_slope"] = _num(np.sum(s * e) / np.sum(s * s))
    edges = np.unique(np.quantile(s, np.linspace(0.0, 1.0, max(int(n_bins), 1) + 1)))
    idx = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, max(len(edges) - 2, 0))
    for b in range(max(len(edges) - 1, 1)):
        sel = idx == b
        if not sel.any():
            continue
        eb = e[sel]
        q25, q50, q75 = np.percentile(eb, [25, 50, 75])
        out["spread_mm"].append(float(s[sel].mean()))
        out["error_mm"].append(float(eb.mean()))
        out["error_median_mm"].append(float(q50))
        out["error_q25_mm"].append(float(q25))
        out["error_q75_mm"].append(float(q75))
        out["spread_lo_mm"].append(float(s[sel].min()))
        out["spread_hi_mm"].append(float(s[sel].max()))
        out["count"].append(int(sel.sum()))
    return out


# --------------------------------------------------------------------------- raw intervals and coverage


def raw_radius_mm(spread: np.ndarray, level: float, n_hypotheses: int | None = None) -> np.ndarray:
    """Radius (mm) of the raw interval at nominal level p from the spread alone (derivation: module docstring).

    `n_hypotheses=None`: r = spread / sqrt(3) * chi3.ppf(p) (large-N form, per-axis std spread/sqrt(3)).
    `n_hypotheses=N`: r = spread * sqrt((N+1)/(N-1) * F.ppf(p; 3, 3(N-1))), exact for N Gaussian hypotheses.
    """
    p = parse_level(level)
    s = np.asarray(spread, dtype=np.float64)
    if n_hypotheses is None:
        return s / math.sqrt(3.0) * float(stats.chi.ppf(p, 3))
    n = int(n_hypotheses)
    if n < 2:
        raise ValueError(f"a raw interval needs a spread, i.e. at least 2 hypotheses; got {n}")
    return s * math.sqrt((n + 1) / (n - 1) * float(stats.f.ppf(p, 3, 3 * (n - 1))))


def coverage(err: np.ndarray, radius: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Fraction of the scored (sample, joint) pairs (pelvis excluded, `mask` applied) with error <= radius."""
    e = np.asarray(err, dtype=np.float64)
    r = np.broadcast_to(np.asarray(radius, dtype=np.float64), e.shape)
    m = _mask(e.shape, mask) & np.isfinite(e)
    if not m.any():
        return float("nan")
    return float(np.mean(e[m] <= r[m]))


def raw_coverage(spread: np.ndarray, err: np.ndarray, levels: Iterable[float] = DEFAULT_LEVELS,
                 n_hypotheses: int | None = None, mask: np.ndarray | None = None) -> dict[float, float]:
    """{level: empirical coverage} of the raw intervals (`raw_radius_mm`)."""
    s, e = _pair(spread, err)
    return {p: coverage(e, raw_radius_mm(s, p, n_hypotheses), mask) for p in _levels(levels)}


def within_spread(spread: np.ndarray, err: np.ndarray, factor: float = 1.0, mask: np.ndarray | None = None) -> float:
    """Fraction of joints whose error is <= factor * spread."""
    s, e = _pair(spread, err)
    return coverage(e, factor * s, mask)


# --------------------------------------------------------------------------- calibration


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """Split-conformal threshold: the ceil((n+1)p)-th smallest of n scores (inf when that exceeds n).

    For a new score exchangeable with the n, P(score <= threshold) >= p (and < p + 1/(n+1) without ties).
    A tiny tolerance keeps (n+1)p from rounding up across an integer (20 * 0.9 = 18.000000000000004).
    """
    p = parse_level(level)
    s = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    s = s[np.isfinite(s)]
    n = s.size
    k = max(int(math.ceil((n + 1) * p - 1e-9)), 1)
    return float("inf") if k > n else float(s[k - 1])


def nonconformity_scores(spread: np.ndarray, err: np.ndarray, score: str = "scaled",
                         spread_floor_mm: float = SPREAD_FLOOR_MM) -> np.ndarray:
    """error / max(spread, floor) for `score="scaled"`, the error itself (mm) for `score="absolute"`."""
    s, e = _pair(spread, err)
    if score == "scaled":
        return e / np.maximum(s, spread_floor_mm)
    if score == "absolute":
        return e.copy()
    raise ValueError(f"score must be 'scaled' or 'absolute', got {score!r}")


def _level_index(levels: Sequence[float], level: float) -> int:
    p = parse_level(level)
    for i, q in enumerate(levels):
        if abs(q - p) < 1e-9:
            return i
    raise ValueError(f"level {p} was not calibrated; calibrated levels: {list(levels)}")


@dataclass
class Calibration:
    """Per-level, per (occlusion state, joint) factors fitted on validation data (`fit_calibration`).

    `table[l, state, j]`: with `score="scaled"` the radius is table * max(spread, spread_floor_mm); with
    `score="absolute"` (N = 1 models) it is table itself in mm. `state` is 0 = visible, 1 = occluded when
    `by_occlusion`, else the one state 0. `counts[state, j]` validation scores per cell, `source[state, j]` the
    index into `SOURCES` of the pool that was used. Inf = not enough validation data for that level.
    """

    levels: tuple[float, ...]
    table: np.ndarray
    method: str = "conformal"
    score: str = "scaled"
    by_occlusion: bool = True
    spread_floor_mm: float = SPREAD_FLOOR_MM
    spread_kind: str = "rms"
    n_hypotheses: int = 0
    counts: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    source: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    min_count: int = MIN_CELL
    fitted_on: str = "validation"
    joint_names: tuple[str, ...] = H36M17.joint_names

    def __post_init__(self) -> None:
        self.levels = _levels(self.levels)
        self.table = np.asarray(self.table, dtype=np.float64)
        n_states = 2 if self.by_occlusion else 1
        if self.table.shape != (len(self.levels), n_states, len(self.joint_names)):
            raise ValueError(f"calibration table must be (levels, states, joints) = "
                             f"{(len(self.levels), n_states, len(self.joint_names))}, found {self.table.shape}")
        if self.method not in ("conformal", "quantile"):
            raise ValueError(f"method must be 'conformal' or 'quantile', got {self.method!r}")
        if self.score not in ("scaled", "absolute"):
            raise ValueError(f"score must be 'scaled' or 'absolute', got {self.score!r}")
        shape = self.table.shape[1:]
        self.counts = np.zeros(shape, np.int64) if np.size(self.counts) == 0 else np.asarray(self.counts, np.int64)
        self.source = np.zeros(shape, np.int64) if np.size(self.source) == 0 else np.asarray(self.source, np.int64)

    # ---------------------------------------------------------------- applying it

    def factor(self, joint, occluded=False, level: float = 0.9) -> np.ndarray:
        """The fitted number(s) for joint index/indices and occlusion flag(s), broadcast together."""
        li = _level_index(self.levels, level)
        state = np.asarray(occluded, dtype=bool).astype(np.int64) if self.by_occlusion else 0
        return self.table[li][state, np.asarray(joint, dtype=np.int64)]

    def radius(self, spread, joint, occluded=False, level: float = 0.9) -> np.ndarray:
        """Radius (mm) of the calibrated ball around the aggregate pose, broadcast over the arguments."""
        f = self.factor(joint, occluded, level)
        if self.score == "absolute":
            return np.broadcast_to(f, np.broadcast_shapes(np.shape(f), np.shape(spread))).copy()
        return f * np.maximum(np.asarray(spread, dtype=np.float64), self.spread_floor_mm)

    def radii(self, spread: np.ndarray, occluded: np.ndarray | None = None, level: float = 0.9) -> np.ndarray:
        """(S,J) spreads (and occlusion flags) -> (S,J) radii in mm."""
        s = np.asarray(spread, dtype=np.float64)
        occ = np.zeros(s.shape, bool) if occluded is None else np.asarray(occluded, dtype=bool)
        joint = np.broadcast_to(np.arange(s.shape[-1]), s.shape)
        return self.radius(s, joint, occ, level)

    def coverage(self, spread: np.ndarray, err: np.ndarray, occluded: np.ndarray | None = None,
                 levels: Iterable[float] | None = None, mask: np.ndarray | None = None) -> dict[float, float]:
        """{level: fraction of test joints with error <= calibrated radius} (pelvis excluded, `mask` applied)."""
        s, e = _pair(spread, err)
        return {p: coverage(e, self.radii(s, occluded, p), mask) for p in (self.levels if levels is None
                                                                          else _levels(levels))}

    # ---------------------------------------------------------------- JSON

    def to_dict(self) -> dict:
        """Plain JSON (inf -> None); `from_dict` reverses it."""
        return {
            "levels": [float(p) for p in self.levels], "method": self.method, "score": self.score,
            "by_occlusion": bool(self.by_occlusion), "states": list(STATES) if self.by_occlusion else ["all"],
            "spread_floor_mm": float(self.spread_floor_mm),
            "spread_kind": self.spread_kind, "n_hypotheses": int(self.n_hypotheses), "min_count": int(self.min_count),
            "fitted_on": self.fitted_on, "joint_names": list(self.joint_names),
            "table": [[[_num(v) for v in row] for row in lvl] for lvl in self.table],
            "counts": self.counts.tolist(), "source": self.source.tolist(), "sources": list(SOURCES),
            "units": "factor on max(spread, floor)" if self.score == "scaled" else "mm",
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> Calibration:
        try:
            table = np.array([[[np.inf if v is None else v for v in row] for row in lvl] for lvl in d["table"]],
                             dtype=np.float64)
            return cls(levels=tuple(d["levels"]), table=table, method=d.get("method", "conformal"),
                       score=d.get("score", "scaled"), by_occlusion=bool(d.get("by_occlusion", True)),
                       spread_floor_mm=float(d.get("spread_floor_mm", SPREAD_FLOOR_MM)),
                       spread_kind=d.get("spread_kind", "rms"), n_hypotheses=int(d.get("n_hypotheses", 0)),
                       counts=np.asarray(d.get("counts", []), np.int64), source=np.asarray(d.get("source", []),
                                                                                          np.int64),
                       min_count=int(d.get("min_count", MIN_CELL)), fitted_on=d.get("fitted_on", "validation"),
                       joint_names=tuple(d.get("joint_names", H36M17.joint_names)))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a calibration dict ({type(exc).__name__}: {exc})") from None


def _threshold(scores: np.ndarray, level: float, rule: str) -> float:
    if scores.size == 0:
        return float("inf")
    if rule == "conformal":
        return conformal_quantile(scores, level)
    return float(np.quantile(scores, level))


def fit_calibration(val_hyps: np.ndarray, val_gt: np.ndarray, val_occluded: np.ndarray | None = None,
                    levels: Iterable[float] = DEFAULT_LEVELS, *, method: str = "conformal",
                    val_pred: np.ndarray | None = None, by_occlusion: bool = True, score: str = "auto",
                    min_count: int = MIN_CELL, spread_floor_mm: float = SPREAD_FLOOR_MM,
                    scale: np.ndarray | None = None) -> Calibration:
    """Fit the calibration on VALIDATION hypotheses (S,N,17,3) m, ground truth (S,17,3) m, occlusion (S,17).

    method "quantile": (a) per (joint, state) the empirical p-quantile of error / max(spread, floor), so that
        error <= s_j * spread holds for a fraction p of the validation joints.
    method "conformal": (b) split conformal, the ceil((n+1)p)/n empirical quantile of the same scores; a test
        joint exchangeable with the validation joints of its cell is covered with probability >= p.
    score "auto": "scaled" (error / spread) when N > 1, "absolute" (error alone, mm) when N = 1: a deterministic
        model still gets a per-joint conformal radius, an honest error bar that does not vary per input.
    `val_pred` is the aggregate pose (default: the mean of the hypotheses, as `pred` in the results).
    `scale` (S,) > 0: every sample's scores are divided by it (normalised conformal, `diffpose_viz.ood`); the
    radius of a new sample is then the table's radius times its own scale.
    Cells with fewer than `min_count` scores are pooled, in order: all joints in the same occlusion state (occlusion
    moves the error most), the joint over both states, all joints; `source` records which. The pelvis is never
    pooled into other joints (its error is 0). Never fit this on the test set: the coverage would be optimistic.
    """
    h = np.asarray(val_hyps, dtype=np.float64)
    if h.ndim != 4 or h.shape[-1] != 3:
        raise ValueError(f"val_hyps must be (sample, hypothesis, joint, 3), found {h.shape}")
    if h.shape[0] == 0:
        raise ValueError("no validation samples: the calibration needs validation residuals")
    gt = np.asarray(val_gt, dtype=np.float64)
    if gt.shape != h.shape[:1] + h.shape[2:]:
        raise ValueError(f"val_gt must be {h.shape[:1] + h.shape[2:]} to match val_hyps {h.shape}, found {gt.shape}")
    n_hyp = h.shape[1]
    if score == "auto":
        score = "scaled" if n_hyp > 1 else "absolute"
    if score == "scaled" and n_hyp < 2:
        raise ValueError("score='scaled' needs a spread, i.e. at least 2 hypotheses; use score='absolute'")
    if method not in ("conformal", "quantile"):
        raise ValueError(f"method must be 'conformal' or 'quantile', got {method!r}")
    pred = h.mean(1) if val_pred is None else np.asarray(val_pred, dtype=np.float64)
    spread = hypothesis_spread_mm(h)
    err = joint_errors_mm(pred, gt)
    scores = nonconformity_scores(spread, err, score, spread_floor_mm)
    if scale is not None:
        scale = np.asarray(scale, dtype=np.float64)
        if scale.shape != scores.shape[:1] or not (scale > 0).all():
            raise ValueError(f"scale must be (sample,) = {scores.shape[:1]} positive numbers, found {scale.shape}")
        scores = scores / scale[:, None]
    n_joints = scores.shape[1]
    occ = np.zeros(scores.shape, bool) if val_occluded is None else np.asarray(val_occluded, dtype=bool)
    if occ.shape != scores.shape:
        raise ValueError(f"val_occluded must be (sample, joint) {scores.shape}, found {occ.shape}")
    lv = _levels(levels)
    states = (False, True) if by_occlusion else (None,)
    table = np.empty((len(lv), len(states), n_joints))
    counts = np.zeros((len(states), n_joints), np.int64)
    source = np.zeros((len(states), n_joints), np.int64)
    non_root = scored_joints(scores.shape)
    for si, state in enumerate(states):
        in_state = np.ones(scores.shape, bool) if state is None else occ == state
        for j in range(n_joints):
            own = scores[in_state[:, j], j]
            counts[si, j] = own.size
            pools = [own, scores[in_state & non_root], scores[:, j], scores[non_root]]
            if j == ROOT:  # never mix the pelvis (error 0) with the other joints
                pools = [own, own[:0], scores[:, j], scores[:, j]]
            pick = next((i for i, pool in enumerate(pools) if pool.size >= min_count), len(pools) - 1)
            source[si, j] = pick
            for li, p in enumerate(lv):
                table[li, si, j] = _threshold(pools[pick], p, method)
    return Calibration(levels=lv, table=table, method=method, score=score, by_occlusion=by_occlusion,
                       spread_floor_mm=spread_floor_mm, n_hypotheses=n_hyp, counts=counts, source=source,
                       min_count=min_count)


def fit_calibration_from_results(ds, levels: Iterable[float] = DEFAULT_LEVELS, **kwargs) -> Calibration:
    """`fit_calibration` on a VALIDATION results Dataset (variables hypotheses, pred, gt, occluded)."""
    if ds.attrs.get("split") == "test":
        raise ValueError("refusing to fit a calibration on results with split='test': use validation results")
    for name in ("hypotheses", "gt"):
        if name not in ds:
            raise KeyError(f"validation results lack {name!r}; present: {sorted(ds.data_vars)}")
    return fit_calibration(ds["hypotheses"].values, ds["gt"].values,
                           ds["occluded"].values if "occluded" in ds else None, levels,
                           val_pred=ds["pred"].values if "pred" in ds else None, **kwargs)


def calibration_from_metrics(metrics: Mapping | None) -> Calibration | None:
    """The calibration stored in a metrics JSON under "uncertainty" -> "calibration", or None."""
    if not isinstance(metrics, Mapping):
        return None
    unc = metrics.get("uncertainty")
    if not isinstance(unc, Mapping) or not unc.get("calibration"):
        return None
    return Calibration.from_dict(unc["calibration"])


# --------------------------------------------------------------------------- correlation


def _corr(s: np.ndarray, e: np.ndarray) -> tuple[float, float]:
    if s.size < 3 or np.ptp(s) == 0 or np.ptp(e) == 0:
        return float("nan"), float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.spearmanr(s, e).statistic), float(stats.pearsonr(s, e).statistic)


def spread_error_correlation(spread: np.ndarray, err: np.ndarray, mask: np.ndarray | None = None) -> dict:
    """Spearman and Pearson correlation of spread and error over the scored (sample, joint) pairs, and per joint.

    Returns {"spearman", "pearson", "n", "per_joint_spearman" (J,), "per_joint_pearson" (J,), "per_joint_n" (J,)};
    NaN where fewer than 3 pairs or a constant series; the pelvis is excluded (NaN). Without `mask` the overall and
    Spearman numbers equal `diffpose_viz.figures.errors.spread_error_correlation`, which can delegate here.
    """
    s, e = _pair(spread, err)
    m = _mask(s.shape, mask) & np.isfinite(s) & np.isfinite(e)
    rho, r = _corr(s[m], e[m])
    n_joints = s.shape[1]
    out = {"spearman": rho, "pearson": r, "n": int(m.sum()), "per_joint_spearman": np.full(n_joints, np.nan),
           "per_joint_pearson": np.full(n_joints, np.nan), "per_joint_n": m.sum(0).astype(np.int64)}
    for j in range(n_joints):
        mj = m[:, j]
        out["per_joint_spearman"][j], out["per_joint_pearson"][j] = _corr(s[mj, j], e[mj, j])
    return out


def correlation_by_group(spread: np.ndarray, err: np.ndarray, groups: np.ndarray,
                         mask: np.ndarray | None = None) -> dict[str, dict]:
    """{group: {"spearman", "pearson", "n"}} with groups (S,) labels, e.g. the action group of every sample."""
    s, e = _pair(spread, err)
    g = np.asarray(groups).astype(str)
    if g.shape != s.shape[:1]:
        raise ValueError(f"groups must be (sample,) = {s.shape[:1]}, found {g.shape}")
    base = _mask(s.shape, mask) & np.isfinite(s) & np.isfinite(e)
    out = {}
    for name in np.unique(g):
        m = base & (g == name)[:, None]
        rho, r = _corr(s[m], e[m])
        out[str(name)] = {"spearman": rho, "pearson": r, "n": int(m.sum())}
    return out


# --------------------------------------------------------------------------- summary


def _cov_json(cov: Mapping[float, float]) -> dict[str, float | None]:
    return {level_key(p): _num(v) for p, v in cov.items()}


def _corr_json(c: Mapping) -> dict:
    return {"spearman": _num(c["spearman"]), "pearson": _num(c["pearson"]), "n": int(c["n"])}


def _per_joint_json(c: Mapping, names: Sequence[str]) -> dict:
    return {names[j]: {"spearman": _num(c["per_joint_spearman"][j]), "pearson": _num(c["per_joint_pearson"][j]),
                       "n": int(c["per_joint_n"][j])} for j in range(len(names)) if j != ROOT}


def _mean(x: np.ndarray, m: np.ndarray) -> float | None:
    return _num(x[m].mean()) if m.any() else None


def uncertainty_summary(ds, calibration: Calibration | Mapping | None = None,
                        levels: Iterable[float] = DEFAULT_LEVELS, n_bins: int = 10) -> dict:
    """Plain-JSON summary of whether the spread is a usable error bar, for one results Dataset.

    Reads `hypotheses`, `pred`, `gt` (or `err`), `occluded` and the `action_group` coordinate. Keys are documented
    in docs/RESULTS_SCHEMA.md, "Uncertainty (metrics JSON)". With a `calibration` (fitted on validation) it adds
    calibrated coverage and stores the calibration itself under "calibration". Spread-based keys are None for
    models with one hypothesis.
    """
    if "err" not in ds and "gt" not in ds:
        raise ValueError("uncertainty needs ground truth: the results have neither 'err' nor 'gt'")
    if isinstance(calibration, Mapping):
        calibration = Calibration.from_dict(calibration)
    lv = _levels(levels)
    err = ds["err"].values.astype(np.float64) if "err" in ds else joint_errors_mm(ds["pred"].values, ds["gt"].values)
    shape = err.shape
    names = list(ds["joint"].values.astype(str)) if "joint" in ds.coords else list(H36M17.joint_names)
    occ = ds["occluded"].values.astype(bool) if "occluded" in ds else np.zeros(shape, bool)
    n_hyp = int(ds.sizes.get("hypothesis", 1)) if "hypotheses" in ds else 1
    spread = hypothesis_spread_mm(ds["hypotheses"].values) if n_hyp > 1 else np.zeros(shape)
    groups = ds["action_group"].values if "action_group" in ds.coords else (
        ds["action"].values if "action" in ds.coords else None)
    scored = scored_joints(shape)
    has_spread = n_hyp > 1

    out: dict = {
        "n_samples": int(shape[0]), "n_hypotheses": n_hyp, "levels": [float(p) for p in lv],
        "joints": "all but the pelvis (the root-relative origin: spread and error are 0 there)",
        "spread_definition": SPREAD_DEFINITION, "mean_error_mm": _mean(err, scored),
        "mean_spread_mm": None, "mean_spread_mm_mean_distance": None, "error_per_spread": None,
        "frac_within_1x_spread": None, "frac_within_2x_spread": None, "correlation": None,
        "coverage_raw": None, "coverage_raw_chi": None, "binned": None,
    }
    if has_spread:
        corr = spread_error_correlation(spread, err)
        binned = binned_spread_error(spread, err, n_bins, n_hypotheses=n_hyp)
        out.update({
            "mean_spread_mm": _mean(spread, scored),
            "mean_spread_mm_mean_distance": _mean(hypothesis_spread_mm(ds["hypotheses"].values, "mean"), scored),
            "error_per_spread": {"ideal": binned["ideal_slope"], "fitted": binned["fitted_slope"]},
            "frac_within_1x_spread": _num(within_spread(spread, err, 1.0)),
            "frac_within_2x_spread": _num(within_spread(spread, err, 2.0)),
            "correlation": {**_corr_json(corr), "per_joint": _per_joint_json(corr, names),
                            "per_action": {} if groups is None else {
                                k: {**v, "spearman": _num(v["spearman"]), "pearson": _num(v["pearson"])}
                                for k, v in correlation_by_group(spread, err, groups).items()}},
            "coverage_raw": _cov_json(raw_coverage(spread, err, lv, n_hyp)),
            "coverage_raw_chi": _cov_json(raw_coverage(spread, err, lv, None)),
            "binned": binned,
        })
    occlusion = {}
    for state, m in (("visible", ~occ), ("occluded", occ)):
        sel = scored & m
        row: dict = {"n": int(sel.sum()), "mean_error_mm": _mean(err, sel), "mean_spread_mm": None,
                     "correlation": None, "coverage_raw": None, "binned": None}
        if has_spread and sel.any():
            c = spread_error_correlation(spread, err, m)
            row.update(mean_spread_mm=_mean(spread, sel), correlation={
                **_corr_json(c), "per_joint": _per_joint_json(c, names)},
                coverage_raw=_cov_json(raw_coverage(spread, err, lv, n_hyp, m)),
                binned=binned_spread_error(spread, err, n_bins, m, n_hyp))
        if calibration is not None and sel.any():
            row["coverage_calibrated"] = _cov_json(calibration.coverage(spread, err, occ, mask=m))
        occlusion[state] = row
    out["occlusion"] = occlusion
    if calibration is not None:
        out["calibration"] = calibration.to_dict()
        out["coverage_calibrated"] = _cov_json(calibration.coverage(spread, err, occ))
        if calibration.n_hypotheses and calibration.n_hypotheses != n_hyp:
            out["calibration_warning"] = (f"calibration fitted with {calibration.n_hypotheses} hypotheses, results "
                                          f"have {n_hyp}: the spread scale differs, refit on validation")
    if not has_spread:
        out["note"] = ("one hypothesis per sample: no spread; a conformal per-joint radius on the error alone "
                       "(calibration score 'absolute', fitted on validation) is still a valid error bar")
    return out
