"""The results file (diffpose_viz/results.py): what stays valid (NaN only in samples flagged missing), what the
loader and validator say without a file, and that xarray reads back what we write."""
from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from diffpose_viz.errors import ResultsError
from diffpose_viz.results import drop_missing, load_results, validate_results, write_results

from conftest import make_results_dataset


# --------------------------------------------------------------------------- what stays valid
def test_nan_is_allowed_only_in_samples_flagged_missing(tmp_path):
    ds = make_results_dataset()
    n = ds.sizes["sample"]
    for name in ("pred", "hypotheses", "pred_jagg", "err", "err_hyp", "err_step", "trajectory", "x0_estimate"):
        ds[name].values[2] = np.nan
    ds["missing"] = ("sample", np.arange(n) == 2, {"units": "1"})
    ds["missing_reason"] = ("sample", np.where(np.arange(n) == 2, "detector found no person", ""), {"units": "1"})
    path = write_results(ds, tmp_path / "flagged.nc")
    kept = load_results(path)  # readers get the usable samples only
    assert kept.sizes["sample"] == n - 1 and kept.attrs["missing_dropped"] == 1
    assert np.isfinite(kept["err"].values).all()
    full = load_results(path, keep_missing=True)
    assert full.sizes["sample"] == n and bool(full["missing"].values[2])
    assert str(full["missing_reason"].values[2]) == "detector found no person"
    ds["missing"].values[2] = False
    with pytest.raises(ResultsError, match="variable 'pred'.*sample 2"):
        validate_results(ds, "in memory")


def test_nan_2d_input_is_allowed_where_confidence_is_zero():
    ds = make_results_dataset()
    ds["input_2d"].values[1, 13] = np.nan
    ds["confidence"].values[1, 13] = 0.0
    validate_results(ds)
    ds["confidence"].values[1, 13] = 0.4
    with pytest.raises(ResultsError, match=r"variable 'input_2d'.*sample 1, joint 'left_wrist'"):
        validate_results(ds)


def test_messages_without_a_file_name_the_source():
    ds = make_results_dataset()
    ds["err"].values[0, 0] = -1
    with pytest.raises(ResultsError, match=r"^in memory: variable 'err'"):
        validate_results(ds, "in memory")
    with pytest.raises(ResultsError, match=r"^in memory: no samples"):
        validate_results(make_results_dataset().isel(sample=[]), "in memory")
    assert drop_missing(make_results_dataset()).sizes["sample"] == 14  # nothing flagged: unchanged


def test_results_from_build_results_with_missing_flags_are_valid():
    from diffpose_viz.results import Estimates, Inputs2D, Provenance, Samples, build_results

    ref = make_results_dataset(with_trajectory=False, n_kernels=0)
    n = ref.sizes["sample"]
    flags = np.zeros(n, bool)
    flags[0] = True
    hyps = ref["hypotheses"].values.copy()
    hyps[0] = np.nan
    ds = build_results(
        Inputs2D(ref["input_2d"].values, ref["confidence"].values, ref["occluded"].values),
        Estimates(hyps, np.where(flags[:, None, None], np.nan, ref["pred"].values),
                  np.where(flags[:, None, None], np.nan, ref["pred_jagg"].values)),
        Samples(ref["subject"].values, ref["action"].values, ref["camera"].values, ref["frame"].values,
                missing=flags, missing_reason=["no 2D"] + [""] * (n - 1)),
        Provenance("m", {"a": 1}, {"numpy": np.__version__}, "d", "test"), gt=ref["gt"].values)
    validate_results(ds)
    assert json.loads(ds.attrs["config"]) == {"a": 1}
    assert ds["missing"].dtype == bool and str(ds["missing_reason"].values[0]) == "no 2D"


def test_xarray_reads_what_we_write(tmp_path):
    """The flag round-trips through netCDF as bool (xarray encodes it), so readers can rely on it."""
    ds = make_results_dataset()
    ds["missing"] = ("sample", np.zeros(ds.sizes["sample"], bool))
    path = write_results(ds, tmp_path / "f.nc")
    assert xr.load_dataset(path)["missing"].dtype == bool
