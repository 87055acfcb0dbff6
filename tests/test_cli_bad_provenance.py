"""Error bars that belong to their model, runs that cannot collide, no test rows in training or calibration
(issue 31). Every case reproduces a probe's case in a temporary folder through `diffpose_viz.cli.main` and asserts
the refusal (one line, no traceback, both fingerprints or files named) or the kept file."""
from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from diffpose_viz import checkpoint as ck
from diffpose_viz.cli import main
from diffpose_viz.datasets.vp3d import load_3d, save_3d
from diffpose_viz.results import load_results

from test_cli_bad_input import _kp_json, assert_refused, run_cli, train_args
from tiny_runs import REPO

pytestmark = pytest.mark.usefixtures("one_thread")


def _evaluate(ckpt: Path, out: Path, *extra) -> list:
    return ["evaluate", ckpt, "--out", out, "--no-progress", "--hypotheses", 2, "--steps", 2, *extra]


def _sample(ckpt: Path, tmp_path: Path, out: Path, *extra) -> list:
    return ["sample", ckpt, "--input", _kp_json(tmp_path), "--image-size", 1000, 1002, "--out", out,
            "--hypotheses", 2, *extra]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def runs(tiny_data, tmp_path_factory):  # noqa: F811
    """Two tiny runs of different seeds (two models) and run A's evaluation with its calibration."""
    root = tmp_path_factory.mktemp("provenance")
    assert main([str(a) for a in train_args(tiny_data, root / "a")]) == 0
    assert main([str(a) for a in train_args(tiny_data, root / "b", **{"train.seed": 1})]) == 0
    assert main([str(a) for a in _evaluate(root / "a" / "best.pt", root / "eval" / "a.nc")]) == 0
    return root


@pytest.fixture
def metrics_a(runs) -> Path:
    return runs / "eval" / "a.metrics.json"


def _edited_metrics(metrics: Path, tmp_path: Path, edit) -> Path:
    data = json.loads(metrics.read_text())
    edit(data)
    path = tmp_path / "edited.metrics.json"
    path.write_text(json.dumps(data))
    return path


# --------------------------------------------------------------------------- fingerprints


def test_artifacts_record_the_checkpoint_fingerprint(runs, metrics_a):
    fp = ck.checkpoint_fingerprint(runs / "a" / "best.pt")
    assert len(fp) == 64 and fp != ck.checkpoint_fingerprint(runs / "b" / "best.pt")
    metrics = json.loads(metrics_a.read_text())
    assert metrics["checkpoint_fingerprint"] == fp
    assert metrics["uncertainty"]["ood"]["model"]["checkpoint_fingerprint"] == fp
    assert load_results(runs / "eval" / "a.nc").attrs["checkpoint_fingerprint"] == fp


def test_calibration_from_another_model_is_refused(runs, metrics_a, tmp_path, capsys):
    out = tmp_path / "mine.nc"
    code, text = run_cli(capsys, *_sample(runs / "b" / "best.pt", tmp_path, out, "--calibration", metrics_a))
    fa, fb = ck.checkpoint_fingerprint(runs / "a" / "best.pt"), ck.checkpoint_fingerprint(runs / "b" / "best.pt")
    assert_refused(code, text, str(metrics_a), ck.short(fa), ck.short(fb), str(runs / "b" / "best.pt"))
    assert not out.exists()


def test_calibration_with_an_edited_checkpoint_path_is_still_refused(runs, metrics_a, tmp_path, capsys):
    """The probe pointed the JSON's `checkpoint` key at the other model: paths decide nothing now."""
    def edit(d):
        d["checkpoint"] = str(runs / "b" / "best.pt")
    path = _edited_metrics(metrics_a, tmp_path, edit)
    code, text = run_cli(capsys, *_sample(runs / "b" / "best.pt", tmp_path, tmp_path / "m.nc", "--calibration", path))
    assert_refused(code, text, "fingerprint")


def test_calibration_without_a_checkpoint_key_or_fingerprint_is_refused(runs, metrics_a, tmp_path, capsys):
    def edit(d):
        d.pop("checkpoint"), d.pop("checkpoint_fingerprint")
        model = d["uncertainty"]["ood"]["model"]
        model.pop("checkpoint_fingerprint")
        from diffpose_viz.ood import DIGEST_KEY, content_digest
        model[DIGEST_KEY] = content_digest(model)  # re-sealed: only the missing fingerprint is wrong
    path = _edited_metrics(metrics_a, tmp_path, edit)
    code, text = run_cli(capsys, *_sample(runs / "a" / "best.pt", tmp_path, tmp_path / "m.nc", "--calibration", path))
    assert_refused(code, text, "records no checkpoint fingerprint", str(path))


