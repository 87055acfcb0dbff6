"""Data files cannot run code: every npz/npy loader refuses pickles that reference anything but numpy
arrays and plain containers, names the file, the key and the refused global, and runs nothing.
Legitimate VideoPose3D-style files still load exactly as `np.load(allow_pickle=True)` reads them."""
from __future__ import annotations

import builtins
import collections
import io
import os
import pickle
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from diffpose_viz import safe_io
from diffpose_viz.datasets import load_2d, load_3d, load_3dhp_test, read_gmm_2d, save_3d
from diffpose_viz.datasets.gmm_files import write_gmm_2d
from diffpose_viz.datasets.mpi3dhp import save_3dhp_test
from diffpose_viz.datasets.poses import PoseSet
from diffpose_viz.datasets.vp3d import save_2d, wrap_object
from diffpose_viz.errors import DataError, UnsafeDataError

FIX = Path(__file__).parent / "fixtures"


# --------------------------------------------------------------------------- payloads
class _Call:
    """Pickles as `func(*args)`: what an attacker puts in an object array."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(marker: Path) -> dict[str, tuple[_Call, str]]:
    """name -> (object whose unpickling would create `marker`, the `module.name` the pickle references)."""
    def ref(func) -> str:
        return f"{func.__module__}.{func.__name__}"

    return {
        "os.system": (_Call(os.system, f"touch '{marker}'"), ref(os.system)),
        "builtins.exec": (_Call(builtins.exec, f"open({str(marker)!r}, 'w').write('pwned')"), ref(builtins.exec)),
        "subprocess.call": (_Call(subprocess.call, ["touch", str(marker)]), ref(subprocess.call)),
    }


PAYLOADS = ["os.system", "builtins.exec", "subprocess.call"]


def _write_npz(path: Path, **members) -> Path:
    """np.savez with each value wrapped in a 0-d object array (the VideoPose3D layout)."""
    np.savez(path, **{k: wrap_object(v) for k, v in members.items()})
    return path


def _check_refused(err: pytest.ExceptionInfo, path: Path, key: str, refused: str, marker: Path) -> None:
    msg = str(err.value)
    assert not marker.exists(), "the payload ran"
    assert str(path) in msg, msg
    assert f"key {key!r}" in msg, msg
    assert f"'{refused}'" in msg, msg
    assert "expected" in msg and "found" in msg, msg


def _vp3d_3d(payload):
    return {"S1": {"Walking": payload}}


def _gmm_like(payload):
    return {"S1": {"Walking": [payload]}}


def _pose_cache(payload) -> dict:
    """A PoseSet cache whose `pose3d` member is an object array holding the payload."""
    n = 2
    return {"pose3d": wrap_object([payload]), "root": np.zeros((n, 3)), "pose2d": np.zeros((n, 17, 2)),
            "subject": np.array(["a"] * n), "action": np.array(["w"] * n), "camera": np.array(["c"] * n),
            "frame": np.arange(n), "res": np.ones((n, 2), int), "cameras_json": np.array("{}")}


# loader -> (function, key the payload sits under, the npz members holding it)
LOADERS = {
    "load_3d": (load_3d, "positions_3d", lambda p: {"positions_3d": wrap_object(_vp3d_3d(p))}),
    "load_2d": (load_2d, "positions_2d", lambda p: {"positions_2d": wrap_object(_gmm_like(p))}),
    "read_gmm_2d": (read_gmm_2d, "positions_2d", lambda p: {"positions_2d": wrap_object(_gmm_like(p))}),
    "load_3dhp_test": (load_3dhp_test, "data",
                       lambda p: {"data": wrap_object({"TS1": {"data_3d": p, "data_2d": p, "valid": p}})}),
    "safe_io.load_npz": (safe_io.load_npz, "positions_3d", lambda p: {"positions_3d": wrap_object(_vp3d_3d(p))}),
    "PoseSet.load_npz": (PoseSet.load_npz, "pose3d", _pose_cache),
}


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("loader", list(LOADERS))
def test_loaders_refuse_code_in_pickles(tmp_path, loader, payload):
    marker = tmp_path / "marker"
    obj, refused = _payloads(marker)[payload]
    load, key, build = LOADERS[loader]
    path = tmp_path / f"evil_{loader}.npz"
    np.savez(path, **build(obj))
    error = safe_io.UnsafePickleError if loader == "safe_io.load_npz" else UnsafeDataError
    with pytest.raises(error) as err:
        load(path)
    _check_refused(err, path, key, refused, marker)
    assert err.value.refused == refused
    if error is UnsafeDataError:
        assert isinstance(err.value, DataError)


def test_payload_is_real(tmp_path):
    """The crafted files do run their payload under np.load(allow_pickle=True): the tests above mean something."""
    marker = tmp_path / "marker"
    path = _write_npz(tmp_path / "evil.npz", positions_3d=_vp3d_3d(_payloads(marker)["builtins.exec"][0]))
    with np.load(path, allow_pickle=True) as z:
        z["positions_3d"]
    assert marker.read_text() == "pwned"


def test_payload_in_an_optional_key_is_refused_too(tmp_path):
    marker = tmp_path / "marker"
    obj, refused = _payloads(marker)["os.system"]
    good = np.load(FIX / "tiny_3d_17.npz", allow_pickle=True)["positions_3d"].item()
    path = _write_npz(tmp_path / "evil_meta.npz", positions_3d=good, metadata={"fps": 50, "x": obj})
    with pytest.raises(UnsafeDataError) as err:
        load_3d(path)
    _check_refused(err, path, "metadata", refused, marker)


def _raw_pickle_npz(path: Path, key: str, stream: str) -> Path:
    """An npz whose member `key` is an object array made of a hand-written pickle stream (protocol 0): no Python
    object behind it, as an attacker would write it."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": ()})
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{key}.npy", buf.getvalue() + stream.encode())
    return path


