"""Out of domain: a per-sample score that needs no ground truth, and error bars conditional on it.

Why: a split-conformal radius fitted on validation rows of the training subjects holds on rows like them and
under-covers elsewhere (docs/BENCHMARKS.md round 4: 43 % at a nominal 90 % on other people). Coverage off domain
needs (a) a way to tell, per input, how unlike the training data it is and (b) a calibration that widens the
interval with it. Everything here reads arrays a results file holds (docs/RESULTS_SCHEMA.md):

Score components (raw values, per sample; larger = further from what the model was trained on):
- `pose_2d`: squared Mahalanobis distance per observed coordinate of the input 2D pose, centred on its visible
  joints' mean and scaled by their RMS radius (position and size in the image carry no pose information), under a
  Gaussian fitted to the model's TRAINING 2D (as trained: augmented rows included). Missing joints (confidence 0
  or NaN) use the Gaussian's marginal over the observed coordinates.
- `reprojection`: relative RMS residual of the aggregate pose's weak-perspective projection (best scale and
  translation, by least squares, no camera needed) against the input 2D. A lifter that cannot explain its input
  is outside its training.
- `spread_vs_hk`: log ratio of the hypotheses' mean spread to the spread their start distribution H_K implies;
  two-sided (collapse or blow-up), and only for methods with N > 1 hypotheses from H_K.
- `proportions`: squared Mahalanobis distance per dimension of the prediction's log body proportions (hip and
  shoulder width, upper arms, neck-head, thighs over the pelvis-thorax length) under a Gaussian of the in-domain
  VALIDATION predictions (fitting half). View-independent: it moves with a body shift, little with a view shift.
  It is NOT averaged into the score (SCORE_COMPONENTS; so flag, AUROC and the single slope are as before it);
  only the per-component calibration weighs it.

Each component is put on one scale by the robust z = (log value - median) / (1.4826 MAD) over VALIDATION rows
(held-out sequences of every training source); the score is the mean of the available z's (|z| for the two-sided
one). The flag "outside what this model was trained on" is score > the FLAG_LEVEL quantile of validation scores.

Conditional calibration (fitted on validation only; the rows are split into two halves, one fixing the score's
reference statistics, slope and bins, the other the conformal quantiles, so the conformal step sees a fixed
function of the input):
- "normalised": the nonconformity of `uncertainty.fit_calibration` divided by exp(slope * score), slope from the
  least-squares fit of log nonconformity on the score (>= 0: an error bar never narrows off domain). Radius =
  table * max(spread, floor) * exp(slope * score). Extrapolates beyond the validation scores.
- "mondrian": one `Calibration` per score bin (validation quantiles); exact within the range of validation scores,
  the top bin's radius beyond it.
- "per_component": radius = table * max(spread, floor) * exp(w . z), z the component z's (NaN = 0), one weight
  w_c >= 0 per component, so that a shift that moves one component (bodies: `proportions`) can widen the radius
  without a shift that moves another (views: `pose_2d`, `spread_vs_hk`) widening with it. With held-out
  validation domains (`--calibrate-with`), w minimises the mean log radius subject to every held-out domain's
  EVEN rows being covered at RADIUS_LEVEL (`fit_component_weights`); the table is conformal on the in-domain odd
  rows; the held-out domains' odd rows stay unseen by it and give the `validation` check. Without them w is the
  non-negative least-squares fit of log nonconformity on z.
Which one gives the per-sample `radius`: `OODModel.radius_from`, chosen on validation odd halves (`choose_radius`).
"""
from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from diffpose_viz.atomic import atomic_target
from diffpose_viz.safe_io import load_npz
from diffpose_viz.uncertainty import (
    DEFAULT_LEVELS,
    Calibration,
    _levels,
    _num,
    coverage,
    fit_calibration,
    hypothesis_spread_mm,
    joint_errors_mm,
    level_key,
    nonconformity_scores,
    scored_joints,
)

COMPONENTS: tuple[str, ...] = ("pose_2d", "reprojection", "spread_vs_hk", "proportions")
#: Components averaged into the score (and so into the flag, the AUROC and the single-slope calibration);
#: `proportions` only feeds the per-component calibration, which weighs each component on its own.
SCORE_COMPONENTS: tuple[str, ...] = ("pose_2d", "reprojection", "spread_vs_hk")
TWO_SIDED = ("spread_vs_hk",)
#: (joint, joint) pairs of the body proportions (H36M17 order) and the torso (pelvis-thorax) they are divided by:
#: hip width, shoulder width, upper arms, neck-head, thighs.
PROPORTION_BONES = (((1, 4),), ((11, 14),), ((11, 12), (14, 15)), ((8, 10),), ((1, 2), (4, 5)))
TORSO = (0, 8)
#: Validation quantile of the score above which a sample is flagged out of domain (1 % of in-domain rows are).
FLAG_LEVEL = 0.99
#: Level of the per-joint radius written to results files.
RADIUS_LEVEL = 0.9
#: Shrinkage of the 2D covariance towards a multiple of the identity (the centred, scaled pose has 3 null
#: directions; 5 % keeps the inverse finite without flattening the real correlations).
SHRINKAGE = 0.05
#: Slope and score are capped so that exp(slope * score) stays finite for absurd inputs.
MAX_SLOPE, MAX_EXPONENT = 3.0, 30.0
MONDRIAN_BINS = 3
#: Training rows used for the 2D density (evenly thinned).
DENSITY_ROWS = 20000


# --------------------------------------------------------------------------- components


def visible_joints(keypoints_px: np.ndarray, confidence: np.ndarray | None) -> np.ndarray:
    kp = np.asarray(keypoints_px, np.float64)
    vis = np.isfinite(kp).all(-1)
    if confidence is not None:
        vis &= np.nan_to_num(np.asarray(confidence, np.float64)) > 0
    return vis


