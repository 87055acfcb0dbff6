"""Nothing lost, nothing hung: a command that fails (bad data, a bad context checkpoint, an error half-way, a
kill) never destroys a finished run or results file; evaluate/sample refuse an existing --out without --force;
a failed command leaves no results file that looks finished; inputs that are not regular files are refused
before they are opened (a FIFO must not block); lying array headers and degenerate data are refused naming
file and key; vague messages now name their source; memory is estimated before a large allocation."""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from diffpose_viz import atomic
from diffpose_viz.cli import main
from diffpose_viz.datasets.vp3d import atomic_savez, wrap_object
from diffpose_viz.safe_io import load_npz

from test_cli_bad_input import _kp_json, assert_refused, run_cli, train_args
from tiny_runs import REPO


pytestmark = pytest.mark.usefixtures("one_thread")


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative path -> bytes), the H_K cache included."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(tiny_data, tmp_path_factory) -> Path:  # noqa: F811
    out = tmp_path_factory.mktemp("writes") / "run"
    assert main([str(a) for a in train_args(tiny_data, out)]) == 0
    return out


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    """A private copy of the finished run (tests replace or damage it)."""
    target = tmp_path / "run"
    shutil.copytree(finished_run, target)
    (target / "my_notes.txt").write_text("kept by the user")
    return target


def _no_leftovers(run: Path) -> None:
    stray = [p.name for p in run.parent.iterdir() if p.name.startswith(f".{run.name}.")]
    assert not stray, f"staging folders left behind: {stray}"


def _bad_text(path: Path, text: str = "not a data file\n") -> Path:
    path.write_text(text)
    return path


def test_force_with_a_bad_data_file_keeps_the_earlier_run(run_copy, tiny_data, tmp_path, capsys):  # noqa: F811
    before = _snapshot(run_copy)
    bad = _bad_text(tmp_path / "broken.npz")
    code, text = run_cli(capsys, *train_args(tiny_data, run_copy, "--force", **{"data.path": bad}))
    assert_refused(code, text, str(bad))
    assert _snapshot(run_copy) == before  # best.pt, last.pt, train_log.jsonl, config.yaml, cache: byte-identical
    _no_leftovers(run_copy)


def test_force_with_a_bad_context_checkpoint_keeps_the_earlier_run(run_copy, tiny_data, tmp_path, capsys):  # noqa: F811
    before = _snapshot(run_copy)
    bad = _bad_text(tmp_path / "lifter.pt", "this is no checkpoint\n")
    code, text = run_cli(capsys, *train_args(tiny_data, run_copy, "--force", method="diffpose",
                                              **{"model.context_checkpoint": bad}))
    assert_refused(code, text, str(bad))
    assert _snapshot(run_copy) == before
    _no_leftovers(run_copy)


def test_force_failing_after_a_checkpoint_keeps_the_earlier_run(run_copy, tiny_data, capsys, monkeypatch):  # noqa: F811
    """An error half-way through training (after the new run wrote its first checkpoint)."""
    from diffpose_viz.training import trainer

    real, calls = trainer.save_checkpoint, []

    def save_then_fail(path, payload):
        real(path, payload)
        calls.append(Path(path))
        if len(calls) == 2:
            raise RuntimeError("disk gone half-way")

    monkeypatch.setattr(trainer, "save_checkpoint", save_then_fail)
    before = _snapshot(run_copy)
    code, text = run_cli(capsys, *train_args(tiny_data, run_copy, "--force"))
    assert_refused(code, text, "disk gone half-way")
    assert calls and all(p.parent != run_copy for p in calls), "the new run was written into the earlier one"
    assert _snapshot(run_copy) == before
    _no_leftovers(run_copy)