def test_npy_member_with_hand_written_protocol0_pickle(tmp_path):
    """A raw GLOBAL + REDUCE stream (no Python object behind it), as an attacker would write it."""
    marker = tmp_path / "marker"
    path = _raw_pickle_npz(tmp_path / "raw.npz", "positions_3d", f"cos\nsystem\n(S'touch {marker}'\ntR.")
    with pytest.raises(UnsafeDataError) as err:
        load_3d(path)
    _check_refused(err, path, "positions_3d", "os.system", marker)


def test_load_npy_refuses_reduce_of_a_refused_callable(tmp_path):
    marker = tmp_path / "marker"
    obj, refused = _payloads(marker)["subprocess.call"]
    path = tmp_path / "evil.npy"
    np.save(path, wrap_object({"a": obj}), allow_pickle=True)
    with pytest.raises(safe_io.UnsafePickleError) as err:
        safe_io.load_npy(path)
    assert not marker.exists() and str(path) in str(err.value) and f"'{refused}'" in str(err.value)


@pytest.mark.parametrize("module, name", [
    ("numpy", "load"),  # would unpickle again, unrestricted
    ("builtins", "getattr"), ("builtins", "eval"), ("__builtin__", "eval"),
    ("numpy.core.multiarray", "_reconstruct.__globals__"),
    ("numpy.ma.core", "_mareconstruct"), ("copyreg", "_reconstructor"), ("_codecs", "decode"),
])
def test_near_miss_globals_are_refused(tmp_path, module, name):
    path = _raw_pickle_npz(tmp_path / "near.npz", "x", f"c{module}\n{name}\n(tR.")
    with pytest.raises(safe_io.UnsafePickleError, match="refused to unpickle") as err:
        safe_io.load_npz(path)
    assert module in err.value.refused and "key 'x'" in str(err.value)


def test_codecs_encode_only_round_trips_latin1(tmp_path):
    stream = b"c_codecs\nencode\n(Vabc\nVrot13\ntR."
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": ()})
    path = tmp_path / "codec.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", buf.getvalue() + stream)
    with pytest.raises(safe_io.SafeLoadError, match="latin1"):
        safe_io.load_npz(path)


# --------------------------------------------------------------------------- legitimate files
def _assert_same(a, b, where="") -> None:
    """Deep equality with types: arrays (dtype, shape, values, object elements), dicts (key order), lists."""
    assert type(a) is type(b), (where, type(a), type(b))
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        if a.dtype.hasobject:
            for i, (x, y) in enumerate(zip(a.ravel(), b.ravel())):
                _assert_same(x, y, f"{where}[{i}]")
        else:
            np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, np.void):  # a record of a structured array
        assert a.dtype == b.dtype, where
        for name in a.dtype.names:
            _assert_same(a[name], b[name], f"{where}.{name}")
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, where


def _same_as_np_load(path: Path) -> None:
    with np.load(path, allow_pickle=True) as z:
        ref = {k: z[k] for k in z.files}
    got = safe_io.load_npz(path)
    assert list(got) == list(ref)
    for k in ref:
        _assert_same(ref[k], got[k], f"{path.name}:{k}")