def normalise_2d(keypoints_px: np.ndarray, confidence: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(S,17,2) px -> (centred on the visible joints' mean, divided by their RMS radius; NaN where missing, (S,17)
    visible). Rows with fewer than 2 visible joints are all NaN."""
    kp = np.asarray(keypoints_px, np.float64)
    if kp.ndim != 3 or kp.shape[1:] != (17, 2):
        raise ValueError(f"keypoints: expected (sample, 17, 2) pixels, found {kp.shape}")
    vis = visible_joints(kp, confidence)
    x = np.where(vis[..., None], kp, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.nanmean(x, 1, keepdims=True) if vis.any() else x[:, :1]
        radius = np.sqrt(np.nanmean(((x - centre) ** 2).sum(-1), 1))[:, None, None]
        out = (x - centre) / radius
    out[(vis.sum(1) < 2) | ~np.isfinite(radius[:, 0, 0])] = np.nan
    return out, vis & np.isfinite(out).all(-1)


@dataclass
class PoseDensity2D:
    """Gaussian over the normalised 2D pose (34 numbers), fitted on fully visible training rows."""

    mean: np.ndarray
    cov: np.ndarray
    n_fit: int = 0

    @classmethod
    def fit(cls, keypoints_px: np.ndarray, confidence: np.ndarray | None = None,
            shrinkage: float = SHRINKAGE) -> PoseDensity2D:
        x, vis = normalise_2d(keypoints_px, confidence)
        x = x[vis.all(1)].reshape(-1, 34)
        if len(x) < 50:
            raise ValueError(f"the 2D density needs at least 50 fully visible training rows, found {len(x)}")
        s = np.cov(x, rowvar=False)
        cov = (1 - shrinkage) * s + shrinkage * np.trace(s) / 34 * np.eye(34)
        return cls(x.mean(0), cov, len(x))

    def distance(self, keypoints_px: np.ndarray, confidence: np.ndarray | None = None,
                 iterations: int = 3) -> np.ndarray:
        """(S,) squared Mahalanobis distance per observed coordinate (about 1 for a typical training pose).

        Missing joints would move the centre and radius of the normalisation; so they are filled with the
        Gaussian's conditional mean given the observed ones, the pose is normalised again over all 17 joints,
        a few times, and the distance is taken over the observed coordinates' marginal."""
        kp = np.asarray(keypoints_px, np.float64)
        vis = visible_joints(kp, confidence)
        x, _ = normalise_2d(np.where(vis[..., None], kp, np.nan))
        out = np.full(len(kp), np.nan)
        obs_all = np.repeat(vis, 2, axis=1)
        patterns, inverse = np.unique(obs_all, axis=0, return_inverse=True)
        for p, pattern in enumerate(patterns):  # one marginal per pattern of missing joints (few in practice)
            if pattern.sum() < 8:
                continue
            rows = np.flatnonzero(inverse.ravel() == p)
            o, m = np.flatnonzero(pattern), np.flatnonzero(~pattern)
            y = x[rows].reshape(len(rows), 34)
            gain = np.linalg.solve(self.cov[np.ix_(o, o)], self.cov[np.ix_(o, m)]).T if m.size else None
            for _ in range(iterations if m.size else 1):
                if m.size:  # conditional mean of the missing coordinates, then renormalise over all joints
                    y[:, m] = self.mean[m] + (y[:, o] - self.mean[o]) @ gain.T
                    y = normalise_2d(y.reshape(-1, 17, 2))[0].reshape(len(rows), 34)
            d = y[:, o] - self.mean[o]
            sol = np.linalg.solve(self.cov[np.ix_(o, o)], d.T).T
            out[rows] = (d * sol).sum(1) / o.size
        return out

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "cov": self.cov.tolist(), "n_fit": int(self.n_fit)}

    @classmethod
    def from_dict(cls, d: Mapping) -> PoseDensity2D:
        mean, cov = np.asarray(d["mean"], np.float64), np.asarray(d["cov"], np.float64)
        if mean.shape != (34,) or cov.shape != (34, 34):
            raise ValueError(f"2D density: expected mean (34,) and cov (34, 34), found {mean.shape}, {cov.shape}")
        return cls(mean, cov, int(d.get("n_fit", 0)))


def reprojection_residual(keypoints_px: np.ndarray, confidence: np.ndarray | None, pred: np.ndarray) -> np.ndarray:
    """(S,) RMS distance of the input 2D to the best weak-perspective projection (scale + translation) of the
    pose's x, y, relative to the 2D's own RMS radius (0 = the pose explains its input exactly)."""
    kp = np.asarray(keypoints_px, np.float64)
    xy = np.asarray(pred, np.float64)[..., :2]
    vis = visible_joints(kp, confidence) & np.isfinite(xy).all(-1)
    w = vis[..., None].astype(np.float64)
    n = np.maximum(vis.sum(1), 1)[:, None, None]
    k = np.where(w > 0, kp, 0.0)
    p = np.where(w > 0, xy, 0.0)
    kc = (k - (k * w).sum(1, keepdims=True) / n) * w
    pc = (p - (p * w).sum(1, keepdims=True) / n) * w
    with np.errstate(invalid="ignore", divide="ignore"):
        s = (kc * pc).sum((1, 2)) / (pc * pc).sum((1, 2))
        resid = np.sqrt(((kc - s[:, None, None] * pc) ** 2).sum((1, 2)) / n[:, 0, 0])
        out = resid / np.sqrt((kc * kc).sum((1, 2)) / n[:, 0, 0])
    out[vis.sum(1) < 3] = np.nan
    return out


def proportion_features(pred: np.ndarray) -> np.ndarray:
    """(S,17,3) -> (S, len(PROPORTION_BONES)) log of each bone group's mean length over the torso length."""
    x = np.asarray(pred, np.float64)
    length = lambda a, b: np.linalg.norm(x[:, a] - x[:, b], axis=-1)  # noqa: E731
    torso = length(*TORSO)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.stack([_log(np.mean([length(a, b) for a, b in group], 0) / torso) for group in PROPORTION_BONES], 1)


@dataclass
class ProportionDensity:
    """Gaussian over the prediction's log body proportions (`proportion_features`), fitted on in-domain
    VALIDATION predictions (the training rows' predictions are not at hand in `evaluate`). Its squared Mahalanobis
    distance per dimension is the `proportions` component: large when the lifted body is built unlike the ones
    the model saw, whatever the camera (a body shift moves it, a view shift much less)."""

    mean: np.ndarray
    cov: np.ndarray

    @classmethod
    def fit(cls, pred: np.ndarray, shrinkage: float = SHRINKAGE) -> ProportionDensity:
        f = proportion_features(pred)
        f = f[np.isfinite(f).all(1)]
        if len(f) < 20:
            raise ValueError(f"the proportion density needs at least 20 finite validation rows, found {len(f)}")
        c = np.cov(f, rowvar=False)
        k = f.shape[1]
        return cls(f.mean(0), (1 - shrinkage) * c + shrinkage * np.trace(c) / k * np.eye(k))

    def distance(self, pred: np.ndarray) -> np.ndarray:
        d = proportion_features(pred) - self.mean
        return np.einsum("ij,ij->i", d, np.linalg.solve(self.cov, d.T).T) / d.shape[1]

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "cov": self.cov.tolist()}

    @classmethod
    def from_dict(cls, d: Mapping) -> ProportionDensity:
        return cls(np.asarray(d["mean"], np.float64), np.asarray(d["cov"], np.float64))


def hk_spread_mm(weights: np.ndarray, means: np.ndarray, variances: np.ndarray) -> np.ndarray:
    """(S,17,M), (S,17,M,3), (S,17,M,3) -> (S,17) mm: RMS distance of H_K draws to the mixture mean per joint."""
    w = np.asarray(weights, np.float64)[..., None]
    mu = np.asarray(means, np.float64)
    mix = (w * mu).sum(-2, keepdims=True)
    total = (w * (np.asarray(variances, np.float64) + (mu - mix) ** 2)).sum(-2).sum(-1)
    return np.sqrt(total) * 1000.0