def test_hand_edited_calibration_values_are_refused(runs, metrics_a, tmp_path, capsys):
    def edit(d):
        d["uncertainty"]["ood"]["model"]["normalised"]["slope"] = 0.5
    path = _edited_metrics(metrics_a, tmp_path, edit)
    code, text = run_cli(capsys, *_sample(runs / "a" / "best.pt", tmp_path, tmp_path / "m.nc", "--calibration", path))
    assert_refused(code, text, "content_digest", "changed after")


@pytest.mark.parametrize("where,value,key", [
    (("scorer", "threshold"), float("nan"), "scorer.threshold"),
    (("normalised", "slope"), -0.3, "normalised.slope"),
    (("scorer", "scale", "pose_2d"), -1.0, "scorer.scale.pose_2d"),
], ids=["NaN threshold", "negative slope", "negative scale"])
def test_nan_and_negative_calibration_parameters_are_refused(where, value, key, runs, metrics_a, tmp_path, capsys):
    """Even re-sealed with a matching digest (someone who recomputed it), the values themselves are checked."""
    from diffpose_viz.ood import DIGEST_KEY, content_digest

    def edit(d):
        node = d["uncertainty"]["ood"]["model"]
        for part in where[:-1]:
            node = node[part]
        node[where[-1]] = value
        model = d["uncertainty"]["ood"]["model"]
        model[DIGEST_KEY] = content_digest(model)
    path = _edited_metrics(metrics_a, tmp_path, edit)
    code, text = run_cli(capsys, *_sample(runs / "a" / "best.pt", tmp_path, tmp_path / "m.nc", "--calibration", path))
    assert_refused(code, text, key, str(path))


def test_stale_calibration_after_train_force_is_refused(runs, tiny_data, tmp_path, capsys):  # noqa: F811
    run = tmp_path / "run"
    shutil.copytree(runs / "a", run)
    metrics = runs / "eval" / "a.metrics.json"
    assert run_cli(capsys, *train_args(tiny_data, run, "--force", **{"train.seed": 7}))[0] == 0  # retrained in place
    code, text = run_cli(capsys, *_sample(run / "best.pt", tmp_path, tmp_path / "m.nc", "--calibration", metrics))
    assert_refused(code, text, "fingerprint", "retrained")


def test_a_moved_run_used_from_another_working_folder_is_accepted(runs, tmp_path, capsys, monkeypatch):
    """Evaluate stored a relative checkpoint path; the copy of the run, used from elsewhere, still matches."""
    monkeypatch.chdir(runs)
    assert run_cli(capsys, *_evaluate(Path("a") / "best.pt", Path("rel") / "r.nc"))[0] == 0
    moved = tmp_path / "elsewhere" / "run"
    shutil.copytree(runs / "a", moved)
    shutil.copytree(runs / "rel", tmp_path / "elsewhere" / "rel")
    monkeypatch.chdir(tmp_path)  # another working folder: the stored relative path names nothing here
    code, text = run_cli(capsys, *_sample(moved / "best.pt", tmp_path, tmp_path / "m.nc", "--calibration",
                                          tmp_path / "elsewhere" / "rel" / "r.metrics.json"))
    assert code == 0, text
    assert "out of domain" in text


def test_corrupted_non_ema_weights_are_refused(runs, tmp_path, capsys):
    import torch

    bad = tmp_path / "run" / "last.pt"
    shutil.copytree(runs / "a", bad.parent)
    ckpt = torch.load(bad, weights_only=True)
    name = next(k for k, v in ckpt["model"].items() if v.is_floating_point())
    ckpt["model"][name] = ckpt["model"][name] + 1.0  # as a flipped bit would: the EMA weights are untouched
    torch.save(ckpt, bad)
    code, text = run_cli(capsys, *_evaluate(bad, tmp_path / "r.nc"))
    assert_refused(code, text, str(bad), "does not match the fingerprint")
    code, text = run_cli(capsys, *train_args(Path("unused"), bad.parent, "--resume"))
    assert "Traceback" not in text and code != 0


# --------------------------------------------------------------------------- outputs