@pytest.mark.parametrize("name", sorted(p.name for p in FIX.glob("*.npz")))
def test_fixtures_load_identically(name):
    _same_as_np_load(FIX / name)


def test_files_written_by_the_package_load_identically(tmp_path):
    m = load_3d(FIX / "tiny_3d_17.npz")
    _same_as_np_load(save_3d(tmp_path / "data_3d.npz", m.positions, cameras=m.cameras, metadata=m.metadata))
    k = load_2d(FIX / "tiny_2d.npz")
    _same_as_np_load(save_2d(tmp_path / "data_2d.npz", k.positions))
    g = read_gmm_2d(FIX / "tiny_gmm.npz")
    _same_as_np_load(write_gmm_2d(tmp_path / "gmm.npz", g.positions, {"note": "x"}))
    raw = np.load(FIX / "tiny_3dhp_test.npz", allow_pickle=True)["data"].item()
    _same_as_np_load(save_3dhp_test(tmp_path / "3dhp.npz", raw))
    # ...and the loaders give the same result from the copies as from the originals
    m2 = load_3d(tmp_path / "data_3d.npz")
    for s in m.subjects:
        for a in m.actions(s):
            np.testing.assert_array_equal(m2.sequence(s, a), m.sequence(s, a))
    assert m2.cameras == m.cameras and m2.fps == m.fps


def test_plain_containers_and_every_pickle_protocol(tmp_path):
    """Sets, tuples, complex, bytes, OrderedDict, defaultdict, numpy scalars and structured arrays, in
    pickles of protocol 0-5 (old tools wrote 2), all come back as np.load gives them."""
    meta = {
        "fps": 50.0, "pair": (1, "a"), "set": {1, 2}, "frozen": frozenset({3}), "c": 1 + 2j, "b": b"xy", "e": b"",
        "od": collections.OrderedDict(a=1), "dd": collections.defaultdict(list, {"a": [1]}), "f32": np.float32(2),
        "i64": np.int64(7), "flag": np.bool_(True), "none": None, "slice": slice(1, 5, 2),
        "empty": np.zeros((0, 17, 3), np.float32), "names": np.array(["a", "bb"]),
        "rec": np.zeros(2, [("x", "f4"), ("y", "i2")]), "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    }
    header = {"descr": "|O", "fortran_order": False, "shape": ()}
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, header)
        pickle.dump(wrap_object(meta), buf, protocol=proto)
        path = tmp_path / f"proto{proto}.npz"
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("metadata.npy", buf.getvalue())
        _same_as_np_load(path)


def test_numpy1_module_names_load(tmp_path):
    """Files written by numpy 1.x reference numpy.core.multiarray (VideoPose3D's released files)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": ()})
    stream = pickle.dumps(wrap_object({"S1": {"a": np.arange(6.0).reshape(1, 2, 3)}, "fps": np.float64(50)}),
                          protocol=2)
    old = stream.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert old != stream
    path = tmp_path / "old.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("positions_3d.npy", buf.getvalue() + old)
    got = safe_io.load_npz(path)["positions_3d"].item()
    np.testing.assert_array_equal(got["S1"]["a"], np.arange(6.0).reshape(1, 2, 3))
    assert got["fps"] == 50.0 and type(got["fps"]) is np.float64


def test_npy_versions_and_plain_members(tmp_path):
    arr = np.zeros(2, [("é", "f4"), ("o", "O")])
    arr["o"] = [{"k": np.ones(2)}, [1, 2]]
    path = tmp_path / "v3.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array(f, arr, version=(3, 0))
    _assert_same(np.load(path, allow_pickle=True), safe_io.load_npy(path))
    plain = tmp_path / "plain.npy"
    np.save(plain, np.arange(10).reshape(2, 5))
    _assert_same(np.load(plain), safe_io.load_npy(plain))
    mixed = tmp_path / "mixed.npz"
    np.savez(mixed, a=np.arange(3), s=np.array("text"), o=wrap_object({"x": 1}))
    _same_as_np_load(mixed)
    assert safe_io.load_npz(mixed, keys=["a"]).keys() == {"a"}
    with pytest.raises(safe_io.SafeLoadError, match="key 'nope'.*missing key"):
        safe_io.load_npz(mixed, keys=["nope"])


def test_bandai_files_load_identically():
    bandai = Path(__file__).resolve().parents[1].parent / "shared/data/bandai17"
    files = sorted(bandai.glob("*.npz")) if bandai.is_dir() else []
    if not files:
        pytest.skip(f"no bandai17 data at {bandai}")
    for f in files:
        _same_as_np_load(f)