def spread_vs_hk(hypotheses: np.ndarray, gmm: Mapping | None) -> np.ndarray:
    """(S,) mean hypothesis spread / mean H_K spread over the non-root joints; NaN without H_K or with N = 1."""
    h = np.asarray(hypotheses)
    if gmm is None or h.shape[1] < 2:
        return np.full(len(h), np.nan)
    m = scored_joints(h.shape[:1] + h.shape[2:3])
    hyp = np.where(m, hypothesis_spread_mm(h), np.nan)
    hk = np.where(m, hk_spread_mm(gmm["weights"], gmm["means"], gmm["variances"]), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nanmean(hyp, 1) / np.nanmean(hk, 1)


def raw_components(density: PoseDensity2D, keypoints_px, confidence, pred, hypotheses,
                   gmm: Mapping | None = None, proportions: ProportionDensity | None = None) -> dict[str, np.ndarray]:
    """{component: (S,) raw value} (definitions: module docstring); `proportions` NaN without its density."""
    return {"pose_2d": density.distance(keypoints_px, confidence),
            "reprojection": reprojection_residual(keypoints_px, confidence, pred),
            "spread_vs_hk": spread_vs_hk(hypotheses, gmm),
            "proportions": np.full(len(np.asarray(pred)), np.nan) if proportions is None
            else proportions.distance(pred)}


def gmm_of(ds) -> dict | None:
    """H_K of a results Dataset as the dict `spread_vs_hk` takes, or None."""
    if "gmm_weight" not in ds:
        return None
    return {"weights": ds["gmm_weight"].values, "means": ds["gmm_mean"].values, "variances": ds["gmm_var"].values}


# --------------------------------------------------------------------------- the score


def _log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(np.maximum(np.asarray(x, np.float64), 1e-12))


@dataclass
class OODScorer:
    """Per-sample out-of-domain score; `fit_scorer` builds it from training 2D and validation rows."""

    density: PoseDensity2D
    centre: dict[str, float]
    scale: dict[str, float]
    threshold: float = float("inf")
    flag_level: float = FLAG_LEVEL
    proportions: ProportionDensity | None = None

    @property
    def components(self) -> tuple[str, ...]:
        return tuple(c for c in COMPONENTS if c in self.centre)

    def standardise(self, raw: Mapping[str, np.ndarray]) -> np.ndarray:
        """(S, len(COMPONENTS)) robust z per component (|z| for two-sided ones); NaN where not used."""
        n = len(next(iter(raw.values())))
        z = np.full((n, len(COMPONENTS)), np.nan)
        for i, c in enumerate(COMPONENTS):
            if c in self.centre:
                z[:, i] = (_log(raw[c]) - self.centre[c]) / self.scale[c]
                if c in TWO_SIDED:
                    z[:, i] = np.abs(z[:, i])
        return z

    def score(self, raw: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(score (S,), z (S, len(COMPONENTS))): the mean of the available SCORE_COMPONENTS z's per sample."""
        z = self.standardise(raw)
        cols = [i for i, c in enumerate(COMPONENTS) if c in SCORE_COMPONENTS]
        with warnings.catch_warnings():  # all-NaN rows (no usable 2D) score NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(z[:, cols], 1), z

    def raw(self, keypoints_px, confidence, pred, hypotheses, gmm=None) -> dict[str, np.ndarray]:
        return raw_components(self.density, keypoints_px, confidence, pred, hypotheses, gmm, self.proportions)

    def to_dict(self) -> dict:
        out = {"density_2d": self.density.to_dict(), "centre": self.centre, "scale": self.scale,
               "threshold": _num(self.threshold), "flag_level": self.flag_level, "components": list(self.components)}
        if self.proportions is not None:
            out["proportions"] = self.proportions.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: Mapping) -> OODScorer:
        t = d.get("threshold")
        return cls(PoseDensity2D.from_dict(d["density_2d"]), {k: float(v) for k, v in d["centre"].items()},
                   {k: float(v) for k, v in d["scale"].items()}, float("inf") if t is None else float(t),
                   float(d.get("flag_level", FLAG_LEVEL)),
                   None if d.get("proportions") is None else ProportionDensity.from_dict(d["proportions"]))


def fit_scorer(density: PoseDensity2D, raw_val: Mapping[str, np.ndarray],
               proportions: ProportionDensity | None = None) -> OODScorer:
    """Reference statistics (median, 1.4826 MAD of the log) of each component on VALIDATION rows; components
    that are NaN on most validation rows (no H_K, N = 1) or constant are left out."""
    centre, scale = {}, {}
    for c in COMPONENTS:
        if raw_val.get(c) is None:
            continue
        v = _log(raw_val[c])
        v = v[np.isfinite(v)]
        if v.size < max(10, 0.5 * len(raw_val[c])):
            continue
        med = float(np.median(v))
        mad = 1.4826 * float(np.median(np.abs(v - med)))
        if mad > 1e-9:
            centre[c], scale[c] = med, mad
    if not centre:
        raise ValueError("no out-of-domain score component is usable on the validation rows")
    if not set(centre) & set(SCORE_COMPONENTS):
        raise ValueError("no out-of-domain score component is usable on the validation rows")
    scorer = OODScorer(density, centre, scale, proportions=proportions if "proportions" in centre else None)
    scorer.threshold = float(np.nanquantile(scorer.score(raw_val)[0], FLAG_LEVEL))
    return scorer


def auroc(in_domain: np.ndarray, out_domain: np.ndarray) -> float:
    """P(score of an out-of-domain row > score of an in-domain row) (+ half the ties): Mann-Whitney AUC."""
    a, b = np.asarray(in_domain, np.float64), np.asarray(out_domain, np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return float("nan")
    ranks = stats.rankdata(np.concatenate([a, b]))
    return float((ranks[a.size:].sum() - b.size * (b.size + 1) / 2) / (a.size * b.size))


# --------------------------------------------------------------------------- conditional calibration


KINDS = ("normalised", "mondrian", "per_component")


def _exponent(slope: float, score: np.ndarray) -> np.ndarray:
    return np.clip(slope * np.nan_to_num(np.asarray(score, np.float64), nan=0.0), -MAX_EXPONENT, MAX_EXPONENT)


def _component_exponent(weights: np.ndarray, z: np.ndarray) -> np.ndarray:
    z = np.nan_to_num(np.asarray(z, np.float64), nan=0.0, posinf=MAX_EXPONENT, neginf=-MAX_EXPONENT)
    return np.clip(z @ np.asarray(weights, np.float64), -MAX_EXPONENT, MAX_EXPONENT)


@dataclass
class ScoreCalibration:
    """A calibration whose radius depends on the out-of-domain score (kinds: module docstring)."""

    kind: str
    parts: list[Calibration]
    slope: float = 0.0
    edges: list[float] = field(default_factory=list)  # inner bin edges (mondrian)
    weights: dict[str, float] = field(default_factory=dict)  # per score component (per_component)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {list(KINDS)}, got {self.kind!r}")
        unknown = set(self.weights) - set(COMPONENTS)
        if unknown:
            raise ValueError(f"per_component weights: unknown components {sorted(unknown)}")
        if len(self.parts) != (len(self.edges) + 1 if self.kind == "mondrian" else 1):
            raise ValueError(f"{self.kind}: {len(self.parts)} calibrations for {len(self.edges)} inner edges")

    @property
    def levels(self) -> tuple[float, ...]:
        return self.parts[0].levels

    def scale(self, score: np.ndarray, z: np.ndarray | None = None) -> np.ndarray:
        """(S,) factor on the table's radius: exp(slope * score) ("normalised"), exp(w . z) ("per_component"; z the
        (S, len(COMPONENTS)) component z's of `OODScorer.score`, NaN counting 0); 1 for "mondrian"."""
        score = np.asarray(score, np.float64)
        if self.kind == "per_component":
            if z is None:
                raise ValueError("the per_component calibration needs the score's component z's")
            return np.exp(_component_exponent(self.weight_vector(), z))
        if self.kind == "normalised":
            return np.exp(_exponent(self.slope, score))
        return np.ones(score.shape)

    def weight_vector(self) -> np.ndarray:
        return np.array([self.weights.get(c, 0.0) for c in COMPONENTS], np.float64)

    def radii(self, spread: np.ndarray, occluded: np.ndarray | None, score: np.ndarray,
              level: float = RADIUS_LEVEL, z: np.ndarray | None = None) -> np.ndarray:
        """(S,J) spreads, occlusion flags and (S,) scores (and (S, C) component z's for "per_component") -> (S,J)
        radii in mm."""
        s = np.asarray(spread, np.float64)
        score = np.asarray(score, np.float64)
        if self.kind == "per_component":
            return self.parts[0].radii(s, occluded, level) * self.scale(score, z)[:, None]
        if self.kind == "normalised":
            return self.parts[0].radii(s, occluded, level) * np.exp(_exponent(self.slope, score))[:, None]
        bins = np.searchsorted(np.asarray(self.edges), np.nan_to_num(score, nan=-np.inf), side="right")
        out = np.empty(s.shape)
        for b, cal in enumerate(self.parts):
            rows = bins == b
            if rows.any():
                out[rows] = cal.radii(s[rows], None if occluded is None else np.asarray(occluded)[rows], level)
        return out

    def coverage(self, spread, err, occluded, score, levels: Iterable[float] | None = None,
                 mask: np.ndarray | None = None, z: np.ndarray | None = None) -> dict[float, float]:
        e = np.asarray(err, np.float64)
        return {p: coverage(e, self.radii(spread, occluded, score, p, z), mask)
                for p in (self.levels if levels is None else _levels(levels))}

    def to_dict(self) -> dict:
        out = {"kind": self.kind, "slope": self.slope, "edges": list(map(float, self.edges)),
               "parts": [c.to_dict() for c in self.parts]}
        if self.weights:
            out["weights"] = {k: float(v) for k, v in self.weights.items()}
        return out

    @classmethod
    def from_dict(cls, d: Mapping) -> ScoreCalibration:
        return cls(d["kind"], [Calibration.from_dict(c) for c in d["parts"]], float(d.get("slope", 0.0)),
                   [float(e) for e in d.get("edges", [])], {k: float(v) for k, v in (d.get("weights") or {}).items()})


def fit_slope(spread: np.ndarray, err: np.ndarray, score: np.ndarray, nonconformity: str = "scaled") -> float:
    """Least-squares slope of the per-sample mean log nonconformity on the score, clipped to [0, MAX_SLOPE]."""
    r = nonconformity_scores(spread, err, nonconformity)
    m = scored_joints(r.shape)
    y = np.array([np.mean(_log(row[mm])) for row, mm in zip(r, m)])
    ok = np.isfinite(y) & np.isfinite(score)
    if ok.sum() < 3 or np.ptp(score[ok]) == 0:
        return 0.0
    return float(np.clip(np.polyfit(score[ok], y[ok], 1)[0], 0.0, MAX_SLOPE))


#: Step of the slope search on held-out-domain validation rows.
SLOPE_STEP = 0.02


#: Direction grid (step on the simplex of the used components) and finest step of the per-component search.
DIRECTION_STEP, WEIGHT_STEP = 0.1, 0.01


def fit_component_weights(h: np.ndarray, gt: np.ndarray, occ: np.ndarray | None, p: np.ndarray, z: np.ndarray,
                          domain: np.ndarray, fit_rows: np.ndarray, components: Iterable[str], *,
                          level: float = RADIUS_LEVEL, **kwargs) -> dict[str, float]:
    """Weights w >= 0 (one per used score component) of the "per_component" calibration, on VALIDATION rows only.

    Without held-out domains (`domain` all 0): the non-negative least-squares fit of the per-sample mean log
    nonconformity on the component z's (the multi-component analogue of `fit_slope`). With them: w minimises the
    mean (over domains: in domain and each held-out one, equally weighted) log radius at `level`, subject to
    every held-out domain's fitting half being covered at `level`, the conformal table being fitted on the
    in-domain fitting half for each trial w (so the search sees what conformalising does). Search: every direction
    of a grid on the simplex of the components, the smallest feasible length along it (bisection), then a
    pattern search around the best down to WEIGHT_STEP. No feasible w: the one whose worst domain is best covered."""
    comps = [c for c in components if c in COMPONENTS]
    cols = [COMPONENTS.index(c) for c in comps]
    zz = np.nan_to_num(np.asarray(z, np.float64), nan=0.0)
    spread, err = hypothesis_spread_mm(h), joint_errors_mm(p, gt)
    score_kind = "scaled" if h.shape[1] > 1 else "absolute"
    in_fit = fit_rows & (domain == 0)
    shifted = [fit_rows & (domain == d) for d in np.unique(domain[domain > 0])]
    sub = lambda x, rows: None if x is None else x[rows]  # noqa: E731
    if not cols:
        return {}
    if not shifted:  # least squares of log nonconformity on z, w >= 0
        from scipy.optimize import nnls
        r = nonconformity_scores(spread[in_fit], err[in_fit], score_kind)
        m = scored_joints(r.shape)
        y = np.array([np.mean(_log(row[mm])) for row, mm in zip(r, m)])
        x = zz[in_fit][:, cols]
        ok = np.isfinite(y)
        if ok.sum() < len(cols) + 2:
            return {c: 0.0 for c in comps}
        xc, yc = x[ok] - x[ok].mean(0), y[ok] - y[ok].mean()
        w = nnls(xc, yc)[0] if np.ptp(xc, 0).max() > 0 else np.zeros(len(cols))
        return {c: float(np.clip(v, 0.0, MAX_SLOPE)) for c, v in zip(comps, w)}

    groups = [in_fit] + shifted
    cache: dict[tuple, tuple[float, float]] = {}

    def trial(w: np.ndarray) -> tuple[float, float]:
        key = tuple(np.round(w, 6))
        if key not in cache:
            full = np.zeros(len(COMPONENTS))
            full[cols] = w
            e = _component_exponent(full, zz)
            cal = fit_calibration(h[in_fit], gt[in_fit], sub(occ, in_fit), (level,), val_pred=p[in_fit],
                                  scale=np.exp(e[in_fit]), **kwargs)
            rad = cal.radii(spread, occ, level) * np.exp(e)[:, None]
            worst = min(coverage(err[g], rad[g]) for g in shifted)
            logr = _log(rad[:, 1:])
            cache[key] = (worst, float(np.mean([np.nanmean(np.where(np.isfinite(logr[g]), logr[g], np.nan))
                                                for g in groups])))
        return cache[key]

    def better(a, b) -> bool:  # feasible and narrower, else better covered
        (ca, oa), (cb, ob) = trial(a), trial(b)
        if (ca >= level) != (cb >= level):
            return ca >= level
        return oa < ob if ca >= level else ca > cb

    k = len(cols)
    ticks = np.round(np.arange(0, 1 + 1e-9, DIRECTION_STEP), 6)
    directions = [np.array(t) for t in np.array(np.meshgrid(*[ticks] * k)).reshape(k, -1).T
                  if abs(sum(t) - 1) < 1e-6]
    best = np.zeros(k)
    top = MAX_SLOPE
    for u in directions:
        lengths = np.arange(0.0, top / max(u.max(), 1e-9) + 1e-9, 0.25)
        hi = next((t for t in lengths if trial(t * u)[0] >= level), None)
        if hi is None:
            cand = lengths[-1] * u
        else:
            lo = max(hi - 0.25, 0.0)
            for _ in range(5):
                mid = (lo + hi) / 2
                lo, hi = (lo, mid) if trial(mid * u)[0] >= level else (mid, hi)
            cand = hi * u
        if better(np.minimum(cand, top), best):
            best = np.minimum(cand, top)
    step = 0.05
    while step >= WEIGHT_STEP - 1e-12:
        moved = False
        for i in range(k):
            for sgn in (-1, 1):
                cand = best.copy()
                cand[i] = float(np.clip(cand[i] + sgn * step, 0.0, top))
                if better(cand, best):
                    best, moved = cand, True
        if not moved:
            step /= 2
    return {c: float(v) for c, v in zip(comps, best)}


def fit_score_calibration(hyps: np.ndarray, gt: np.ndarray, occluded: np.ndarray | None, score: np.ndarray, *,
                          kind: str = "normalised", fit_rows: np.ndarray | None = None,
                          shift_rows: np.ndarray | None = None, levels: Iterable[float] = DEFAULT_LEVELS,
                          pred: np.ndarray | None = None, n_bins: int = MONDRIAN_BINS, z: np.ndarray | None = None,
                          components: Iterable[str] | None = None, shift_fit_half: bool = False,
                          **kwargs) -> ScoreCalibration:
    """Fit on VALIDATION rows: `fit_rows` (bool (S,)) fix the slope / weights / bin edges, the other in-domain
    rows the conformal quantiles (default: alternate rows). `shift_rows` ((S,) bool, or int: 0 in domain, k > 0
    held-out domain k): validation rows of held-out domains (the training subjects' held-out takes through
    held-out cameras, on other bodies, a held-out source); they are left out of the conformal quantiles of the
    "normalised" and "per_component" kinds and choose their scale instead:
    - "normalised": the smallest slope >= the least-squares one at which every held-out domain is covered at
      RADIUS_LEVEL (an in-domain slope is attenuated: the score is a noisy proxy of the shift); all of each
      held-out domain's rows, or with `shift_fit_half` only its `fit_rows`.
    - "per_component": one weight per score component (`fit_component_weights`; needs `z`, the (S, C) component
      z's, and uses only the held-out domains' `fit_rows`, so their other half stays a clean check).
    Mondrian bins pool them with the rest. kwargs go to `uncertainty.fit_calibration`."""
    h = np.asarray(hyps, np.float64)
    score = np.asarray(score, np.float64)
    p = h.mean(1) if pred is None else np.asarray(pred, np.float64)
    domain = np.zeros(len(h), np.int64) if shift_rows is None else np.asarray(shift_rows).astype(np.int64)
    shift = domain > 0
    fit = (np.arange(len(h)) % 2 == 0) if fit_rows is None else np.asarray(fit_rows, bool)
    a = fit & ~shift
    b = ~a & ~shift
    occ = None if occluded is None else np.asarray(occluded, bool)
    sub = lambda x, rows: None if x is None else x[rows]  # noqa: E731
    score_kind = "scaled" if h.shape[1] > 1 else "absolute"
    if kind == "per_component":
        if z is None:
            raise ValueError("the per_component calibration needs z, the score's component z's")
        z = np.asarray(z, np.float64)
        used = [c for i, c in enumerate(COMPONENTS) if np.isfinite(z[:, i]).mean() > 0.5] if components is None \
            else list(components)
        levels_t = _levels(levels)
        level = RADIUS_LEVEL if any(abs(q - RADIUS_LEVEL) < 1e-9 for q in levels_t) else levels_t[-1]
        weights = fit_component_weights(h, gt, occ, p, z, domain, fit, used, level=level, **kwargs)
        full = np.array([weights.get(c, 0.0) for c in COMPONENTS])
        cal = fit_calibration(h[b], gt[b], sub(occ, b), levels, val_pred=p[b],
                              scale=np.exp(_component_exponent(full, z[b])), **kwargs)
        return ScoreCalibration("per_component", [cal], weights=weights)
    if kind == "normalised":
        spread, err = hypothesis_spread_mm(h), joint_errors_mm(p, gt)
        fit_k = lambda k: fit_calibration(h[b], gt[b], sub(occ, b), levels, val_pred=p[b],  # noqa: E731
                                          scale=np.exp(_exponent(k, score[b])), **kwargs)
        slope = fit_slope(spread[a], err[a], score[a], score_kind)
        cal = fit_k(slope)
        if shift.any():
            level = RADIUS_LEVEL if any(abs(q - RADIUS_LEVEL) < 1e-9 for q in cal.levels) else cal.levels[-1]
            pick = fit if shift_fit_half else np.ones(len(h), bool)
            for k in np.arange(slope, MAX_SLOPE + 1e-9, SLOPE_STEP):
                cal = fit_k(float(k))
                c = ScoreCalibration("normalised", [cal], slope=float(k))
                if all(c.coverage(spread[d], err[d], sub(occ, d), score[d], [level])[level] >= level
                       for d in ((domain == i) & pick for i in np.unique(domain[shift]))):  # every held-out domain
                    break
            slope = float(k)
        return ScoreCalibration("normalised", [cal], slope=slope)
    if kind != "mondrian":
        raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    fin = score[a][np.isfinite(score[a])]
    edges = sorted(set(np.quantile(fin, np.linspace(0, 1, n_bins + 1)[1:-1]).tolist())) if fin.size else []
    bins = np.searchsorted(np.asarray(edges), np.nan_to_num(score, nan=-np.inf), side="right")
    parts = []
    for k in range(len(edges) + 1):
        rows = (b | shift) & (bins == k)
        if not rows.any():
            raise ValueError(f"mondrian calibration: no validation rows in score bin {k}")
        parts.append(fit_calibration(h[rows], gt[rows], sub(occ, rows), levels, val_pred=p[rows], **kwargs))
    return ScoreCalibration("mondrian", parts, edges=edges)


# --------------------------------------------------------------------------- the whole model and its report


@dataclass
class OODModel:
    """What `evaluate` fits on validation and stores in the metrics JSON (`uncertainty` -> `ood`), so that
    `sample` / `wild` can score new input and give it a radius. `radius_from` names the calibration that gives the
    per-sample radius ("normalised", or "per_component" when fitted); `validation` holds, per calibration kind,
    the coverage at RADIUS_LEVEL on each held-out validation domain's half that did not fit it (JSON keys of
    `ood_summary`)."""

    scorer: OODScorer
    normalised: ScoreCalibration
    mondrian: ScoreCalibration | None = None
    fitted_on: str = "validation"
    per_component: ScoreCalibration | None = None
    radius_from: str = "normalised"
    validation: dict = field(default_factory=dict)
    #: The content fingerprint of the checkpoint whose validation rows fitted it (`checkpoint.check_made_from`).
    checkpoint_fingerprint: str | None = None

    def __post_init__(self) -> None:
        if self.radius_from not in ("normalised", "per_component"):
            raise ValueError(f"radius_from must be 'normalised' or 'per_component', got {self.radius_from!r}")
        if self.radius_from == "per_component" and self.per_component is None:
            raise ValueError("radius_from 'per_component' without a per_component calibration")

    @property
    def radius_calibration(self) -> ScoreCalibration:
        return self.per_component if self.radius_from == "per_component" else self.normalised

    def calibrations(self) -> dict[str, ScoreCalibration]:
        return {k: c for k, c in (("normalised", self.normalised), ("mondrian", self.mondrian),
                                  ("per_component", self.per_component)) if c is not None}

    def to_dict(self) -> dict:
        out = {"scorer": self.scorer.to_dict(), "normalised": self.normalised.to_dict(),
               "mondrian": None if self.mondrian is None else self.mondrian.to_dict(), "fitted_on": self.fitted_on}
        if self.per_component is not None:
            out["per_component"] = self.per_component.to_dict()
        out["radius_from"] = self.radius_from
        if self.validation:
            out["validation"] = self.validation
        if self.checkpoint_fingerprint:
            out["checkpoint_fingerprint"] = self.checkpoint_fingerprint
        out[DIGEST_KEY] = content_digest(out)
        return out

    @classmethod
    def from_dict(cls, d: Mapping) -> OODModel:
        """The model of `to_dict`; ValueError naming the key for a dict edited since it was written (its digest
        no longer matches) or holding values no fit produces (NaN, negative slopes/scales/radii, wrong shapes)."""
        stored = d.get(DIGEST_KEY) if isinstance(d, Mapping) else None
        if stored is not None and stored != content_digest(d):
            raise ValueError(f"{DIGEST_KEY}: the values were changed after `evaluate` wrote them (stored digest "
                             f"{str(stored)[:16]}, content {content_digest(d)[:16]}); make the calibration again")
        try:
            model = cls(OODScorer.from_dict(d["scorer"]), ScoreCalibration.from_dict(d["normalised"]),
                        None if d.get("mondrian") is None else ScoreCalibration.from_dict(d["mondrian"]),
                        d.get("fitted_on", "validation"),
                        None if d.get("per_component") is None else ScoreCalibration.from_dict(d["per_component"]),
                        d.get("radius_from", "normalised"), dict(d.get("validation") or {}),
                        d.get("checkpoint_fingerprint"))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not an out-of-domain model dict ({type(exc).__name__}: {exc})") from None
        check_model(model)
        return model


DIGEST_KEY = "content_digest"


def content_digest(d: Mapping) -> str:
    """sha256 of a model dict's JSON (keys sorted, the digest itself left out): any edit changes it."""
    import hashlib
    import json

    body = {k: v for k, v in d.items() if k != DIGEST_KEY}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def check_model(model: OODModel) -> None:
    """ValueError naming the key unless every parameter is one a fit can produce: finite (an infinite flag
    threshold or table cell is allowed: 'no threshold', 'too few rows'), slopes, weights and scales >= 0 or > 0,
    and shapes that fit the 17-joint model. Hand-edited values would give error bars that mean nothing."""
    def bad(key: str, expected: str, found) -> None:
        raise ValueError(f"{key}: expected {expected}, found {found}")

    sc = model.scorer
    mean, cov = np.asarray(sc.density.mean), np.asarray(sc.density.cov)
    if not (np.isfinite(mean).all() and np.isfinite(cov).all()):
        bad("scorer.density_2d", "finite mean and covariance", "NaN or inf")
    if not (np.diag(cov) > 0).all():
        bad("scorer.density_2d.cov", "a positive diagonal (variances)", f"min {np.diag(cov).min():g}")
    if set(sc.centre) != set(sc.scale) or not set(sc.centre) <= set(COMPONENTS):
        bad("scorer.centre/scale", f"the same components of {list(COMPONENTS)}", f"{sorted(sc.centre)} / "
            f"{sorted(sc.scale)}")
    for c in sc.centre:
        if not np.isfinite(sc.centre[c]):
            bad(f"scorer.centre.{c}", "a finite number", sc.centre[c])
        if not (np.isfinite(sc.scale[c]) and sc.scale[c] > 0):
            bad(f"scorer.scale.{c}", "a finite number > 0", sc.scale[c])
    if np.isnan(sc.threshold) or sc.threshold == -np.inf:
        bad("scorer.threshold", "a number (or null: no threshold)", sc.threshold)
    if not 0 < sc.flag_level < 1:
        bad("scorer.flag_level", "a level in (0, 1)", sc.flag_level)
    if sc.proportions is not None:
        pm, pc = np.asarray(sc.proportions.mean), np.asarray(sc.proportions.cov)
        if pc.shape != (pm.size, pm.size) or not (np.isfinite(pm).all() and np.isfinite(pc).all()):
            bad("scorer.proportions", "a finite mean (d,) and covariance (d, d)", f"{pm.shape}, {pc.shape}")
    for kind, cal in model.calibrations().items():
        if not (np.isfinite(cal.slope) and 0 <= cal.slope <= MAX_SLOPE):
            bad(f"{kind}.slope", f"a number in [0, {MAX_SLOPE:g}] (an error bar never narrows off domain)", cal.slope)
        for c, w in cal.weights.items():
            if not (np.isfinite(w) and w >= 0):
                bad(f"{kind}.weights.{c}", "a finite number >= 0", w)
        edges = np.asarray(cal.edges, np.float64)
        if not np.isfinite(edges).all() or (np.diff(edges) < 0).any():
            bad(f"{kind}.edges", "finite, increasing bin edges", list(cal.edges))
        for i, part in enumerate(cal.parts):
            key = f"{kind}.parts[{i}]"
            if len(part.joint_names) != 17:
                bad(f"{key}.joint_names", "the 17 H36M joints of the model", len(part.joint_names))
            table = np.asarray(part.table)
            if np.isnan(table).any() or (table < 0).any():
                bad(f"{key}.table", "radius factors >= 0 (inf: too few rows)",
                    "NaN" if np.isnan(table).any() else f"min {table.min():g}")
            if not all(0 < lv < 1 for lv in part.levels):
                bad(f"{key}.levels", "levels in (0, 1)", list(part.levels))
            if not (np.isfinite(part.spread_floor_mm) and part.spread_floor_mm >= 0):
                bad(f"{key}.spread_floor_mm", "a finite number >= 0", part.spread_floor_mm)


#: With held-out validation domains, the per-component calibration gives the radius when, on the validation rows'
#: odd halves, it covers every held-out domain at >= RADIUS_LEVEL - CHOICE_TOLERANCE and its mean radius (mean over
#: the domains of their mean radius) is below the single slope's (docs/BENCHMARKS.md round 6; never a test set).
CHOICE_TOLERANCE = 0.01
#: ... and, whatever the held-out coverage, the single slope is not chosen when its mean radius on the in-domain
#: validation half is more than this factor above the per-component one's: with held-out real people as
#: `--calibrate-with` domains (docs/benchmarks/people.md) the single slope reached exp(2.3 * score) and metres of
#: radius on in-domain rows, an error bar that widens where nothing has shifted.
MAX_IN_DOMAIN_WIDENING = 2.0
RADIUS_RULE = (f"per_component if it covers every held-out domain's odd half at >= {RADIUS_LEVEL - CHOICE_TOLERANCE:g} "
               "and its mean radius there is below the single slope's, or if the single slope's in-domain mean radius "
               f"is over {MAX_IN_DOMAIN_WIDENING:g}x the per-component one's; else normalised")


def choose_radius(validation: Mapping) -> str:
    """"per_component" or "normalised" from `OODModel.validation` (RADIUS_RULE)."""
    cov, rad = validation.get("coverage_90") or {}, validation.get("mean_radius_mm") or {}
    if "per_component" not in cov or "normalised" not in cov:
        return "normalised"
    held = [k for k in cov["per_component"] if k != "domain0"]
    ok = all((cov["per_component"][k] or 0.0) >= RADIUS_LEVEL - CHOICE_TOLERANCE for k in held)
    mean = lambda kind: float(np.mean([v for v in rad[kind].values() if v is not None]))  # noqa: E731
    if ok and mean("per_component") < mean("normalised"):
        return "per_component"
    own = {k: (rad.get(k) or {}).get("domain0") for k in ("normalised", "per_component")}
    if None not in own.values() and own["normalised"] > MAX_IN_DOMAIN_WIDENING * own["per_component"]:
        return "per_component"
    return "normalised"


def fit_ood_model(train_keypoints: np.ndarray, train_confidence: np.ndarray | None, *, val_keypoints,
                  val_confidence, val_hyps, val_gt, val_occluded=None, val_pred=None, val_gmm=None,
                  shift_rows: np.ndarray | None = None, levels: Iterable[float] = DEFAULT_LEVELS,
                  radius_from: str | None = None, per_component: bool = True,
                  shift_fit_half: bool = False, proportions: bool = True) -> OODModel:
    """2D density on training rows, then on the VALIDATION rows: reference statistics and slope / weights / bins
    on the even in-domain rows, conformal quantiles on the odd ones; `shift_rows` (held-out-domain validation
    rows) choose the normalised calibration's slope and (their even rows) the per-component weights
    (`fit_score_calibration`). `radius_from` default: `choose_radius` on the validation odd halves with held-out
    domains, else "normalised". `validation`: coverage of each kind on each held-out domain's odd rows."""
    density = PoseDensity2D.fit(train_keypoints, train_confidence)
    h = np.asarray(val_hyps, np.float64)
    pred = h.mean(1) if val_pred is None else np.asarray(val_pred, np.float64)
    domain = np.zeros(len(h), np.int64) if shift_rows is None else np.asarray(shift_rows).astype(np.int64)
    shift = domain > 0
    even_all = np.arange(len(h)) % 2 == 0
    even = even_all & ~shift
    try:
        props = ProportionDensity.fit(pred[even]) if proportions else None
    except ValueError:
        props = None
    raw = raw_components(density, val_keypoints, val_confidence, pred, h, val_gmm, props)
    scorer = fit_scorer(density, {k: v[even] for k, v in raw.items()}, props)
    score, z = scorer.score(raw)
    common = dict(fit_rows=even_all, shift_rows=domain, levels=levels, pred=pred)
    normalised = fit_score_calibration(h, val_gt, val_occluded, score, kind="normalised",
                                       shift_fit_half=shift_fit_half, **common)
    try:
        mondrian = fit_score_calibration(h, val_gt, val_occluded, score, kind="mondrian", **common)
    except ValueError:
        mondrian = None
    comp = fit_score_calibration(h, val_gt, val_occluded, score, kind="per_component", z=z,
                                 components=scorer.components, **common) if per_component else None
    model = OODModel(scorer, normalised, mondrian, per_component=comp,
                     radius_from="normalised" if radius_from is None else radius_from)
    if shift.any():
        spread = hypothesis_spread_mm(h) if h.shape[1] > 1 else np.zeros(h.shape[:1] + h.shape[2:3])
        err = joint_errors_mm(pred, val_gt)
        occ = None if val_occluded is None else np.asarray(val_occluded, bool)
        held = {f"domain{d}": (domain == d) & ~even_all for d in np.unique(domain)}  # domain0: in-domain odd
        cov, rad = {}, {}
        for kind, cal in model.calibrations().items():
            r = cal.radii(spread, occ, score, RADIUS_LEVEL, z)
            cov[kind] = {k: _num(coverage(err[rows], r[rows])) for k, rows in held.items()}
            rad[kind] = {k: _num(np.nanmean(np.where(np.isfinite(r[rows][:, 1:]), r[rows][:, 1:], np.nan)))
                         for k, rows in held.items()}
        model.validation = {"rows": "odd rows of each validation domain (domain0: the training data's own, which "
                                    "the conformal tables were fitted on; k > 0: --calibrate-with file k, whose odd "
                                    "rows chose the single slope unless shift_fit_half, and the Mondrian bins' "
                                    "quantiles, but not the per-component weights)",
                            "coverage_90": cov, "mean_radius_mm": rad}
        if radius_from is None:
            model.radius_from = choose_radius(model.validation)
            model.validation["radius_from_rule"] = RADIUS_RULE
    return model


ROW_KEYS = ("train_keypoints", "train_confidence", "val_keypoints", "val_confidence", "val_hyps", "val_gt",
            "val_occluded", "val_pred", "shift_rows")


#: What a calibration-rows file must hold (key: number of dimensions).
REQUIRED_ROWS = {"train_keypoints": 3, "val_keypoints": 3, "val_hyps": 4, "val_gt": 3}


def save_calibration_rows(path, *, val_gmm: Mapping | None = None, calibrate_with=(),
                          checkpoint_fingerprint: str | None = None, **arrays) -> None:
    """The arguments of `fit_ood_model` (VALIDATION rows only) as one .npz (`load_calibration_rows` reads it),
    with the fingerprint of the checkpoint that lifted them (results scored with a refit must share it)."""
    out = {k: np.asarray(v) for k, v in arrays.items() if v is not None}
    unknown = set(out) - set(ROW_KEYS)
    if unknown:
        raise ValueError(f"save_calibration_rows: unknown arrays {sorted(unknown)}")
    if val_gmm is not None:
        out.update({f"val_gmm_{k}": np.asarray(v) for k, v in val_gmm.items()})
    with atomic_target(path) as tmp, open(tmp, "wb") as fh:  # never a half-written file under the name
        np.savez_compressed(fh, calibrate_with=np.asarray(list(calibrate_with), dtype=str),
                            checkpoint_fingerprint=np.asarray(checkpoint_fingerprint or "", dtype=str), **out)


def load_calibration_rows(path) -> dict:
    """{argument of `fit_ood_model`: array} from `save_calibration_rows` (plus 'calibrate_with' and
    'checkpoint_fingerprint', None for files written before fingerprints)."""
    d = load_npz(path)  # checked before opening (regular file, sane headers); restricted unpickling
    for key, ndim in REQUIRED_ROWS.items():
        if key not in d:
            raise ValueError(f"{path}: key {key!r}: missing (expected the .npz of `diffpose-viz evaluate "
                             f"--save-calibration-rows`, found keys {sorted(d)})")
        if np.ndim(d[key]) != ndim or np.asarray(d[key]).dtype.kind != "f":
            raise ValueError(f"{path}: key {key!r}: expected a float array with {ndim} dimensions, found "
                             f"{np.asarray(d[key]).dtype} {np.shape(d[key])}")
    if len(d["val_hyps"]) != len(d["val_keypoints"]) or len(d["val_gt"]) != len(d["val_keypoints"]):
        raise ValueError(f"{path}: keys 'val_keypoints', 'val_hyps', 'val_gt': expected one row each per validation "
                         f"row, found {len(d['val_keypoints'])}, {len(d['val_hyps'])}, {len(d['val_gt'])}")
    gmm = {k[len("val_gmm_"):]: d.pop(k) for k in list(d) if k.startswith("val_gmm_")}
    out = {k: d.get(k) for k in ROW_KEYS}
    out["val_gmm"] = gmm or None
    out["calibrate_with"] = [str(c) for c in d.get("calibrate_with", [])]
    fp = d.get("checkpoint_fingerprint")
    out["checkpoint_fingerprint"] = str(fp) if fp is not None and str(fp) else None
    return out


def model_from_metrics(metrics: Mapping | None) -> OODModel | None:
    """The OODModel stored in a metrics JSON under "uncertainty" -> "ood" -> "model", or None."""
    try:
        d = metrics["uncertainty"]["ood"]["model"]
    except (KeyError, TypeError):
        return None
    return None if d is None else OODModel.from_dict(d)


@dataclass
class Scored:
    """Per-sample output of `OODModel` on results-shaped arrays."""

    score: np.ndarray  # (S,)
    flag: np.ndarray  # (S,) bool
    components: np.ndarray  # (S, len(COMPONENTS)) robust z, NaN where not used
    radius: np.ndarray  # (S,17) mm at RADIUS_LEVEL, normalised calibration
    spread: np.ndarray  # (S,17) mm


def score_arrays(model: OODModel, keypoints_px, confidence, pred, hypotheses, gmm=None, occluded=None) -> Scored:
    h = np.asarray(hypotheses, np.float64)
    score, z = model.scorer.score(model.scorer.raw(keypoints_px, confidence, pred, h, gmm))
    spread = hypothesis_spread_mm(h) if h.shape[1] > 1 else np.zeros(h.shape[:1] + h.shape[2:3])
    cal = model.radius_calibration
    level = RADIUS_LEVEL if any(abs(p - RADIUS_LEVEL) < 1e-9 for p in cal.levels) else cal.levels[-1]
    radius = cal.radii(spread, occluded, score, level, z)
    with np.errstate(invalid="ignore"):
        flag = np.nan_to_num(score, nan=np.inf) > model.scorer.threshold
    return Scored(score, flag, z, radius, spread)


def score_results(model: OODModel, ds) -> Scored:
    """`score_arrays` on a results Dataset (docs/RESULTS_SCHEMA.md)."""
    return score_arrays(model, ds["input_2d"].values, ds["confidence"].values, ds["pred"].values,
                        ds["hypotheses"].values, gmm_of(ds),
                        ds["occluded"].values.astype(bool) if "occluded" in ds else None)


def ood_summary(model: OODModel, ds, scored: Scored | None = None) -> dict:
    """Plain JSON for the metrics file (`uncertainty` -> `ood`; keys in docs/RESULTS_SCHEMA.md)."""
    s = score_results(model, ds) if scored is None else scored
    fin = s.score[np.isfinite(s.score)]
    out = {
        "definition": "mean robust z (vs validation) of the components; no ground truth used",
        "components": list(model.scorer.components), "threshold": _num(model.scorer.threshold),
        "flag_level": model.scorer.flag_level, "frac_flagged": _num(np.mean(s.flag)) if len(s.flag) else None,
        "score_quantiles": {q: _num(np.quantile(fin, float(q) / 100)) for q in ("10", "50", "90")} if fin.size else {},
        "mean_component_z": {c: _num(np.nanmean(s.components[:, i])) if np.isfinite(s.components[:, i]).any()
                             else None for i, c in enumerate(COMPONENTS)},
        "slope": model.normalised.slope, "radius_level": RADIUS_LEVEL, "radius_from": model.radius_from,
        "weights": None if model.per_component is None else model.per_component.weights,
        "mean_radius_mm": _num(s.radius[:, 1:][np.isfinite(s.radius[:, 1:])].mean()) if np.isfinite(
            s.radius[:, 1:]).any() else None,
        "model": model.to_dict(),
    }
    radii = {k: c.radii(s.spread, None if "occluded" not in ds else ds["occluded"].values.astype(bool), s.score,
                        RADIUS_LEVEL, s.components) for k, c in model.calibrations().items()
             if any(abs(p - RADIUS_LEVEL) < 1e-9 for p in c.levels)}
    out["mean_radius_mm_by_kind"] = {k: _num(r[:, 1:][np.isfinite(r[:, 1:])].mean()) if np.isfinite(r[:, 1:]).any()
                                     else None for k, r in radii.items()}
    if "err" in ds or "gt" in ds:
        err = ds["err"].values.astype(np.float64) if "err" in ds else joint_errors_mm(ds["pred"].values,
                                                                                     ds["gt"].values)
        occ = ds["occluded"].values.astype(bool) if "occluded" in ds else None
        cov = {k: c.coverage(s.spread, err, occ, s.score, z=s.components) for k, c in model.calibrations().items()}
        out["coverage_conditional"] = {k: {level_key(p): _num(v) for p, v in c.items()} for k, c in cov.items()}
        for name, rows in (("flagged", s.flag), ("not_flagged", ~s.flag)):
            m = np.broadcast_to(rows[:, None], err.shape)
            out[f"coverage_normalised_90_{name}"] = _num(coverage(err, s.radius, m)) if rows.any() else None
            out[f"mean_error_mm_{name}"] = _num(err[:, 1:][rows].mean()) if rows.any() else None
    return out


__all__ = ["COMPONENTS", "SCORE_COMPONENTS", "ProportionDensity", "proportion_features", "FLAG_LEVEL", "OODModel", "OODScorer", "PoseDensity2D", "RADIUS_LEVEL", "ScoreCalibration",
           "Scored", "auroc", "fit_ood_model", "fit_component_weights", "fit_score_calibration", "fit_scorer",
           "load_calibration_rows", "save_calibration_rows", "model_from_metrics",
           "normalise_2d", "ood_summary", "raw_components", "reprojection_residual", "score_arrays",
           "score_results", "spread_vs_hk"]