def test_calibration_rows_onto_an_existing_file_are_refused(runs, tmp_path, capsys):
    rows = tmp_path / "rows.npz"
    rows.write_bytes(b"the user's file")
    code, text = run_cli(capsys, *_evaluate(runs / "a" / "best.pt", tmp_path / "r.nc", "--save-calibration-rows", rows))
    assert_refused(code, text, str(rows), "already exists", "--force")
    assert rows.read_bytes() == b"the user's file" and not (tmp_path / "r.nc").exists()


@pytest.mark.parametrize("target", ["r.nc", "r.metrics.json"])
def test_calibration_rows_onto_another_output_are_refused(target, runs, tmp_path, capsys):
    code, text = run_cli(capsys, *_evaluate(runs / "a" / "best.pt", tmp_path / "r.nc", "--save-calibration-rows",
                                            tmp_path / target, "--force"))
    assert_refused(code, text, "--save-calibration-rows", "the same file as")
    assert not any(tmp_path.iterdir())


def test_options_that_do_nothing_with_split_val_are_errors(runs, tmp_path, capsys):
    for extra in (["--save-calibration-rows", tmp_path / "rows.npz"], ["--calibrate-with", tmp_path / "x.npz"]):
        code, text = run_cli(capsys, *_evaluate(runs / "a" / "best.pt", tmp_path / "r.nc", "--split", "val", *extra))
        assert_refused(code, text, str(extra[0]), "--split val")
    assert not any(tmp_path.iterdir())


def test_evaluate_out_must_be_netcdf(runs, tmp_path, capsys):
    code, text = run_cli(capsys, *_evaluate(runs / "a" / "best.pt", tmp_path / "x.txt"))
    assert_refused(code, text, "x.txt", ".nc")
    assert not any(tmp_path.iterdir())


def test_calibration_rows_record_the_fingerprint_and_refit_refuses_other_results(runs, tmp_path, capsys):
    from diffpose_viz import ood

    rows = tmp_path / "rows.npz"
    assert run_cli(capsys, *_evaluate(runs / "a" / "best.pt", tmp_path / "a.nc", "--save-calibration-rows", rows))[0] == 0
    fa = ck.checkpoint_fingerprint(runs / "a" / "best.pt")
    assert ood.load_calibration_rows(rows)["checkpoint_fingerprint"] == fa
    assert run_cli(capsys, *_evaluate(runs / "b" / "best.pt", tmp_path / "b.nc"))[0] == 0
    code, text = _script(capsys, "refit_ood.py", "--rows", rows, "--in-domain", tmp_path / "b.nc")
    assert code == 2 and "Traceback" not in text and str(tmp_path / "b.nc") in text and ck.short(fa) in text
    existing = tmp_path / "out.json"
    existing.write_text("keep")
    code, text = _script(capsys, "refit_ood.py", "--rows", rows, "--in-domain", tmp_path / "a.nc", "--json", existing)
    assert code == 2 and "already exists" in text and existing.read_text() == "keep"
    code, text = _script(capsys, "refit_ood.py", "--rows", rows, "--in-domain", tmp_path / "a.nc", "--json", existing,
                         "--force")
    assert code == 0, text
    assert json.loads(existing.read_text())["checkpoint_fingerprint"] == fa


def _script(capsys, name: str, *args) -> tuple[int, str]:
    from test_scripts_bad_input import run_script_in_process

    return run_script_in_process(capsys, name, *args)


