"""Bad input never ends in a traceback or silent nonsense: every broken data or results file raises one
clear exception naming the file, the key (or variable) and what was expected versus found, and the
dashboard shows such a file as an error box."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from diffpose_viz.datasets import build_pose_set, load_2d, load_3d, load_3dhp_test, read_gmm_2d
from diffpose_viz.datasets.mpi3dhp import MPI3DHP17_TO_H36M17, save_3dhp_test
from diffpose_viz.datasets.vp3d import atomic_savez, wrap_object
from diffpose_viz.errors import DataError, ResultsError
from diffpose_viz.results import load_results, write_results

from conftest import make_results_dataset

FIX = Path(__file__).parent / "fixtures"


@dataclass
class Case:
    load: Callable[[], object]
    path: Path
    key: str  # "key 'x'" for data files, "variable 'x'" / "attribute 'x'" for results files
    expected: str
    found: str
    error: type = DataError


CASES: dict[str, Callable[[Path], Case]] = {}


def case(fn: Callable[[Path], Case]) -> Callable[[Path], Case]:
    CASES[fn.__name__] = fn
    return fn


def _fixture_object(name: str, key: str):
    with np.load(FIX / name, allow_pickle=True) as z:
        return z[key].item()


def _good3d() -> dict:
    return _fixture_object("tiny_3d_17.npz", "positions_3d")


def _cams() -> dict:
    return _fixture_object("tiny_3d_17.npz", "cameras")


def _write(path: Path, **objects) -> Path:
    atomic_savez(path, **{k: wrap_object(v) for k, v in objects.items()})
    return path


def _set(index, value):
    """A mutation for the `_with_*` writers: a copy of the array with `value` at `index`."""
    def mutate(a):
        a = a.copy()
        a[index] = value
        return a
    return mutate


def _with_3d(tmp: Path, name: str, mutate, **extra) -> Case:
    """A copy of the 17-joint fixture with one sequence (alpha / walk 001) changed by `mutate`."""
    pos = _good3d()
    pos["alpha"]["walk 001"] = mutate(pos["alpha"]["walk 001"])
    path = _write(tmp / f"{name}.npz", positions_3d=pos, cameras=_cams(), **extra)
    return path


# --------------------------------------------------------------------------- npz containers
@case
def empty_file(tmp):
    p = tmp / "empty.npz"
    p.write_bytes(b"")
    return Case(lambda: load_3d(p), p, "key 'positions_3d'", "a .npz (zip) archive", "0 bytes")


@case
def not_a_zip(tmp):
    p = tmp / "text.npz"
    p.write_text("hello, I am a CSV file\n1,2,3\n")
    return Case(lambda: load_3d(p), p, "key 'positions_3d'", "a .npz (zip) archive", "a file starting with b'hell'")


@case
def truncated_zip(tmp):
    p = tmp / "truncated.npz"
    data = (FIX / "tiny_3d_17.npz").read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return Case(lambda: load_3d(p), p, "key 'positions_3d'", "a complete .npz archive", "truncated or corrupt zip")


@case
def corrupt_member(tmp):
    p = tmp / "corrupt.npz"
    data = bytearray((FIX / "tiny_3d_17.npz").read_bytes())
    data[200:260] = bytes(60)  # inside the first (compressed) member
    p.write_bytes(bytes(data))
    return Case(lambda: load_3d(p), p, "key 'positions_3d'", "a readable zip member", "a truncated or corrupt entry")


@case
def npy_instead_of_npz(tmp):
    p = tmp / "plain.npz"
    with open(p, "wb") as f:
        np.save(f, np.zeros((4, 17, 3)))
    return Case(lambda: load_3d(p), p, "key 'positions_3d'", "a .npz (zip) archive", "a single-array .npy file")


@case
def missing_key(tmp):
    p = _write(tmp / "nokey.npz", metadata={"fps": 50})
    return Case(lambda: load_3d(p), p, "key 'positions_3d'", "key 'positions_3d'", "keys ['metadata']")


@case
def plain_array_instead_of_dict(tmp):
    p = tmp / "plainkey.npz"
    atomic_savez(p, positions_3d=np.zeros((4, 17, 3)))
    return Case(lambda: load_3d(p), p, "key 'positions_3d'", "0-d object array holding a pickled dict",
                "array dtype float64 shape (4, 17, 3)")


@case
def no_subjects(tmp):
    p = _write(tmp / "nosubj.npz", positions_3d={})
    return Case(lambda: load_3d(p), p, "key 'positions_3d'", "at least one subject", "an empty dict")


@case
def subject_not_a_dict(tmp):
    p = _write(tmp / "subj.npz", positions_3d={"S1": np.zeros((4, 17, 3))})
    return Case(lambda: load_3d(p), p, "key 'positions_3d/S1'", "dict[action] -> array", "ndarray")


# --------------------------------------------------------------------------- 3D mocap
@case
def wrong_joint_count(tmp):
    p = _with_3d(tmp, "joints16", lambda a: a[:, :16])
    return Case(lambda: load_3d(p), p, "key 'positions_3d/alpha/walk 001'", "(T, 32, 3) or (T, 17, 3)",
                "shape (8, 16, 3)")


@case
def wrong_coordinate_count(tmp):
    p = _with_3d(tmp, "xy", lambda a: a[..., :2])
    return Case(lambda: load_3d(p), p, "key 'positions_3d/alpha/walk 001'", "3 coordinates", "shape (8, 17, 2)")


@case
def ragged_sequence(tmp):
    p = _with_3d(tmp, "ragged", lambda a: [a[0], a[1, :5]])
    return Case(lambda: load_3d(p), p, "key 'positions_3d/alpha/walk 001'", "(T, 32, 3) or (T, 17, 3)",
                "a list numpy cannot stack")


@case
def text_instead_of_numbers(tmp):
    p = _with_3d(tmp, "text", lambda a: a.astype(str))
    return Case(lambda: load_3d(p), p, "key 'positions_3d/alpha/walk 001'", "a float array", "dtype <U")


@case
def nan_in_3d(tmp):
    p = _with_3d(tmp, "nan3d", _set((3, 7, 1), np.nan))
    return Case(lambda: load_3d(p), p, "key 'positions_3d/alpha/walk 001'", "finite values", "NaN/inf")


@case
def millimetres_3d(tmp):
    pos = {s: {a: v * 1000 for a, v in acts.items()} for s, acts in _good3d().items()}
    p = _write(tmp / "mm.npz", positions_3d=pos, cameras=_cams())
    return Case(lambda: load_3d(p), p, "key 'positions_3d/alpha/walk 001'", "metres", "millimetres")


@case
def centimetres_3d(tmp):
    p = _with_3d(tmp, "cm", lambda a: a * 100)
    return Case(lambda: load_3d(p), p, "key 'positions_3d/alpha/walk 001'", "metres", "centimetres")


@case
def one_take_in_millimetres(tmp):
    pos = _good3d()
    pos["gamma"]["wave 002.2"] = pos["gamma"]["wave 002.2"] * 1000  # the last of 9 takes; the others are fine
    p = _write(tmp / "mixed.npz", positions_3d=pos, cameras=_cams())
    return Case(lambda: load_3d(p), p, "key 'positions_3d/gamma/wave 002.2'", "metres", "millimetres")


@case
def empty_sequence(tmp):
    p = _with_3d(tmp, "zero", lambda a: a[:0])
    return Case(lambda: load_3d(p), p, "key 'positions_3d/alpha/walk 001'", ">= 1 frame", "0 frames")


@case
def bad_frame_rate(tmp):
    p = _with_3d(tmp, "fps", lambda a: a, metadata={"fps": "fast"})
    return Case(lambda: load_3d(p), p, "key 'metadata/fps'", "a positive number", "'fast'")


@case
def cameras_not_a_list(tmp):
    cams = _cams()
    cams["beta"] = {"front": cams["beta"][0]}
    pos = _good3d()
    p = _write(tmp / "camdict.npz", positions_3d=pos, cameras=cams)
    return Case(lambda: load_3d(p), p, "key 'cameras/beta'", "a list of camera dicts", "dict")


@case
def camera_without_resolution(tmp):
    cams = _cams()
    del cams["alpha"][1]["res_w"]
    p = _write(tmp / "camres.npz", positions_3d=_good3d(), cameras=cams)
    return Case(lambda: load_3d(p), p, "key 'cameras/alpha[1]'", "res_w", "keys [")


# --------------------------------------------------------------------------- 2D keypoints
def _with_2d(tmp: Path, name: str, mutate) -> Path:
    pos = _fixture_object("tiny_2d.npz", "positions_2d")
    pos["alpha"]["walk 001"][1] = mutate(pos["alpha"]["walk 001"][1])
    return _write(tmp / f"{name}.npz", positions_2d=pos, metadata={"num_joints": 17})


@case
def keypoints_with_confidence_column(tmp):
    p = _with_2d(tmp, "kp3", lambda a: np.concatenate([a, np.ones_like(a[..., :1])], -1))
    return Case(lambda: load_2d(p), p, "key 'positions_2d/alpha/walk 001[1]'", "2 pixel coordinates",
                "shape (8, 17, 3)")


@case
def keypoints_normalised_not_pixels(tmp):
    p = _with_2d(tmp, "kpnorm", lambda a: a / 640 * 2 - 1)
    return Case(lambda: load_2d(p), p, "key 'positions_2d/alpha/walk 001[1]'", "pixel coordinates", "all |values| <=")


@case
def keypoints_infinite(tmp):
    p = _with_2d(tmp, "kpinf", _set((0, 0, 0), np.inf))
    return Case(lambda: load_2d(p), p, "key 'positions_2d/alpha/walk 001[1]'", "finite values or NaN", "inf")


@case
def keypoints_missing_key(tmp):
    p = _write(tmp / "kpnokey.npz", keypoints={"S1": {}})
    return Case(lambda: load_2d(p), p, "key 'positions_2d'", "key 'positions_2d'", "keys ['keypoints']")


@case
def keypoints_cameras_as_dict(tmp):
    pos = _fixture_object("tiny_2d.npz", "positions_2d")
    pos["beta"]["wave 002.1"] = {"front": pos["beta"]["wave 002.1"][0]}
    p = _write(tmp / "kpcamdict.npz", positions_2d=pos)
    return Case(lambda: load_2d(p), p, "key 'positions_2d/beta/wave 002.1'", "a list of per-camera", "dict")


# --------------------------------------------------------------------------- 2D against 3D
def _pair(tmp: Path, name: str, mutate) -> Case:
    pos = _fixture_object("tiny_2d.npz", "positions_2d")
    mutate(pos)
    p = _write(tmp / f"{name}.npz", positions_2d=pos)
    mocap = load_3d(FIX / "tiny_3d_17.npz")
    return Case(lambda: build_pose_set(mocap, mocap.subjects, poses_2d=load_2d(p)), p, "", "expected", "found")


@case
def subject_missing_in_2d(tmp):
    c = _pair(tmp, "nosubject2d", lambda pos: pos.pop("gamma"))
    c.key, c.expected, c.found = "key 'positions_2d/gamma'", "the 3D file's subjects", "subjects ['alpha', 'beta']"
    return c


@case
def action_missing_in_2d(tmp):
    c = _pair(tmp, "noaction2d", lambda pos: pos["beta"].pop("wave 002.2"))
    c.key, c.expected, c.found = ("key 'positions_2d/beta/wave 002.2'", "an entry for every 3D sequence",
                                  "actions ['walk 001', 'wave 002.1']")
    return c


@case
def fewer_cameras_in_2d(tmp):
    c = _pair(tmp, "onecam2d", lambda pos: pos["alpha"]["walk 001"].pop())
    c.key, c.expected, c.found = "key 'positions_2d/alpha/walk 001'", "> 1 camera arrays", "1 camera array(s)"
    return c


@case
def shorter_2d_than_3d(tmp):
    def cut(pos):
        pos["alpha"]["wave 002.1"] = [v[:3] for v in pos["alpha"]["wave 002.1"]]
    c = _pair(tmp, "short2d", cut)
    c.key, c.expected, c.found = "key 'positions_2d/alpha/wave 002.1[0]'", ">= 6 frames", "3 frames"
    return c


# --------------------------------------------------------------------------- GMM files
def _with_gmm(tmp: Path, name: str, mutate) -> Path:
    pos = _fixture_object("tiny_gmm.npz", "positions_2d")
    pos["alpha"]["walk 001"][0] = mutate(pos["alpha"]["walk 001"][0].copy())
    return _write(tmp / f"{name}.npz", positions_2d=pos, metadata={"num_joints": 17})


GMM_KEY = "key 'positions_2d/alpha/walk 001[0]'"


@case
def gmm_weights_do_not_sum_to_one(tmp):
    p = _with_gmm(tmp, "gmmw", _set((2, 5, slice(None), 0), [0.5, 0.3, 0.1]))
    return Case(lambda: read_gmm_2d(p), p, GMM_KEY, "|sum - 1| <= 0.001", "max |sum - 1| = 0.1")


@case
def gmm_negative_spread(tmp):
    p = _with_gmm(tmp, "gmmspread", _set((0, 0, 1, 4), -2.0))
    return Case(lambda: read_gmm_2d(p), p, GMM_KEY, "spread_u, spread_v >= 0", "min -2")


@case
def gmm_nan(tmp):
    p = _with_gmm(tmp, "gmmnan", _set((1, 3, 0, 1), np.nan))
    return Case(lambda: read_gmm_2d(p), p, GMM_KEY, "finite values", "1 non-finite")


@case
def gmm_means_normalised(tmp):
    def mutate(a):
        a[..., 1:3] = a[..., 1:3] / 640 * 2 - 1
        a[..., 3:5] /= 320
        return a
    p = _with_gmm(tmp, "gmmnorm", mutate)
    return Case(lambda: read_gmm_2d(p), p, GMM_KEY, "pixel coordinates", "all |values| <=")


@case
def gmm_four_columns(tmp):
    p = _with_gmm(tmp, "gmm4", lambda a: a[..., :4])
    return Case(lambda: read_gmm_2d(p), p, GMM_KEY, "5 = [weight, mean_u, mean_v, spread_u, spread_v]",
                "shape (8, 17, 3, 4)")


@case
def gmm_actions_not_a_dict(tmp):
    pos = _fixture_object("tiny_gmm.npz", "positions_2d")
    pos["alpha"] = list(pos["alpha"].values())
    p = _write(tmp / "gmmlist.npz", positions_2d=pos)
    return Case(lambda: read_gmm_2d(p), p, "key 'positions_2d/alpha'", "dict[action] -> array", "list")


# --------------------------------------------------------------------------- MPI-INF-3DHP test file
def _with_3dhp(tmp: Path, name: str, mutate) -> Path:
    data = _fixture_object("tiny_3dhp_test.npz", "data")
    mutate(data)
    return save_3dhp_test(tmp / f"{name}.npz", data)


@case
def mpi3dhp_metres_read_as_millimetres(tmp):
    def mutate(data):
        for entry in data.values():
            entry["data_3d"] = entry["data_3d"] / 1000
    p = _with_3dhp(tmp, "3dhpm", mutate)
    return Case(lambda: load_3dhp_test(p, units="mm"), p, "key 'data/TS1/data_3d'", "'mm'", "('m')")


@case
def mpi3dhp_in_h36m_joint_order(tmp):
    def mutate(data):
        for entry in data.values():  # someone saved H36M-17 order instead of 3DHP-17
            entry["data_3d"] = entry["data_3d"][:, MPI3DHP17_TO_H36M17]
            entry["data_2d"] = entry["data_2d"][:, MPI3DHP17_TO_H36M17]
    p = _with_3dhp(tmp, "3dhporder", mutate)
    return Case(lambda: load_3dhp_test(p), p, "key 'data/TS1/data_3d'", "3DHP-17 joint order", " vs ")


@case
def mpi3dhp_missing_2d(tmp):
    p = _with_3dhp(tmp, "3dhpno2d", lambda data: data["TS5"].pop("data_2d"))
    return Case(lambda: load_3dhp_test(p), p, "key 'data/TS5/data_2d'", "data_3d, data_2d, valid",
                "keys ['data_3d', 'valid']")


@case
def mpi3dhp_wrong_shape(tmp):
    def mutate(data):
        data["TS1"]["data_3d"] = data["TS1"]["data_3d"][:, :16]
    p = _with_3dhp(tmp, "3dhpshape", mutate)
    return Case(lambda: load_3dhp_test(p), p, "key 'data/TS1/data_3d'", "(n, 17, 3)", "shape (5, 16, 3)")


@case
def mpi3dhp_frame_counts_differ(tmp):
    def mutate(data):
        data["TS1"]["valid"] = data["TS1"]["valid"][:-1]
    p = _with_3dhp(tmp, "3dhpcount", mutate)
    return Case(lambda: load_3dhp_test(p), p, "key 'data/TS1'", "equal n for data_3d/data_2d/valid", "5/5/4")


@case
def mpi3dhp_nan_in_valid_frame(tmp):
    def mutate(data):
        data["TS1"]["data_3d"][1, 4, 2] = np.nan
    p = _with_3dhp(tmp, "3dhpnan", mutate)
    return Case(lambda: load_3dhp_test(p), p, "key 'data/TS1/data_3d'", "finite values where valid = 1", "NaN/inf")


@case
def mpi3dhp_entry_not_a_dict(tmp):
    def mutate(data):
        data["TS5"] = np.zeros((4, 17, 3))
    data = _fixture_object("tiny_3dhp_test.npz", "data")
    mutate(data)
    p = _write(tmp / "3dhpentry.npz", data=data)
    return Case(lambda: load_3dhp_test(p), p, "key 'data/TS5'", "a dict with data_3d, data_2d, valid", "ndarray")


# --------------------------------------------------------------------------- results files
def _results(tmp: Path, name: str, mutate, **kw) -> Path:
    ds = make_results_dataset(**kw)
    ds = mutate(ds) or ds
    return write_results(ds, tmp / f"{name}.nc")


@case
def results_nan_prediction(tmp):
    def mutate(ds):
        ds["pred"].values[2, 5] = np.nan
    p = _results(tmp, "nanpred", mutate)
    return Case(lambda: load_results(p), p, "variable 'pred'", "finite values (NaN only in samples flagged",
                "NaN/inf", ResultsError)


@case
def results_err_does_not_match(tmp):
    def mutate(ds):
        ds["err"].values[4, 13] += 5.0
    p = _results(tmp, "errmismatch", mutate)
    return Case(lambda: load_results(p), p, "variable 'err'", "1000 * ||pred - gt|| per joint", "max difference 5",
                ResultsError)


@case
def results_negative_error(tmp):
    def mutate(ds):
        ds["err_hyp"].values[1, 0, 3] = -12.0
    p = _results(tmp, "errneg", mutate)
    return Case(lambda: load_results(p), p, "variable 'err_hyp'", "values >= 0", "-12", ResultsError)


@case
def results_ground_truth_in_millimetres(tmp):
    def mutate(ds):
        ds["gt"].values[:] *= 1000
    p = _results(tmp, "gtmm", mutate)
    return Case(lambda: load_results(p), p, "variable 'gt'", "bones <= 1.5 m", "median bone", ResultsError)


@case
def results_one_sample_in_millimetres(tmp):
    def mutate(ds):
        ds["gt"].values[3] *= 1000  # a bone of metres in one sample, the median still looks fine
    p = _results(tmp, "gtmm1", mutate)
    return Case(lambda: load_results(p), p, "variable 'gt'", "bones <= 1.5 m", "at sample 3", ResultsError)


@case
def results_prediction_in_millimetres(tmp):
    def mutate(ds):
        for name in ("pred", "hypotheses", "pred_jagg"):
            ds[name].values[:] *= 1000
        ds["err"].values[:] = np.linalg.norm(ds["pred"].values - ds["gt"].values, axis=-1) * 1000
    p = _results(tmp, "predmm", mutate)
    return Case(lambda: load_results(p), p, "variable 'pred'", "a median bone <= 50", "median bone", ResultsError)


@case
def results_config_not_json(tmp):
    def mutate(ds):
        ds.attrs["config"] = "{method: diffpose"
    p = _results(tmp, "config", mutate)
    return Case(lambda: load_results(p), p, "attribute 'config'", "a JSON object string", "'{method: diffpose'",
                ResultsError)


@case
def results_missing_variable(tmp):
    p = _results(tmp, "nopred", lambda ds: ds.drop_vars("pred_jagg"))
    return Case(lambda: load_results(p), p, "variable 'pred_jagg'", "variables [", "variables [", ResultsError)


@case
def results_text_instead_of_numbers(tmp):
    p = _results(tmp, "texterr", lambda ds: ds.assign(err=ds["err"].astype(str)))
    return Case(lambda: load_results(p), p, "variable 'err'", "numbers", "dtype <U", ResultsError)


@case
def results_zero_samples(tmp):
    p = _results(tmp, "empty", lambda ds: ds.isel(sample=[]))
    return Case(lambda: load_results(p), p, "no samples", "at least 1 sample", "0 samples", ResultsError)


@case
def results_every_sample_missing(tmp):
    def mutate(ds):
        n = ds.sizes["sample"]
        ds["missing"] = ("sample", np.ones(n, bool))
        ds["missing_reason"] = ("sample", np.array(["no person"] * n))
    p = _results(tmp, "allmissing", mutate)
    return Case(lambda: load_results(p), p, "variable 'missing'", "at least one sample with an estimate",
                "14 of 14 missing", ResultsError)


@case
def results_missing_flag_not_boolean(tmp):
    def mutate(ds):
        ds["missing"] = ("sample", np.full(ds.sizes["sample"], 0.5))
    p = _results(tmp, "flag", mutate)
    return Case(lambda: load_results(p), p, "variable 'missing'", "bool (or 0/1)", "dtype float64", ResultsError)


@case
def results_not_netcdf(tmp):
    p = tmp / "garbage.nc"
    p.write_bytes(b"\x89HDF? no, just bytes")
    return Case(lambda: load_results(p), p, "cannot read as netCDF", "a netCDF4 results file", "an unreadable file",
                ResultsError)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_raises_a_clear_error(tmp_path, name):
    c = CASES[name](tmp_path)
    with pytest.raises(Exception) as err:
        c.load()
    assert isinstance(err.value, c.error), f"{type(err.value).__name__}: {err.value}"
    msg = str(err.value)
    assert str(c.path) in msg, msg
    assert c.key in msg, msg
    assert "(expected " in msg and ", found " in msg, msg
    expected, found = msg.rsplit("(expected ", 1)[1].split(", found ", 1)
    assert c.expected in expected, msg
    assert c.found in found, msg


def test_there_are_enough_cases():
    assert len(CASES) >= 25


# --------------------------------------------------------------------------- the dashboard
DASH = Path(__file__).resolve().parents[1] / "dashboard"
PAGES = {p.stem.split("_", 1)[1]: str(p) for p in (DASH / "pages").glob("*.py")}


def _all_text(at) -> str:
    """Every string the page shows (elements' protobufs), to look for "nan mm" and tracebacks."""
    out = []

    def walk(node):
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(out)


def _page(path: str, folder: Path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DIFFPOSE_VIZ_RESULTS", str(folder))
    return AppTest.from_file(path, default_timeout=60).run()


@pytest.fixture
def bad_folder(tmp_path):
    """diffpose.nc holds NaN predictions (no missing flag), the rest is fine."""
    ds = make_results_dataset()
    ds["pred"].values[3, 4] = np.nan
    ds["err"].values[3, 4] = np.nan
    write_results(ds, tmp_path / "diffpose.nc")
    return tmp_path


@pytest.fixture
def empty_folder(tmp_path):
    """diffpose.nc has all variables but zero samples."""
    write_results(make_results_dataset().isel(sample=[]), tmp_path / "diffpose.nc")
    return tmp_path


@pytest.mark.parametrize("folder, message", [("bad_folder", "variable 'pred'"), ("empty_folder", "no samples")])
def test_gmm_page_shows_an_error_box(folder, message, request, monkeypatch):
    directory = request.getfixturevalue(folder)
    at = _page(PAGES["GMM_components"], directory, monkeypatch)
    assert not at.exception, [e.value for e in at.exception]
    assert at.error, "no error box"
    assert message in at.error[0].value and str(directory / "diffpose.nc") in at.error[0].value
    text = _all_text(at)
    assert "nan mm" not in text.lower() and "Traceback" not in text


@pytest.mark.parametrize("page", ["app", "Per_joint_errors", "Trajectory_explorer", "Failure_cases"])
def test_other_pages_show_an_error_box_for_an_invalid_file(page, bad_folder, monkeypatch):
    at = _page(str(DASH / "Overview.py") if page == "app" else PAGES[page], bad_folder, monkeypatch)
    assert not at.exception, [e.value for e in at.exception]
    assert at.error and "variable 'pred'" in at.error[0].value
    assert "nan mm" not in _all_text(at).lower()


def test_gmm_page_with_a_flagged_missing_sample_shows_no_nan(tmp_path, monkeypatch):
    ds = make_results_dataset()
    n = ds.sizes["sample"]
    for name in ("pred", "hypotheses", "pred_jagg", "err", "err_hyp", "err_step", "gmm_weight", "gmm_mean",
                 "gmm_var", "trajectory", "x0_estimate"):
        ds[name].values[0] = np.nan
    ds["missing"] = ("sample", np.arange(n) == 0)
    ds["missing_reason"] = ("sample", np.where(np.arange(n) == 0, "no detection", ""))
    write_results(ds, tmp_path / "diffpose.nc")
    for page in ("GMM_components", "Per_joint_errors", "Trajectory_explorer"):
        at = _page(PAGES[page], tmp_path, monkeypatch)
        assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
        assert "nan mm" not in _all_text(at).lower(), page
