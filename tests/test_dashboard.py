"""Every dashboard page in-process with streamlit's AppTest: widgets set, values read back, no exceptions.

Runs against the schema-conformant test fixture in conftest.py (DIFFPOSE_VIZ_RESULTS points at it).
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from streamlit.testing.v1 import AppTest

DASH = Path(__file__).resolve().parents[1] / "dashboard"
PAGE = {p.stem.split("_", 1)[1]: str(p) for p in (DASH / "pages").glob("*.py")}
TIMEOUT = 60


@pytest.fixture
def results_env(results_dir, monkeypatch):
    monkeypatch.setenv("DIFFPOSE_VIZ_RESULTS", str(results_dir))
    return results_dir


def _run(path: str) -> AppTest:
    at = AppTest.from_file(path, default_timeout=TIMEOUT).run()
    _ok(at)
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _figures(at: AppTest) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def test_overview_lists_every_results_file(results_env):
    at = _run(str(DASH / "Overview.py"))
    table = at.dataframe[0].value
    assert set(table["model"]) == {"diffpose", "gaussian_diffusion", "deterministic_lifter"}
    assert table.iloc[0]["model"] == "diffpose"  # DiffPose first
    assert at.text_input(key="_results_dir_input").value == str(results_env)


def test_missing_folder_is_a_message_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFPOSE_VIZ_RESULTS", str(tmp_path / "nope"))
    at = AppTest.from_file(PAGE["Failure_cases"], default_timeout=TIMEOUT).run()
    assert not at.exception and "not found" in at.error[0].value


def test_bad_file_is_a_message(tmp_path, monkeypatch):
    (tmp_path / "diffpose.nc").write_bytes(b"this is not netCDF")
    monkeypatch.setenv("DIFFPOSE_VIZ_RESULTS", str(tmp_path))
    at = AppTest.from_file(str(DASH / "Overview.py"), default_timeout=TIMEOUT).run()
    assert not at.exception and "Could not read" in at.error[0].value


def test_results_folder_from_sidebar(results_env, tmp_path, monkeypatch):
    monkeypatch.delenv("DIFFPOSE_VIZ_RESULTS")
    at = AppTest.from_file(str(DASH / "Overview.py"), default_timeout=TIMEOUT).run()
    at.text_input(key="_results_dir_input").input(str(results_env)).run()
    _ok(at)
    assert len(at.dataframe[0].value) == 3


def test_trajectory_explorer(results_env, results_ds):
    at = _run(PAGE["Trajectory_explorer"])
    # only files with trajectories are offered
    assert at.selectbox(key="traj_model").options == ["diffpose", "gaussian_diffusion"]
    at.selectbox(key="traj_sample").set_value(3).run()
    at.slider(key="traj_hyps").set_value(2).run()
    _ok(at)
    assert at.slider(key="traj_hyps").value == 2
    fig = _figures(at)[0]
    assert len(fig["frames"]) == results_ds.sizes["step"]
    assert fig["data"][1]["name"] == "h_k (2 hypotheses)"
    assert at.metric[0].value == f"{results_ds['err'].values[3].mean():.1f} mm"


def test_gmm_components(results_env, results_ds):
    at = _run(PAGE["GMM_components"])
    at.multiselect(key="gmm_joints").set_value(["head_top", "left_wrist"]).run()
    at.slider(key="gmm_nsamples").set_value(20).run()
    _ok(at)
    fig = _figures(at)[0]
    m = results_ds.sizes["kernel"]
    assert len([s for s in fig["layout"]["shapes"] if s["type"] == "circle"]) == 2 * m
    assert list(at.dataframe[0].value["joint"]) == ["head_top", "left_wrist"]
    at.multiselect(key="gmm_joints").set_value([]).run()
    _ok(at)
    assert "at least one joint" in at.info[0].value


def test_failure_cases_filters_and_ranking(results_env, results_ds):
    at = _run(PAGE["Failure_cases"])
    table = at.dataframe[0].value
    assert list(table["error (mm)"]) == sorted(table["error (mm)"], reverse=True)
    at.radio(key="fail_occ").set_value("with hidden joints").run()
    _ok(at)
    table = at.dataframe[0].value
    assert (table["hidden joints"] > 0).all() and len(table) == 4
    at.selectbox(key="fail_joint").set_value("left_wrist").run()
    at.multiselect(key="fail_actions").set_value(["walk", "sit"]).run()
    _ok(at)
    table = at.dataframe[0].value
    assert set(table["action"]) <= {"Walking 1", "Sitting"}
    j = 13
    assert list(table["error (mm)"]) == sorted(table["error (mm)"], reverse=True)
    assert table["error (mm)"].iloc[0] == pytest.approx(results_ds["err"].values[table["sample"].iloc[0], j], abs=0.06)
    figs = _figures(at)
    assert figs[0]["data"][0]["name"].startswith("hypotheses")
    assert "joints hidden" in json.dumps(figs[1])  # occlusion pair for an occluded sample
    at.selectbox(key="fail_model").set_value("deterministic_lifter").run()
    _ok(at)


def test_per_joint_errors(results_env):
    at = _run(PAGE["Per_joint_errors"])
    assert len(at.get("plotly_chart")) == 5  # joints, actions, spread, hypotheses, steps
    at.checkbox(key="joint_split").uncheck().run()
    _ok(at)
    assert _figures(at)[0]["data"][0]["name"] == "all"
    at.selectbox(key="joint_model").set_value("deterministic_lifter").run()
    _ok(at)
    assert "One hypothesis" in at.info[0].value


def test_model_comparison(results_env):
    at = _run(PAGE["Model_comparison"])
    assert len(at.dataframe[0].value) == 3
    at.selectbox(key="cmp_b").set_value("deterministic_lifter").run()
    _ok(at)
    assert "deterministic_lifter better on" in _figures(at)[-1]["layout"]["title"]["text"]
    at.multiselect(key="cmp_models").set_value(["diffpose"]).run()
    _ok(at)
    assert len(at.get("plotly_chart")) == 1


def _npz(kp: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, keypoints=kp)
    return buf.getvalue()


def test_own_input_upload_and_preview(results_env, results_ds):
    at = _run(PAGE["Your_own_input"])
    assert "Upload a file" in at.info[0].value
    kp = results_ds["input_2d"].values[:3]
    at.file_uploader(key="own_file").set_value(("mine.npz", _npz(kp), "application/octet-stream")).run()
    _ok(at)
    assert "3 frame(s)" in at.success[0].value
    at.slider(key="own_frame").set_value(2).run()
    _ok(at)
    preview = _figures(at)[0]
    assert preview["layout"]["yaxis"]["range"] == [1000, 0]  # image rows grow downwards
    # Without a trained model / sampling command the page says so instead of failing.
    at.text_input(key="own_ckpt").input(str(results_env / "missing.pt")).run()
    at.button(key="own_run").click().run()
    assert not at.exception
    assert at.error and ("not available" in at.error[0].value or "not found" in at.error[0].value)


def test_own_input_real_sampling(results_env, results_ds, smoke_run):
    """With a real checkpoint (made by `scripts/run_demo.py`, as `make test` does first) the page lifts."""
    ckpt = smoke_run[1] / "diffpose" / "best.pt"
    at = _run(PAGE["Your_own_input"])
    kp = results_ds["input_2d"].values[:2]
    at.file_uploader(key="own_file").set_value(("mine.npz", _npz(kp), "application/octet-stream")).run()
    _ok(at)
    choices = at.selectbox(key="own_ckpt_pick").options
    assert choices[0].endswith("diffpose/best.pt"), choices  # DiffPose's checkpoints come first
    assert str(ckpt.relative_to(DASH.parent)) in choices
    at.text_input(key="own_ckpt").input(str(ckpt)).run()
    at.slider(key="own_hyp").set_value(3).run()
    at.button(key="own_run").click().run(timeout=180)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "own_result" in at.session_state
    result = xr.load_dataset(at.session_state["own_result"])
    assert result.sizes["sample"] == 2 and result.sizes["hypothesis"] == 3
    assert np.isfinite(result["pred"].values).all()
    figures = _figures(at)
    assert len(figures) >= 2  # the 2D preview and the 3D result
    assert any(t.get("type") == "scatter3d" for t in figures[-1]["data"])
    downloads = [el.proto.label for el in at.get("download_button")]
    assert any("netCDF" in label for label in downloads), downloads


def test_own_input_bad_upload(results_env):
    at = _run(PAGE["Your_own_input"])
    at.file_uploader(key="own_file").set_value(("bad.json", b"{not json", "application/json")).run()
    assert not at.exception and "Could not read" in at.error[0].value


def test_parse_keypoints_formats(results_ds):
    import sys
    sys.path.insert(0, str(DASH))
    import common
    kp = results_ds["input_2d"].values[:2]
    out, conf = common.parse_keypoints("a.npz", _npz(kp), "H36M-17")
    np.testing.assert_allclose(out, kp, rtol=1e-6)
    csv = "\n".join(",".join(f"{v:.3f}" for v in row.ravel()) for row in kp).encode()
    out, _ = common.parse_keypoints("a.csv", b"header\n" + csv, "H36M-17")
    np.testing.assert_allclose(out, kp, atol=1e-3)
    out, _ = common.parse_keypoints("a.json", json.dumps({"keypoints": kp.tolist()}).encode(), "H36M-17")
    np.testing.assert_allclose(out, kp, rtol=1e-6)
    coco = np.random.default_rng(0).uniform(0, 500, (1, 17, 2))
    out, _ = common.parse_keypoints("c.npz", _npz(coco), "COCO-17")
    np.testing.assert_allclose(out[0, 0], coco[0, [11, 12]].mean(0))  # pelvis = mean of the hips
    with pytest.raises(ValueError, match="wrong shape"):
        common.parse_keypoints("bad.npz", _npz(np.zeros((4, 5))), "H36M-17")


def test_own_input_video_detects_and_lifts(results_env, smoke_run):
    """Issue 5 on the page: a real clip through MediaPipe and a real checkpoint, in-process."""
    from diffpose_viz.wild.mediapipe_detector import mediapipe_available

    if not mediapipe_available():
        pytest.skip("mediapipe is not installed (the `detector` extra)")
    repo = Path(__file__).resolve().parents[1]
    ckpt = smoke_run[1] / "diffpose" / "best.pt"
    from diffpose_viz.wild.demo_media import DEMO_NAME, fetch_demo_media

    clip = repo / "data" / "media" / DEMO_NAME
    if not clip.exists():
        try:
            clip = fetch_demo_media(cache_dir=repo / "data" / "cache", out=repo / "tests" / "_artifacts" / "media_dash")
        except Exception as err:  # offline machine
            pytest.skip(f"demo media unavailable: {err}")
    at = _run(PAGE["Your_own_input"])
    at.file_uploader(key="own_media").set_value((clip.name, clip.read_bytes(), "video/mp4")).run()
    at.text_input(key="own_media_ckpt").input(str(ckpt)).run()
    at.slider(key="own_media_frames").set_value(12).run()
    at.button(key="own_media_run").click().run(timeout=300)
    assert not at.exception and not at.error, [e.value for e in at.error]
    res = at.session_state["own_media_result"]
    assert res.n_frames == 12 and res.results_path is not None
    assert "person found in" in at.success[0].value
    assert at.get("image"), "the first overlay frame is shown"
    assert any("overlay" in el.proto.label for el in at.get("download_button"))
    assert len(_figures(at)) >= 1  # the 3D result of the lifted frames




def test_lab_missing_checkpoint_is_a_message(results_ds, tmp_path, monkeypatch):
    ds = results_ds.copy()
    ds.attrs = {**results_ds.attrs, "checkpoint": str(tmp_path / "gone" / "best.pt")}
    ds.to_netcdf(tmp_path / "diffpose.nc")
    monkeypatch.setenv("DIFFPOSE_VIZ_RESULTS", str(tmp_path))
    at = AppTest.from_file(PAGE["What_if_lab"], default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "does not exist" in at.error[0].value


def test_lab_hiding_a_joint_reports_a_larger_spread(tmp_path, monkeypatch, smoke_run):
    ds = xr.load_dataset(smoke_run[0] / "diffpose_joint.nc")
    ds.attrs["checkpoint"] = str(Path(__file__).resolve().parents[1] / ds.attrs["checkpoint"])
    ds.to_netcdf(tmp_path / "diffpose.nc")
    monkeypatch.setenv("DIFFPOSE_VIZ_RESULTS", str(tmp_path))
    at = _run(PAGE["What_if_lab"])
    at.selectbox(key="lab_sample").set_value(3).run()
    at.multiselect(key="lab_hide").set_value(["left_wrist"]).run()
    _ok(at)
    last = at.session_state["lab_last"]
    assert last["hidden"] == ["left_wrist"]
    assert last["spread_after"][13] > last["spread_before"][13]
    assert at.metric[0].label == "spread of left_wrist"
    titles = [f["layout"].get("title", {}).get("text", "") for f in _figures(at)]
    assert any("H_K after" in t for t in titles) and any("reverse diffusion after" in t for t in titles)
    at.slider(key="lab_n").set_value(5).run()
    at.slider(key="lab_k").set_value(3).run()
    _ok(at)
    deterministic = at.session_state["lab_last"]["spread_before"]
    at.number_input(key="lab_eta").set_value(1.0).run()  # the setting's eta reaches the lab's rerun
    _ok(at)
    assert at.session_state["lab_last"]["spread_before"] != deterministic


# --------------------------------------------------------------------------- Timeline


def _timeline_folder(tmp_path, video: str = "ok"):
    """A wild-run-like folder (results.nc + detections.npz naming clip.mp4) plus a second model's results of
    the same clip for A/B. video: 'ok', 'missing' or 'corrupt'."""
    pytest.importorskip("av")
    from timeline_fixtures import sequence_results, wild_run_folder

    run = wild_run_folder(tmp_path / "run", n_frames=24, n_rows=12, video=video == "ok")
    if video == "corrupt":
        (run / "clip.mp4").write_bytes(b"\x00garbage" * 64)
    sequence_results(12, model="lifter", seed=4).to_netcdf(run / "lifter.nc")
    return run


def test_timeline_scrubs_frame_2d_and_3d_together(tmp_path, monkeypatch):
    run = _timeline_folder(tmp_path)
    monkeypatch.setenv("DIFFPOSE_VIZ_RESULTS", str(run))
    at = AppTest.from_file(PAGE["Timeline"], default_timeout=TIMEOUT)
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.exception + at.error]
    assert at.selectbox(key="tl_a").value == "lifter"  # files sorted by name, DiffPose first only by that name
    at.selectbox(key="tl_a").set_value("results").run()
    figs = _figures(at)
    assert len(figs) == 5  # 2D, 3D, strips, joint traces, the in-browser 3D
    assert figs[0]["layout"]["images"][0]["source"].startswith("data:image/jpeg")
    before_2d, before_3d = figs[0]["data"][1]["x"], figs[1]["data"][2]["x"]
    assert at.markdown[0].value.startswith("frame 0 (0.00 s)")
    at.button(key="tl_next").click().run()
    assert at.session_state["tl_pos"] == 1 and at.markdown[0].value.startswith("frame 1 (0.04 s)")
    figs = _figures(at)
    assert figs[0]["data"][1]["x"] != before_2d and figs[1]["data"][2]["x"] != before_3d
    assert figs[2]["layout"]["shapes"][-1]["x0"] == 1  # the strips' current-frame line moved too
    at.slider(key="tl_azimuth").set_value(0).run()  # the 3D view is kept while scrubbing
    at.button(key="tl_next").click().run()
    eye = _figures(at)[1]["layout"]["scene"]["camera"]["eye"]
    assert abs(eye["x"] - 3 * np.cos(np.radians(10))) < 1e-6 and abs(eye["y"]) < 1e-6
    at.slider(key="tl_pos").set_value(7).run()
    assert at.markdown[0].value.startswith("frame 7")
    worst = at.selectbox(key="tl_worst").options
    assert len(worst) == 6  # "—" and the five worst frames
    from diffpose_viz.figures.sequence import select_sequence

    ranked, _ = select_sequence(xr.load_dataset(run / "results.nc"), 0).worst(5)
    target = next(int(w) for w in ranked if int(w) != 7)
    at.selectbox(key="tl_worst").set_value(target).run()
    assert at.session_state["tl_pos"] == target
    # A/B: the lifter's results of the same clip
    at.selectbox(key="tl_b").set_value("lifter").run()
    assert not at.exception and not at.error
    names = [t.get("name") for t in _figures(at)[1]["data"]]
    assert "B mean (lifter)" in names and "A mean (results)" in names
    assert any("12 of 12 rows matched" in c.value for c in at.caption)
    # exports: a download of each cheap format
    for kind in ("csv", "bvh", "json"):
        at.selectbox(key="tl_fmt").set_value(kind).run()
        at.button(key="tl_export").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        assert any(f".{kind}" in el.proto.label for el in at.get("download_button"))


def test_timeline_play_and_save_refuses_an_existing_file(tmp_path, monkeypatch):
    run = _timeline_folder(tmp_path)
    monkeypatch.setenv("DIFFPOSE_VIZ_RESULTS", str(run))
    at = AppTest.from_file(PAGE["Timeline"], default_timeout=TIMEOUT)
    at.run()
    at.selectbox(key="tl_a").set_value("results").run()
    at.button(key="tl_play").click().run()
    assert at.session_state["tl_playing"] and at.button(key="tl_play").label == "❚❚ pause"
    target = tmp_path / "mine.csv"
    target.write_text("keep")
    at.selectbox(key="tl_fmt").set_value("csv").run()
    at.text_input(key="tl_save_to").input(str(target)).run()
    at.button(key="tl_export").click().run()
    assert not at.exception and "already exists" in at.error[0].value and target.read_text() == "keep"
    at.checkbox(key="tl_overwrite").check().run()
    at.button(key="tl_export").click().run()
    assert not at.error and target.read_text().startswith("frame,")


@pytest.mark.parametrize("video", ["missing", "corrupt"])
def test_timeline_without_a_readable_video_shows_the_2d(tmp_path, monkeypatch, video):
    run = _timeline_folder(tmp_path, video)
    monkeypatch.setenv("DIFFPOSE_VIZ_RESULTS", str(run))
    at = AppTest.from_file(PAGE["Timeline"], default_timeout=TIMEOUT)
    at.run()
    at.selectbox(key="tl_a").set_value("results").run()
    assert not at.exception
    if video == "missing":
        assert not at.error and any("clip.mp4: video not found" in w.value for w in at.warning)
    else:
        assert len(at.error) == 1 and "clip.mp4" in at.error[0].value and "blank canvas" in at.error[0].value
    figs = _figures(at)
    assert len(figs) == 5 and not figs[0]["layout"].get("images")


def test_timeline_on_results_without_sequence_order(results_env):
    at = _run(PAGE["Timeline"])
    assert any("no sequence order" in w.value for w in at.warning)
    assert len(_figures(at)) == 5


def test_timeline_of_a_single_frame(tmp_path, monkeypatch):
    """A `sample` of one image: no scrubber to move, the step buttons disabled, the views still drawn."""
    from timeline_fixtures import sequence_results

    sequence_results(1).to_netcdf(tmp_path / "one.nc")
    monkeypatch.setenv("DIFFPOSE_VIZ_RESULTS", str(tmp_path))
    at = _run(PAGE["Timeline"])
    assert "tl_pos" not in [s.key for s in at.slider] and at.button(key="tl_next").disabled
    assert len(_figures(at)) == 5 and at.markdown[0].value.startswith("frame 0")