def test_disk_full_names_the_file_in_words(runs, tmp_path, capsys, monkeypatch):
    """An injected ENOSPC while the results file is written (as netCDF would meet it on a full disk)."""
    import xarray as xr

    def full(self, path, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(xr.Dataset, "to_netcdf", full)
    out = tmp_path / "r.nc"
    code, text = run_cli(capsys, *_sample(runs / "a" / "best.pt", tmp_path, out))
    assert_refused(code, text, f"no space left on device writing {out}")
    assert not list(tmp_path.glob("*.nc")) and not list(tmp_path.glob(".*.tmp"))


def test_read_only_output_folder_is_named(runs, tmp_path, capsys, monkeypatch):
    import tempfile

    def read_only(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")
    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    out = tmp_path / "r.nc"
    code, text = run_cli(capsys, *_sample(runs / "a" / "best.pt", tmp_path, out))
    assert_refused(code, text, f"cannot write {out} (read-only")


# --------------------------------------------------------------------------- one writer per run folder


def test_two_concurrent_trains_second_refused_first_intact(tiny_data, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "run"
    args = [str(a) for a in train_args(tiny_data, out, **{"train.max_steps": 400, "train.epochs": 400,
                                                      "train.eval_every": 0})]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    first = subprocess.Popen([sys.executable, "-m", "diffpose_viz.cli", *args], cwd=tmp_path, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = tmp_path / ".run.lock"
    try:
        deadline = time.time() + 120
        while not (lock.exists() and f"pid {first.pid}" in lock.read_text()):
            assert first.poll() is None, first.communicate()
            assert time.time() < deadline, "the first train never took the lock"
            time.sleep(0.05)
        code, text = run_cli(capsys, *train_args(tiny_data, out, "--force"))
        assert_refused(code, text, str(out), f"pid {first.pid}", "started")
    finally:
        stdout, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr
    steps = [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 400  # one run's log only
    assert ck.load_checkpoint(out / "last.pt")["progress"]["step"] == 400
    assert not lock.exists()  # released and removed


def test_a_failed_train_leaves_no_new_folder(tmp_path, capsys, tiny_data):  # noqa: F811
    out = tmp_path / "new" / "run"
    code, text = run_cli(capsys, *train_args(tiny_data, out, **{"data.train_subjects": "[no_such_subject]"}))
    assert_refused(code, text)
    assert not (tmp_path / "new").exists() and list(tmp_path.iterdir()) == []
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    code, text = run_cli(capsys, *train_args(tiny_data, kept, **{"data.train_subjects": "[no_such_subject]"}))
    assert_refused(code, text)
    assert sorted(p.name for p in kept.iterdir()) == ["notes.txt"]  # no stray config.yaml


def test_train_out_under_a_file_is_named(tmp_path, capsys, tiny_data):  # noqa: F811
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code, text = run_cli(capsys, *train_args(tiny_data, blocker / "run"))
    assert_refused(code, text, str(blocker / "run"), "cannot create")


# --------------------------------------------------------------------------- leakage


def _extra_source(tiny_data: Path, tmp_path: Path, subject: str) -> Path:
    """A copy of the tiny data file holding `subject`'s takes under another name (a renamed test subject)."""
    mocap = load_3d(tiny_data)
    positions = {"renamed": mocap.positions[subject]}
    cams = {"renamed": [c.to_dict() for c in mocap.cameras_for(subject)]}
    return save_3d(tmp_path / "extra.npz", positions, cameras=cams, metadata={"fps": 30})


def _config_with_extra(tmp_path: Path, tiny_data: Path, extra: list[dict]) -> Path:  # noqa: F811
    from test_cli_bad_input import _train_config

    return _train_config(tmp_path, tiny_data, **{"data.extra_train": extra, "train.max_steps": 2})


def test_a_test_subject_in_extra_train_is_refused(tiny_data, tmp_path, capsys):  # noqa: F811
    cfg = _config_with_extra(tmp_path, tiny_data, [{"path": str(tiny_data), "subjects": ["syn_t"], "name": "same"}])
    out = tmp_path / "run"
    code, text = run_cli(capsys, "train", cfg, "--out", out, "--no-progress")
    assert_refused(code, text, "data.extra_train[0]", "syn_t", "--allow-leakage")
    assert not out.exists()


def test_a_renamed_copy_of_the_test_subject_is_refused(tiny_data, tmp_path, capsys):  # noqa: F811
    extra = _extra_source(tiny_data, tmp_path, "syn_t")
    cfg = _config_with_extra(tmp_path, tiny_data, [{"path": str(extra), "subjects": ["renamed"], "name": "copy"}])
    code, text = run_cli(capsys, "train", cfg, "--out", tmp_path / "run", "--no-progress")
    assert_refused(code, text, "copy:renamed", "test rows", "--allow-leakage")
    code, text = run_cli(capsys, "train", cfg, "--out", tmp_path / "run", "--no-progress", "--allow-leakage")
    assert code == 0, text


def test_calibrate_with_the_training_file_is_refused(runs, tiny_data, tmp_path, capsys):  # noqa: F811
    copy = tmp_path / "copy_of_training.npz"
    shutil.copy(tiny_data, copy)
    for path in (tiny_data, copy):
        code, text = run_cli(capsys, *_evaluate(runs / "a" / "best.pt", tmp_path / "r.nc", "--calibrate-with", path))
        assert_refused(code, text, f"--calibrate-with {path}", "training data", "--allow-leakage")
    assert not (tmp_path / "r.nc").exists()


def test_calibrate_with_a_file_sharing_validation_rows_is_refused(runs, tiny_data, tmp_path, capsys):  # noqa: F811
    mocap = load_3d(tiny_data)  # the training subjects' takes plus one more subject: not the same bytes
    positions = {s: mocap.positions[s] for s in ("syn_a", "syn_b", "syn_c")}
    positions["other"] = {k: v + 0.5 for k, v in mocap.positions["syn_a"].items()}
    cams = {s: [c.to_dict() for c in mocap.cameras_for("syn_a")] for s in positions}
    overlapping = save_3d(tmp_path / "overlap.npz", positions, cameras=cams, metadata={"fps": 30})
    code, text = run_cli(capsys, *_evaluate(runs / "a" / "best.pt", tmp_path / "r.nc", "--calibrate-with",
                                            overlapping))
    assert_refused(code, text, str(overlapping), "validation rows", "rows of the training data")


# --------------------------------------------------------------------------- the lab (and the dashboard's page on it)


def _results_copy(src: Path, dst: Path, **attrs) -> Path:
    import xarray as xr

    with xr.open_dataset(src) as ds:
        ds = ds.load()
    ds.attrs.update(attrs)
    dst.parent.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(dst)
    return dst


def test_lab_refuses_a_results_file_paired_with_another_checkpoint(runs, tmp_path):
    from diffpose_viz.lab import LabError, open_sample

    path = _results_copy(runs / "eval" / "a.nc", tmp_path / "r.nc", checkpoint=str(runs / "b" / "best.pt"))
    with pytest.raises(LabError, match="fingerprint") as err:
        open_sample(path, 0)
    assert ck.short(ck.checkpoint_fingerprint(runs / "b" / "best.pt")) in str(err.value)


def test_lab_refuses_a_model_attribute_that_disagrees_with_the_checkpoint(runs, tmp_path):
    from diffpose_viz.lab import LabError, open_sample

    path = _results_copy(runs / "eval" / "a.nc", tmp_path / "r.nc", model="Deterministic lifter",
                         checkpoint=str(runs / "a" / "best.pt"))
    with pytest.raises(LabError, match="attribute 'model'"):
        open_sample(path, 0)


def test_lab_accepts_a_moved_run_and_refuses_a_calibration_of_another_model(runs, tmp_path):
    from diffpose_viz.lab import LabError, open_sample

    shutil.copytree(runs / "a", tmp_path / "moved" / "run")
    path = _results_copy(runs / "eval" / "a.nc", tmp_path / "moved" / "r.nc", checkpoint="run/best.pt")
    shutil.copy(runs / "eval" / "a.metrics.json", tmp_path / "moved" / "r.metrics.json")
    sample = open_sample(path, 0)  # relative to the results file, found by content: accepted
    assert sample.ood_model is not None
    other = json.loads((runs / "eval" / "a.metrics.json").read_text())
    model = other["uncertainty"]["ood"]["model"]
    model["checkpoint_fingerprint"] = ck.checkpoint_fingerprint(runs / "b" / "best.pt")
    (tmp_path / "moved" / "r.metrics.json").write_text(json.dumps(other))
    with pytest.raises(LabError, match="changed after"):  # edited: the digest no longer matches
        open_sample(path, 0)
    from diffpose_viz.ood import DIGEST_KEY, content_digest

    model[DIGEST_KEY] = content_digest(model)  # re-sealed: the fingerprint itself is what is wrong
    (tmp_path / "moved" / "r.metrics.json").write_text(json.dumps(other))
    with pytest.raises(LabError, match="fitted for the checkpoint"):
        open_sample(path, 0)


def test_wild_on_a_truncated_video_exits_non_zero_naming_the_frame(tmp_path, capsys):
    cv2 = pytest.importorskip("cv2")
    from diffpose_viz.wild import mediapipe_detector

    if not mediapipe_detector.mediapipe_available():
        pytest.skip("MediaPipe (solutions.pose) is not usable here")
    writer = cv2.VideoWriter(str(tmp_path / "v.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    for i in range(30):
        writer.write(np.full((48, 64, 3), i * 8, np.uint8))
    writer.release()
    full = (tmp_path / "v.avi").read_bytes()
    (tmp_path / "cut.avi").write_bytes(full[: len(full) // 2])
    code, text = run_cli(capsys, "wild", tmp_path / "cut.avi", "--out", tmp_path / "out")
    assert_refused(code, text, str(tmp_path / "cut.avi"), "reading stopped at frame")