def test_force_killed_mid_training_keeps_the_earlier_run(run_copy, tiny_data):  # noqa: F811
    before = _snapshot(run_copy)
    args = [str(a) for a in train_args(tiny_data, run_copy, "--force", **{
        "train.max_steps": 100000, "train.epochs": 10000, "train.eval_every": 1})]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "diffpose_viz.cli", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    staging = atomic.staging_dir(run_copy)
    try:
        deadline = time.time() + 120
        while not (staging / "last.pt").exists():  # the new run is writing checkpoints
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.time() < deadline, "the new run never started checkpointing"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert _snapshot(run_copy) == before
    # The next attempt discards the killed one's staging folder and replaces the run.
    assert main([str(a) for a in train_args(tiny_data, run_copy, "--force")]) == 0
    assert (run_copy / "my_notes.txt").read_text() == "kept by the user"
    _no_leftovers(run_copy)


def test_force_that_succeeds_replaces_the_run_and_keeps_user_files(run_copy, tiny_data, capsys):  # noqa: F811
    old_log = (run_copy / "train_log.jsonl").read_text()
    code, text = run_cli(capsys, *train_args(tiny_data, run_copy, "--force", **{"train.max_steps": 3}))
    assert code == 0, text
    log = [json.loads(line) for line in (run_copy / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 3 and (run_copy / "train_log.jsonl").read_text() != old_log
    assert (run_copy / "my_notes.txt").read_text() == "kept by the user"
    assert str(run_copy / "best.pt") in text  # the paths printed are the final ones, not the staging folder's
    _no_leftovers(run_copy)


def _evaluate(ckpt: Path, out: Path, *extra) -> list:
    return ["evaluate", ckpt, "--out", out, "--no-progress", "--hypotheses", 2, "--steps", 2, *extra]


def test_evaluate_refuses_an_existing_results_file(finished_run, tmp_path, capsys):
    out = tmp_path / "r.nc"
    code, text = run_cli(capsys, *_evaluate(finished_run / "best.pt", out))
    assert code == 0, text
    before = _snapshot(tmp_path)
    assert set(before) == {"r.nc", "r.metrics.json"}
    code, text = run_cli(capsys, *_evaluate(finished_run / "best.pt", out))
    assert_refused(code, text, str(out), "--force")
    assert _snapshot(tmp_path) == before
    code, text = run_cli(capsys, *_evaluate(finished_run / "best.pt", out, "--force", "--hypotheses", 3))
    assert code == 0, text
    assert json.loads((tmp_path / "r.metrics.json").read_text())["n_hypotheses"] == 3


def test_evaluate_refuses_when_only_the_metrics_exist(finished_run, tmp_path, capsys):
    (tmp_path / "r.metrics.json").write_text("{}")
    code, text = run_cli(capsys, *_evaluate(finished_run / "best.pt", tmp_path / "r.nc"))
    assert_refused(code, text, "r.metrics.json", "--force")
    assert (tmp_path / "r.metrics.json").read_text() == "{}"


def test_sample_refuses_an_existing_results_file(finished_run, tmp_path, capsys):
    out = tmp_path / "mine.nc"
    args = ["sample", finished_run / "best.pt", "--input", _kp_json(tmp_path), "--image-size", 1000, 1002,
            "--hypotheses", 2, "--steps", 2, "--out", out]
    code, text = run_cli(capsys, *args)
    assert code == 0, text
    before = out.read_bytes()
    code, text = run_cli(capsys, *args)
    assert_refused(code, text, str(out), "--force")
    assert out.read_bytes() == before
    code, text = run_cli(capsys, *args, "--force")
    assert code == 0, text


def test_evaluate_failing_after_lifting_leaves_no_results_without_metrics(finished_run, tmp_path, capsys,
                                                                          monkeypatch):
    from diffpose_viz.evaluation import evaluate as ev

    def fail(*args, **kwargs):
        raise RuntimeError("calibration failed")

    monkeypatch.setattr(ev, "_uncertainty", fail)
    code, text = run_cli(capsys, *_evaluate(finished_run / "best.pt", tmp_path / "r.nc"))
    assert_refused(code, text, "calibration failed")
    assert list(tmp_path.iterdir()) == []  # neither a results file nor a temporary


def test_evaluate_force_failing_keeps_the_earlier_results(finished_run, tmp_path, capsys, monkeypatch):
    from diffpose_viz.evaluation import evaluate as ev

    out = tmp_path / "r.nc"
    assert run_cli(capsys, *_evaluate(finished_run / "best.pt", out))[0] == 0
    before = _snapshot(tmp_path)
    monkeypatch.setattr(ev, "summarize", lambda ds: (_ for _ in ()).throw(RuntimeError("summary failed")))
    code, text = run_cli(capsys, *_evaluate(finished_run / "best.pt", out, "--force"))
    assert_refused(code, text, "summary failed")
    assert _snapshot(tmp_path) == before


def test_wild_refuses_an_earlier_output_folder(finished_run, tmp_path, capsys):
    from diffpose_viz.wild import mediapipe_detector

    if not mediapipe_detector.mediapipe_available():
        pytest.skip("mediapipe is not installed")
    import cv2

    image = tmp_path / "img.png"
    cv2.imwrite(str(image), (np.random.default_rng(0).random((96, 128, 3)) * 255).astype(np.uint8))
    out = tmp_path / "wild"
    code, text = run_cli(capsys, "wild", image, "--checkpoint", finished_run / "best.pt", "--out", out)
    assert code == 0, text
    before = _snapshot(out)
    code, text = run_cli(capsys, "wild", image, "--checkpoint", finished_run / "best.pt", "--out", out)
    assert_refused(code, text, str(out), "--force")
    assert _snapshot(out) == before
    code, text = run_cli(capsys, "wild", image, "--checkpoint", finished_run / "best.pt", "--out", out, "--force")
    assert code == 0, text
    assert set(_snapshot(out)) == set(before)
    _no_leftovers(out)


@pytest.fixture
def fifo(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes on this platform")

    def make(name: str) -> Path:
        path = tmp_path / name
        os.mkfifo(path)
        return path

    return make


def _finishes(fn, path: Path, timeout: float = 60.0) -> BaseException | None:
    """Run fn() in a thread; a reader blocked on the FIFO `path` fails the test (and is released)."""
    box: dict = {}

    def target():
        try:
            fn()
        except BaseException as err:  # noqa: BLE001 - handed to the test
            box["err"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # give the blocked reader an EOF
        os.close(fd)
        thread.join(10)
        pytest.fail(f"reading {path} blocked for {timeout} s")
    return box.get("err")


def _loaders():
    from diffpose_viz.checkpoint import load_checkpoint
    from diffpose_viz.config import read_config
    from diffpose_viz.datasets import load_2d, load_3d, read_gmm_2d
    from diffpose_viz.datasets.files_2d import read_2d_file
    from diffpose_viz.datasets.keypoints_file import read_keypoints
    from diffpose_viz.results import load_results
    from diffpose_viz.safe_io import load_npy

    return {"data_3d.npz": load_3d, "data_2d.npz": load_2d, "gmm.npz": read_gmm_2d, "file_2d.npz": read_2d_file,
            "config.yaml": read_config, "best.pt": load_checkpoint, "kp.json": read_keypoints,
            "results.nc": load_results, "array.npy": load_npy}


@pytest.mark.parametrize("name", list(_loaders()))
def test_a_fifo_is_refused_without_blocking(name, fifo):
    path = fifo(name)
    err = _finishes(lambda: _loaders()[name](path), path)
    assert isinstance(err, ValueError), repr(err)
    assert str(path) in str(err) and "FIFO" in str(err), str(err)


def test_a_fifo_as_evaluate_data_is_refused(finished_run, fifo, tmp_path, capsys):
    path = fifo("data_3d.npz")
    result: dict = {}
    err = _finishes(lambda: result.update(out=run_cli(capsys, *_evaluate(finished_run / "best.pt", tmp_path / "r.nc",
                                                                        "--data", path))), path)
    assert err is None, repr(err)
    assert_refused(*result["out"], str(path), "FIFO")


@pytest.mark.parametrize("command", ["evaluate --data", "sample --input", "train config"])
def test_a_folder_given_as_a_file_is_named(command, finished_run, tmp_path, capsys):
    folder = tmp_path / "inputs_dir"
    folder.mkdir()
    if command == "evaluate --data":
        args = _evaluate(finished_run / "best.pt", tmp_path / "r.nc", "--data", folder)
    elif command == "sample --input":
        args = ["sample", finished_run / "best.pt", "--input", folder, "--format", "coco17", "--image-size", 100, 100,
                "--out", tmp_path / "r.nc"]
    else:
        args = ["train", folder, "--out", tmp_path / "run"]
    code, text = run_cli(capsys, *args)
    assert_refused(code, text, str(folder), "not a regular file", "found a folder")


def _lying_header(shape=(10**6, 10**6)) -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buf.getvalue() + b"\0" * 64


def test_an_npz_member_claiming_a_huge_array_is_refused(tmp_path):
    path = tmp_path / "lying.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("positions_3d.npy", _lying_header())
    from diffpose_viz.datasets import load_3d
    from diffpose_viz.errors import DataError

    with pytest.raises(DataError) as err:
        load_3d(path)
    msg = str(err.value)
    assert str(path) in msg and "key 'positions_3d'" in msg and "8000000000000 bytes" in msg, msg


def test_an_npy_file_claiming_a_huge_array_is_refused(tmp_path):
    from diffpose_viz.safe_io import SafeLoadError, load_npy

    path = tmp_path / "lying.npy"
    path.write_bytes(_lying_header())
    with pytest.raises(SafeLoadError, match=r"claims more data than the file holds.*found 64 bytes"):
        load_npy(path)


def test_a_keypoint_npz_claiming_a_huge_array_is_refused(finished_run, tmp_path, capsys):
    path = tmp_path / "kp.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("keypoints.npy", _lying_header())
    code, text = run_cli(capsys, "sample", finished_run / "best.pt", "--input", path, "--format", "coco17",
                         "--image-size", 100, 100, "--out", tmp_path / "o.nc")
    assert_refused(code, text, str(path), "keypoints", "claims more data")
    assert "MemoryError" not in text


def test_a_zip_member_claiming_an_impossible_size_is_refused(tmp_path):
    """A member whose directory entry says it inflates far beyond what deflate can produce."""
    from diffpose_viz.safe_io import SafeLoadError, SafeNpzFile

    good = tmp_path / "good.npz"
    np.savez_compressed(good, a=np.zeros(1000))
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as z:
        info = z.getinfo("a.npy")
    central = data.rfind(b"PK\x01\x02")  # the central directory entry: uncompressed size at offset 24
    data[central + 24:central + 28] = (2**31).to_bytes(4, "little")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(data))
    assert info.compress_size < 2**31 // 1100
    with pytest.raises(SafeLoadError, match="impossible uncompressed size"):
        with SafeNpzFile(bad) as z:
            z["a"]


def test_a_results_file_declaring_huge_arrays_is_refused_before_loading(tmp_path):
    """A 7 kB netCDF file declaring a 1.9 TiB variable (never written: HDF5 fills it on read)."""
    netCDF4 = pytest.importorskip("netCDF4")
    from diffpose_viz.results import load_results
    from diffpose_viz.errors import ResultsError

    path = tmp_path / "huge.nc"
    with netCDF4.Dataset(path, "w") as d:
        for name, size in (("sample", 10**6), ("hypothesis", 10**4), ("joint", 17), ("xyz", 3)):
            d.createDimension(name, size)
        d.createVariable("hypotheses", "f4", ("sample", "hypothesis", "joint", "xyz"), zlib=True,
                         chunksizes=(1, 1, 17, 3))
    assert path.stat().st_size < 100_000
    with pytest.raises(ResultsError, match=r"variable 'hypotheses': declares more data than fits in memory"):
        load_results(path)


def _tiny_copy(tiny_data: Path, path: Path, mutate) -> Path:
    z = load_npz(tiny_data)
    pos, cams = z["positions_3d"].item(), z["cameras"].item()
    mutate(pos, cams)
    atomic_savez(path, positions_3d=wrap_object(pos), cameras=wrap_object(cams), metadata=z["metadata"])
    return path


def _zero_all(pos, cams):
    for acts in pos.values():
        for a in acts:
            acts[a] = np.zeros_like(acts[a])


def test_training_on_all_zero_poses_is_refused(tiny_data, tmp_path, capsys):  # noqa: F811
    data = _tiny_copy(tiny_data, tmp_path / "zeros.npz", _zero_all)
    code, text = run_cli(capsys, *train_args(data, tmp_path / "run"))
    assert_refused(code, text, str(data), "positions_3d/syn_a/walk 000", "all-zero or constant pose")
    assert not (tmp_path / "run" / "best.pt").exists()


def test_a_constant_pose_is_refused(tiny_data, tmp_path):  # noqa: F811
    from diffpose_viz.datasets import load_3d
    from diffpose_viz.errors import DataError

    def one_point(pos, cams):
        seq = pos["syn_b"]["walk 002"]
        seq[5] = seq[5, :1]  # frame 5: every joint at the pelvis

    data = _tiny_copy(tiny_data, tmp_path / "const.npz", one_point)
    with pytest.raises(DataError, match=r"key 'positions_3d/syn_b/walk 002'.*first at frame 5"):
        load_3d(data)


def test_a_zero_length_bone_is_refused(tiny_data, tmp_path):  # noqa: F811
    from diffpose_viz.datasets import load_3d
    from diffpose_viz.errors import DataError

    def merge(pos, cams):
        seq = pos["syn_c"]["walk 001"]
        seq[:, 3] = seq[:, 2]  # right ankle on the right knee in every frame

    data = _tiny_copy(tiny_data, tmp_path / "merged.npz", merge)
    with pytest.raises(DataError, match=r"syn_c/walk 001.*zero-length bone right_knee -> right_ankle"):
        load_3d(data)


@pytest.mark.parametrize("field,value,expected", [("focal", [float("nan"), 1145.0], "finite"),
                                                  ("focal", [-1145.0, 1145.0], "> 0"),
                                                  ("center", [float("inf"), 500.0], "finite"),
                                                  ("res_w", 0, "> 0")],
                         ids=["NaN focal", "negative focal", "inf centre", "zero width"])
def test_a_camera_with_unusable_intrinsics_is_refused(field, value, expected, tiny_data,  # noqa: F811
                                                      tmp_path, capsys):
    def damage(pos, cams):
        cams["syn_b"][0][field] = value

    data = _tiny_copy(tiny_data, tmp_path / "cams.npz", damage)
    code, text = run_cli(capsys, *train_args(data, tmp_path / "run"))
    assert_refused(code, text, str(data), f"cameras/syn_b[0].{field}", "54138969", expected)


def test_sample_flags_all_zero_2d_frames_and_refuses_a_file_of_them(finished_run, tmp_path, capsys):
    pose = np.array(json.loads(_kp_json(tmp_path).read_text())["keypoints"][0])
    kp = np.stack([pose, np.zeros_like(pose), np.full_like(pose, 250.0)])  # good, all-zero, constant
    path = tmp_path / "kp.npz"
    np.savez(path, keypoints=kp, confidence=np.ones(kp.shape[:2]), format="coco17")
    code, text = run_cli(capsys, "sample", finished_run / "best.pt", "--input", path, "--image-size", 1000, 1002,
                         "--hypotheses", 2, "--steps", 2, "--out", tmp_path / "o.nc")
    assert code == 0, text
    assert "lifted 1 of 3 frames" in text
    np.savez(path, keypoints=kp[1:], confidence=np.ones((2, 17)), format="coco17")
    code, text = run_cli(capsys, "sample", finished_run / "best.pt", "--input", path, "--image-size", 1000, 1002,
                         "--out", tmp_path / "o2.nc")
    assert_refused(code, text, "none of the 2 frames", "all at one point")


def test_non_utf8_config_is_named(tmp_path, capsys):
    cfg = tmp_path / "latin1.yaml"
    cfg.write_bytes("method: diffpose\nname: caf\xe9\n".encode("latin-1"))
    code, text = run_cli(capsys, "train", cfg, "--out", tmp_path / "run")
    assert_refused(code, text, str(cfg), "UTF-8")


@pytest.mark.parametrize("override,key", [("data.max_frames=-1", "data.max_frames"),
                                          ("train.val_max_samples=-1", "train.val_max_samples"),
                                          ("init.n_samples=-5", "init.n_samples"),
                                          ("init.n_kernels=-1", "init.n_kernels"),
                                          ("data.max_test_samples=-1", "data.max_test_samples"),
                                          ("model.frames=0", "model.frames")])
def test_a_negative_count_is_named_by_its_key(override, key, tiny_data, tmp_path, capsys):  # noqa: F811
    args = train_args(tiny_data, tmp_path / "run") + ["--override", override]
    code, text = run_cli(capsys, *args)
    assert_refused(code, text, key, ">= ")
    assert not (tmp_path / "run" / "best.pt").exists()


@pytest.mark.parametrize("extra,option", [(["--center", "nan", "500"], "--center"),
                                          (["--center", "500", "inf"], "--center"),
                                          (["--focal", "nan"], "--focal"),
                                          (["--focal", "-5"], "--focal")],
                         ids=["NaN centre", "inf centre", "NaN focal", "negative focal"])
def test_a_non_finite_camera_option_is_named(extra, option, finished_run, tmp_path, capsys):
    code, text = run_cli(capsys, "sample", finished_run / "best.pt", "--input", _kp_json(tmp_path), "--image-size",
                         1000, 1002, "--out", tmp_path / "o.nc", *extra)
    assert_refused(code, text, option)
    other = {"--center": "--focal", "--focal": "--center"}[option]
    assert other not in text and "focal lengths must be" not in text


@pytest.mark.parametrize("command", ["evaluate", "sample"])
def test_an_unwritable_out_is_named_by_its_own_name(command, finished_run, tmp_path, capsys):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where a folder is needed")
    out = blocker / "r.nc"
    if command == "evaluate":
        args = _evaluate(finished_run / "best.pt", out)
    else:
        args = ["sample", finished_run / "best.pt", "--input", _kp_json(tmp_path), "--image-size", 1000, 1002,
                "--out", out]
    code, text = run_cli(capsys, *args)
    assert_refused(code, text, str(out), "cannot write")
    assert ".tmp" not in text


def _crafted_checkpoints(tmp_path: Path) -> dict[str, Path]:
    import collections
    import pickle

    class Code:
        def __reduce__(self):
            return (print, ("ran",))

    out = {}
    out["global"] = tmp_path / "global.pt"
    torch.save({"x": np.random.default_rng(0)}, out["global"])
    out["raw pickle"] = tmp_path / "raw.pt"
    out["raw pickle"].write_bytes(pickle.dumps({"x": Code()}, protocol=4))
    out["protocol 0"] = tmp_path / "p0.pt"
    out["protocol 0"].write_bytes(pickle.dumps({"x": collections.OrderedDict()}, protocol=0))
    out["object array"] = tmp_path / "obj.pt"
    torch.save({"x": np.array([{}], dtype=object)}, out["object array"])
    return out


def test_checkpoint_messages_never_advise_unsafe_loading(tmp_path):
    from diffpose_viz.checkpoint import load_checkpoint
    from diffpose_viz.errors import CheckpointError

    for kind, path in _crafted_checkpoints(tmp_path).items():
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(path)
        msg = str(err.value)
        assert str(path) in msg and "weights_only" not in msg and "trusted source" not in msg, (kind, msg)
        assert "tensors and plain values" in msg and "re-save it" in msg, (kind, msg)  # what the file would need


def test_a_refused_hk_cache_warning_never_advises_unsafe_loading(tmp_path, caplog):
    from diffpose_viz.inputs import hk

    cache = tmp_path / "hk.pt"
    torch.save({"x": np.random.default_rng(0)}, cache)  # a global torch's safe loader refuses
    with caplog.at_level(logging.WARNING):
        assert hk._read_hk_cache(cache, 3) is None
    assert str(cache) in caplog.text and "unusable" in caplog.text
    assert "weights_only" not in caplog.text and "trusted source" not in caplog.text, caplog.text
    assert not cache.exists()


def test_the_detector_import_prints_no_protobuf_noise():
    from diffpose_viz.wild import mediapipe_detector

    if not mediapipe_detector.mediapipe_available():
        pytest.skip("mediapipe is not installed")
    code = "from diffpose_viz.wild.mediapipe_detector import mediapipe_available; print(mediapipe_available())"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "True", proc.stderr
    assert "GetPrototype" not in proc.stderr and "MessageFactory" not in proc.stderr, proc.stderr


def test_too_many_hypotheses_are_refused_before_allocation(finished_run, tmp_path, capsys):
    t0 = time.perf_counter()
    code, text = run_cli(capsys, *_evaluate(finished_run / "best.pt", tmp_path / "r.nc", "--hypotheses", 10**9))
    assert_refused(code, text, "--hypotheses", "needs about", "--batch-size")
    assert "MemoryError" not in text and "allocate" not in text
    assert time.perf_counter() - t0 < 60
    assert not (tmp_path / "r.nc").exists()


def test_the_memory_cap_applies_to_sample(finished_run, tmp_path, capsys, monkeypatch):
    from diffpose_viz.memory import LIMIT_ENV

    monkeypatch.setenv(LIMIT_ENV, "1M")
    code, text = run_cli(capsys, "sample", finished_run / "best.pt", "--input", _kp_json(tmp_path), "--image-size",
                         1000, 1002, "--hypotheses", 5000, "--out", tmp_path / "o.nc")
    assert_refused(code, text, "5000 hypotheses", "--hypotheses", LIMIT_ENV)
    monkeypatch.setenv(LIMIT_ENV, "4G")
    code, text = run_cli(capsys, "sample", finished_run / "best.pt", "--input", _kp_json(tmp_path), "--image-size",
                         1000, 1002, "--hypotheses", 4, "--steps", 2, "--out", tmp_path / "o.nc")
    assert code == 0, text


def _kill_mid_swap(run: Path) -> None:
    """What a `train --force` killed between commit_replacement's two renames leaves: no run folder, only .NAME.old."""
    os.rename(run, run.parent / f".{run.name}.old")


def test_evaluate_restores_a_run_left_mid_swap(run_copy, tmp_path, capsys):
    _kill_mid_swap(run_copy)
    code, text = run_cli(capsys, *_evaluate(run_copy / "best.pt", tmp_path / "r.nc"))
    assert code == 0, text
    assert "interrupted `train --force`" in text and (run_copy / "my_notes.txt").exists()
    assert not (run_copy.parent / f".{run_copy.name}.old").exists()


def test_train_without_force_after_a_killed_swap_refuses_instead_of_hiding_the_run(run_copy, tiny_data, capsys):  # noqa: F811
    before = _snapshot(run_copy)
    _kill_mid_swap(run_copy)
    code, text = run_cli(capsys, *train_args(tiny_data, run_copy))
    assert_refused(code, text, str(run_copy), "--force")
    assert _snapshot(run_copy) == before  # the earlier run is back, untouched


def test_a_fifo_as_checkpoint_is_named_as_a_fifo(fifo, tmp_path, capsys):
    path = fifo("best.pt")
    code, text = run_cli(capsys, "evaluate", path, "--out", tmp_path / "r.nc", "--no-progress")
    assert_refused(code, text, str(path), "FIFO")
    assert "does not exist" not in text
    code, text = run_cli(capsys, "evaluate", tmp_path / "missing.pt", "--out", tmp_path / "r.nc", "--no-progress")
    assert_refused(code, text, "missing.pt", "does not exist")


def test_library_evaluate_refuses_an_existing_result_unless_overwrite(finished_run, tmp_path):
    from diffpose_viz.errors import OutputExistsError
    from diffpose_viz.evaluation.evaluate import evaluate
    from diffpose_viz.inference import SamplingSetting

    out = tmp_path / "r.nc"
    setting = SamplingSetting(2, 2)
    evaluate(finished_run / "best.pt", out, sampling=setting, progress=False)
    before = _snapshot(tmp_path)
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        evaluate(finished_run / "best.pt", out, sampling=setting, progress=False)
    assert _snapshot(tmp_path) == before
    evaluate(finished_run / "best.pt", out, sampling=SamplingSetting(3, 2), progress=False, overwrite=True)
    assert json.loads((tmp_path / "r.metrics.json").read_text())["n_hypotheses"] == 3
