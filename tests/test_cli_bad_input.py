"""Bad input through `diffpose_viz.cli.main([...])`: every case exits 1 (an error) or 2 (a usage error),
prints no traceback and names the file or option and what was expected. Also: runs are never overwritten
without --resume/--force, and sample flags frames without usable 2D."""
from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from diffpose_viz import checkpoint as ck
from diffpose_viz.camera import h36m_cameras
from diffpose_viz.cli import main

from tiny_runs import REPO, tiny_overrides

pytestmark = pytest.mark.usefixtures("one_thread")

SMOKE = REPO / "configs" / "smoke.yaml"
#: A one-stage method needs no pre-trained lifter: the tiny run trains in seconds.
METHOD = "diffpose_joint"


def train_args(data: Path, out: Path, *extra: str, **overrides) -> list:
    """`train` of the smoke config on tiny data, two steps (`overrides`: more config keys)."""
    args = ["train", SMOKE, "--out", out, "--no-progress", *extra]
    for o in tiny_overrides(data, **{"train.max_steps": 2, "method": METHOD, **overrides}):
        args += ["--override", o]
    return args


def run_cli(capsys, *args) -> tuple[int, str]:
    """(exit code, stdout + stderr) of `diffpose-viz ARGS`; argparse's usage errors count as exit 2."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as stop:
        code = stop.code
    out = capsys.readouterr()
    return code, out.out + out.err


def assert_refused(code: int, text: str, *needles: str) -> None:
    assert code in (1, 2), f"exit {code}:\n{text}"
    assert "Traceback" not in text, text
    low = text.lower()
    for needle in needles:
        assert needle.lower() in low, f"{needle!r} not in:\n{text}"


def _coco_pose() -> list:
    cam = h36m_cameras("S1")[0]
    world = np.array([[0.0, 0.0, 0.95]]) + np.random.default_rng(1).normal(0, 0.25, (17, 3))
    return cam.project(cam.world_to_camera(world)).tolist()


@pytest.fixture(scope="module")
def run_dir(tiny_data, tmp_path_factory):  # noqa: F811
    """A finished tiny run: config.yaml, last.pt, best.pt, train_log.jsonl."""
    out = tmp_path_factory.mktemp("bad_input") / "run"
    assert main([str(a) for a in train_args(tiny_data, out)]) == 0
    return out


@pytest.fixture
def ckpt(run_dir) -> Path:
    return run_dir / "best.pt"


def _train_config(tmp_path: Path, tiny_data: Path, text: str | None = None, **changes) -> Path:  # noqa: F811
    """A YAML config on the tiny data (smoke sizes) with `changes` (dotted keys) applied, or `text` as is."""
    path = tmp_path / "cfg.yaml"
    if text is not None:
        path.write_text(text)
        return path
    data = yaml.safe_load(SMOKE.read_text())
    changes.setdefault("method", METHOD)
    for item in tiny_overrides(tiny_data):
        key, value = item.split("=", 1)
        changes.setdefault(key, yaml.safe_load(value))
    for key, value in changes.items():
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(data))
    return path


# --------------------------------------------------------------------------- configs

CONFIG_CASES = {
    "unknown key": ({"train.lrate": 0.1}, ["train.lrate"]),
    "epochs 0": ({"train.epochs": 0}, ["train.epochs"]),
    "negative lr": ({"train.lr": -1e-3}, ["train.lr"]),
    "unknown method": ({"method": "diffpoze"}, ["diffpoze"]),
    "wrong type (text for an int)": ({"train.epochs": "ten"}, ["train.epochs"]),
    "wrong type (list for a float)": ({"train.lr": [1, 2]}, ["train.lr"]),
    "missing data file": ({"data.path": "no/such/data_3d.npz"}, ["no/such/data_3d.npz"]),
}


@pytest.mark.parametrize("case", CONFIG_CASES, ids=list(CONFIG_CASES))
def test_bad_config(case, tiny_data, tmp_path, capsys):  # noqa: F811
    changes, needles = CONFIG_CASES[case]
    cfg = _train_config(tmp_path, tiny_data, **changes)
    code, text = run_cli(capsys, "train", cfg, "--out", tmp_path / "run", "--no-progress")
    assert_refused(code, text, *needles)
    assert not (tmp_path / "run" / "last.pt").exists()


@pytest.mark.parametrize("text", ["", "# only a comment\n", "- a\n- list\n", "train: [unclosed\n"],
                         ids=["empty", "comment only", "a list", "not YAML"])
def test_config_file_that_is_not_a_mapping(text, tiny_data, tmp_path, capsys):  # noqa: F811
    cfg = _train_config(tmp_path, tiny_data, text=text)
    code, out = run_cli(capsys, "train", cfg, "--out", tmp_path / "run", "--no-progress")
    assert_refused(code, out, str(cfg))


def test_missing_config_file(tmp_path, capsys):
    code, text = run_cli(capsys, "train", tmp_path / "none.yaml", "--out", tmp_path / "run")
    assert_refused(code, text, "none.yaml")


def test_malformed_override(tmp_path, capsys):
    code, text = run_cli(capsys, "train", SMOKE, "--out", tmp_path / "run", "--override", "train.epochs")
    assert_refused(code, text, "train.epochs")


# --------------------------------------------------------------------------- keypoint files for `sample`


def _npz(path: Path, **arrays) -> bytes:
    np.savez(path, **arrays)
    return path.read_bytes()


def _pickled_npz(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as z:
        with z.open("keypoints.npy", "w") as f:
            np.lib.format.write_array(f, np.array([{"x": 1}], dtype=object), allow_pickle=True)


KEYPOINT_CASES = {
    "empty csv": ("kp.csv", lambda p: p.write_text(""), ["kp.csv"]),
    "header-only csv": ("kp.csv", lambda p: p.write_text("x0,y0,x1,y1\n"), ["kp.csv"]),
    "wrong column count": ("kp.csv", lambda p: p.write_text(",".join(["1"] * 35) + "\n"), ["kp.csv", "columns"]),
    "json not json": ("kp.json", lambda p: p.write_text("{keypoints: oops"), ["kp.json", "json"]),
    "json without keypoints": ("kp.json", lambda p: p.write_text(json.dumps({"points": []})), ["kp.json",
                                                                                               "keypoints"]),
    "npz without keypoints": ("kp.npz", lambda p: _npz(p, points=np.zeros((1, 17, 2)), scores=np.ones((1, 17))),
                              ["kp.npz", "keypoints"]),
    "pickled object array npz": ("kp.npz", _pickled_npz, ["kp.npz", "pickle"]),
    "confidence below 0": ("kp.json", lambda p: p.write_text(json.dumps(
        {"keypoints": [_coco_pose()], "confidence": [[-0.5] * 17], "format": "coco17"})), ["kp.json", "[0, 1]"]),
    "confidence above 1": ("kp.json", lambda p: p.write_text(json.dumps(
        {"keypoints": [[[x, y, 1.5] for x, y in _coco_pose()]], "format": "coco17"})), ["kp.json", "[0, 1]"]),
    "declared format contradicts --format": ("kp.json", lambda p: p.write_text(json.dumps(
        {"keypoints": [_coco_pose()], "format": "h36m17"})), ["kp.json", "--format"]),
    "inf coordinates": ("kp.npz", lambda p: _npz(p, keypoints=np.full((2, 17, 2), np.inf), format="coco17"),
                        ["kp.npz", "infinite"]),
    "1e30 coordinates": ("kp.npz", lambda p: _npz(p, keypoints=np.full((2, 17, 2), 1e30), format="coco17"),
                         ["kp.npz", "keypoints", "out of range", "1e+30"]),
    "not a keypoint file type": ("kp.txt", lambda p: p.write_text("1 2 3"), ["kp.txt", ".npz, .json or .csv"]),
    "missing keypoint file": ("absent.json", lambda p: None, ["absent.json", "does not exist"]),
}


@pytest.mark.parametrize("case", KEYPOINT_CASES, ids=list(KEYPOINT_CASES))
def test_bad_keypoint_file(case, ckpt, tmp_path, capsys):
    name, write, needles = KEYPOINT_CASES[case]
    path = tmp_path / name
    write(path)
    code, text = run_cli(capsys, "sample", ckpt, "--input", path, "--format", "coco17", "--image-size", 1000, 1002,
                         "--out", tmp_path / "o.nc")
    assert_refused(code, text, *needles)
    assert not (tmp_path / "o.nc").exists()


def test_all_frames_without_usable_2d_is_one_line(ckpt, tmp_path, capsys):
    kp = np.full((3, 17, 2), np.nan)
    kp[1, :3] = 100.0  # three joints: below the minimum
    path = tmp_path / "kp.npz"
    _npz(path, keypoints=kp, format="coco17")
    code, text = run_cli(capsys, "sample", ckpt, "--input", path, "--image-size", 1000, 1002, "--out",
                         tmp_path / "o.nc")
    assert_refused(code, text, "none of the 3 frames", "usable")
    assert len(text.strip().splitlines()) == 1


def test_sample_flags_frames_without_usable_2d(ckpt, tmp_path, capsys):
    from diffpose_viz.results import load_results

    pose = np.array(_coco_pose())
    kp = np.stack([pose, pose, pose, pose])
    kp[1] = np.nan  # nothing visible
    kp[2, 4:] = np.nan  # four joints only
    kp[3, 11:] = np.nan  # no hips (COCO 11/12)
    path = tmp_path / "kp.npz"
    _npz(path, keypoints=kp, format="coco17")
    code, text = run_cli(capsys, "sample", ckpt, "--input", path, "--image-size", 1000, 1002, "--hypotheses", 2,
                         "--steps", 2, "--out", tmp_path / "o.nc")
    assert code == 0, text
    assert "lifted 1 of 4 frames" in text and "3 frame(s) without usable 2D" in text
    assert load_results(tmp_path / "o.nc").sizes["sample"] == 1  # readers see the lifted frame only
    ds = load_results(tmp_path / "o.nc", keep_missing=True)
    assert ds["missing"].values.tolist() == [False, True, True, True]
    reasons = [str(r) for r in ds["missing_reason"].values]
    assert reasons[0] == "" and "no visible" in reasons[1] and "only 2 visible" in reasons[2] and "hip" in reasons[3]
    hyps = ds["hypotheses"].values
    assert np.isfinite(hyps[0]).all() and np.isnan(hyps[1:]).all() and np.isnan(ds["pred"].values[1:]).all()


# --------------------------------------------------------------------------- options


def _kp_json(tmp_path: Path) -> Path:
    path = tmp_path / "kp.json"
    path.write_text(json.dumps({"keypoints": [_coco_pose()], "format": "coco17"}))
    return path


SAMPLE_OPTION_CASES = {
    "negative --std-px": (["--std-px", "-1"], ["--std-px"]),
    "zero --std-px": (["--std-px", "0"], ["--std-px"]),
    "--image-size 0": (["--image-size", "0", "1000"], ["--image-size"]),
    "--hypotheses 0": (["--hypotheses", "0"], ["--hypotheses"]),
    "--steps 0": (["--steps", "0"], ["--steps"]),
    "--image-size not a number": (["--image-size", "wide", "1000"], ["--image-size"]),
}


@pytest.mark.parametrize("case", SAMPLE_OPTION_CASES, ids=list(SAMPLE_OPTION_CASES))
def test_bad_sample_option(case, ckpt, tmp_path, capsys):
    extra, needles = SAMPLE_OPTION_CASES[case]
    args = ["sample", ckpt, "--input", _kp_json(tmp_path), "--out", tmp_path / "o.nc"]
    if "--image-size" not in extra:
        args += ["--image-size", 1000, 1002]
    code, text = run_cli(capsys, *args, *extra)
    assert_refused(code, text, *needles)


EVALUATE_OPTION_CASES = {
    "--batch-size 0": (["--batch-size", "0"], ["--batch-size"]),
    "--max-samples 0": (["--max-samples", "0"], ["--max-samples"]),
    "--hypotheses -3": (["--hypotheses", "-3"], ["--hypotheses"]),
    "--steps 0": (["--steps", "0"], ["--steps"]),
    "--amp fp8": (["--amp", "fp8"], ["--amp"]),
    "--device tpu": (["--device", "tpu"], ["--device"]),
}


@pytest.mark.parametrize("case", EVALUATE_OPTION_CASES, ids=list(EVALUATE_OPTION_CASES))
def test_bad_evaluate_option(case, ckpt, tmp_path, capsys):
    extra, needles = EVALUATE_OPTION_CASES[case]
    code, text = run_cli(capsys, "evaluate", ckpt, "--out", tmp_path / "r.nc", "--no-progress", *extra)
    assert_refused(code, text, *needles)
    assert not (tmp_path / "r.nc").exists()


@pytest.mark.parametrize("command", ["evaluate", "sample"])
def test_out_that_is_a_folder(command, ckpt, tmp_path, capsys):
    folder = tmp_path / "results"
    folder.mkdir()
    args = [command, ckpt, "--out", folder]
    if command == "sample":
        args += ["--input", _kp_json(tmp_path), "--image-size", 1000, 1002]
    code, text = run_cli(capsys, *args)
    assert_refused(code, text, "--out", "is a folder")


@pytest.mark.parametrize("extra,needle", [(["--batch-sizes", "0"], "batch"), (["--hypotheses", "0"], "hypotheses"),
                                          (["--steps", "-1"], "steps"), (["--tile-frames", "many"], "tile")],
                         ids=["--batch-sizes 0", "--hypotheses 0", "--steps -1", "--tile-frames many"])
def test_bad_bench_option(extra, needle, capsys):
    code, text = run_cli(capsys, "bench", *extra)
    assert_refused(code, text, needle)


@pytest.mark.parametrize("extra,needle", [(["--workers", "0"], "--workers"), (["--tile-frames", "0"], "--tile-frames")],
                         ids=["--workers 0", "--tile-frames 0"])
def test_bad_bench_tiling(extra, needle, capsys):
    code, text = run_cli(capsys, "bench", *extra)
    assert_refused(code, text, needle)


def test_wild_stride_0(tmp_path, capsys):
    image = tmp_path / "person.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n")
    code, text = run_cli(capsys, "wild", image, "--stride", "0", "--out", tmp_path / "w")
    assert_refused(code, text, "--stride")


def test_wild_without_mediapipe_gives_an_install_hint(tmp_path, capsys, monkeypatch):
    from diffpose_viz.wild import mediapipe_detector

    monkeypatch.setattr(mediapipe_detector, "mediapipe_available", lambda: False)
    image = tmp_path / "person.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n")
    code, text = run_cli(capsys, "wild", image, "--out", tmp_path / "w")
    assert_refused(code, text, "mediapipe", "pip install")
    assert len(text.strip().splitlines()) == 1


def test_wild_missing_input(tmp_path, capsys):
    code, text = run_cli(capsys, "wild", tmp_path / "none.mp4", "--out", tmp_path / "w")
    assert_refused(code, text, "none.mp4", "does not exist")


# --------------------------------------------------------------------------- checkpoints


class _Marker:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",))


def _write_bad_checkpoint(kind: str, path: Path, good: Path) -> None:
    if kind == "not a checkpoint":
        torch.save({"weights": torch.ones(3)}, path)
    elif kind == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif kind == "text file":
        path.write_text("this is a text file, not a checkpoint\n")
    elif kind == "empty file":
        path.write_bytes(b"")
    elif kind == "crafted pickle":
        torch.save({"format": ck.FORMAT, "x": _Marker(path.parent / "marker")}, path)
    elif kind == "crafted raw pickle":
        path.write_bytes(pickle.dumps({"format": ck.FORMAT, "x": _Marker(path.parent / "marker")}, protocol=2))
    elif kind == "other format version":
        ckpt = torch.load(good, weights_only=True)
        ckpt["format_version"] = 99
        torch.save(ckpt, path)


CKPT_CASES = {"not a checkpoint": "no format stamp", "truncated": "cannot read", "text file": "cannot read",
              "empty file": "cannot read", "crafted pickle": "refused", "crafted raw pickle": "refused",
              "other format version": "version 99"}


@pytest.mark.parametrize("command", ["evaluate", "sample"])
@pytest.mark.parametrize("kind", CKPT_CASES, ids=list(CKPT_CASES))
def test_bad_checkpoint(kind, command, ckpt, tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    _write_bad_checkpoint(kind, bad, ckpt)
    args = [command, bad, "--out", tmp_path / "o.nc"]
    if command == "sample":
        args += ["--input", _kp_json(tmp_path), "--image-size", 1000, 1002]
    else:
        args += ["--no-progress"]
    code, text = run_cli(capsys, *args)
    assert_refused(code, text, str(bad), CKPT_CASES[kind])
    assert not (tmp_path / "marker").exists()


def test_missing_checkpoint(tmp_path, capsys):
    code, text = run_cli(capsys, "evaluate", tmp_path / "none.pt", "--out", tmp_path / "r.nc")
    assert_refused(code, text, "none.pt", "does not exist")


# --------------------------------------------------------------------------- run folders


def _snapshot(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}


def test_training_into_a_finished_run_is_refused(run_dir, tiny_data, capsys):  # noqa: F811
    before = _snapshot(run_dir)
    args = ["train", SMOKE, "--out", run_dir, "--no-progress"]
    for o in tiny_overrides(tiny_data, **{"train.max_steps": 2, "method": METHOD}):
        args += ["--override", o]
    code, text = run_cli(capsys, *args)
    assert_refused(code, text, str(run_dir), "--resume", "--force")
    assert _snapshot(run_dir) == before  # best.pt, last.pt, train_log.jsonl and config.yaml untouched


def test_resume_with_a_changed_config_does_not_rewrite_it(run_dir, tiny_data, capsys):  # noqa: F811
    before = _snapshot(run_dir)
    args = ["train", SMOKE, "--out", run_dir, "--no-progress", "--resume"]
    for o in tiny_overrides(tiny_data, **{"train.max_steps": 4, "train.lr": 0.5, "method": METHOD}):
        args += ["--override", o]
    code, text = run_cli(capsys, *args)
    assert_refused(code, text, "last.pt", "train.lr")
    assert _snapshot(run_dir) == before


def test_resume_and_force_together(tmp_path, capsys):
    code, text = run_cli(capsys, "train", SMOKE, "--out", tmp_path / "run", "--resume", "--force")
    assert_refused(code, text, "--resume", "--force")


def test_resume_without_an_earlier_run(tiny_data, tmp_path, capsys):  # noqa: F811
    args = ["train", SMOKE, "--out", tmp_path / "run", "--resume", "--no-progress"]
    for o in tiny_overrides(tiny_data, method=METHOD):
        args += ["--override", o]
    code, text = run_cli(capsys, *args)
    assert_refused(code, text, "last.pt", "does not exist")


def test_train_out_that_is_a_file(tiny_data, tmp_path, capsys):  # noqa: F811
    target = tmp_path / "run"
    target.write_text("a file")
    args = ["train", SMOKE, "--out", target, "--no-progress"]
    for o in tiny_overrides(tiny_data, method=METHOD):
        args += ["--override", o]
    code, text = run_cli(capsys, *args)
    assert_refused(code, text, "--out", "not a folder")
    assert target.read_text() == "a file"
