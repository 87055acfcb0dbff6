"""An imported released-format checkpoint is an ordinary run: evaluate, sample, wild and every dashboard page
take it (fixtures in the released layouts, tests/released/released_files.py)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from diffpose_viz.cli import main
from diffpose_viz.evaluation.evaluate import EvalData, evaluate
from diffpose_viz.inference import SamplingSetting
from diffpose_viz.released import import_released
from diffpose_viz.results import load_results
from diffpose_viz.skeleton import BLAZEPOSE33_NAMES

from released.released_files import (import_frame_pair, mixste_shapes, save_run_py_file, tcn_shapes,
                                     tiny_data_section)

pytestmark = pytest.mark.usefixtures("one_thread")
DASH = Path(__file__).resolve().parents[2] / "dashboard"


@pytest.fixture(scope="module")
def runs(tiny_data, tmp_path_factory):  # noqa: F811
    """Imported runs whose `data` section is the tiny synthetic set instead of Human3.6M (import's `data`)."""
    d = tmp_path_factory.mktemp("imported")
    data = tiny_data_section(tiny_data)
    official, lifter, diff = import_frame_pair(d, tiny_data)
    mix = save_run_py_file(d / "mixste.bin", mixste_shapes(16, 1, 9), 3, data_parallel=True)
    tcn = save_run_py_file(d / "detectron_coco.bin", tcn_shapes([3, 3], 16), 4)
    return {"official": official,
            "lifter": lifter,
            "video": import_released("diffpose-video", [mix, diff], d / "video", data=data)[0],
            "tcn_coco": import_released("videopose3d", [tcn], d / "tcn", input_layout="coco", data=data)[0]}


def _eval_data(tiny_data, **kw) -> EvalData:
    return EvalData(max_samples=12, **kw)


@pytest.mark.parametrize("run", ["official", "lifter", "video", "tcn_coco"])
def test_evaluate_an_imported_run(runs, tiny_data, tmp_path, run):  # noqa: F811
    out = evaluate(runs[run], tmp_path / f"{run}.nc", data=_eval_data(tiny_data), progress=False,
                   sampling=SamplingSetting(record=run == "official"))
    ds = load_results(out.results_path)
    assert np.isfinite(ds["hypotheses"].values).all() and ds.sizes["sample"] > 0
    summary = json.loads(Path(out.metrics_path).read_text())
    assert np.isfinite(summary["P1_mm_frame_wise"]) and "uncertainty" in summary


@pytest.mark.parametrize("run", ["official", "tcn_coco"])
def test_sample_an_imported_run(runs, tmp_path, run, capsys):
    kp = np.random.default_rng(0).uniform(300, 700, (12, 17, 2))
    (tmp_path / "kp.json").write_text(json.dumps({"keypoints": kp.tolist(), "format": "coco17"}))
    assert main(["sample", str(runs[run]), "--input", str(tmp_path / "kp.json"), "--image-size", "1000", "1000",
                 "--out", str(tmp_path / "mine.nc")]) == 0, capsys.readouterr().err
    assert np.isfinite(load_results(tmp_path / "mine.nc")["hypotheses"].values).all()


def test_wild_lifts_with_an_imported_coco_lifter(runs, tmp_path):
    """`wild` hands the BlazePose detections (as H36M-17) to the imported VideoPose3D COCO model directly."""
    from diffpose_viz.wild.mediapipe_detector import build_wild_detections
    from diffpose_viz.wild.run import lift_detections

    rng = np.random.default_rng(1)
    base = np.stack([320 + 40 * rng.standard_normal(len(BLAZEPOSE33_NAMES)),
                     240 + 80 * rng.standard_normal(len(BLAZEPOSE33_NAMES))], -1)
    frames = 15
    kp = base[None] + rng.normal(0, 2, (frames, len(BLAZEPOSE33_NAMES), 2))
    det = build_wild_detections(kp, np.full(kp.shape[:2], 0.9), np.arange(frames), 640, 480, fps=30.0,
                                source="clip.mp4")
    path, note = lift_detections(det, runs["tcn_coco"], tmp_path / "results.nc", sampling=SamplingSetting(1),
                                 device="cpu")
    ds = load_results(path)
    assert ds.sizes["sample"] == frames and np.isfinite(ds["hypotheses"].values).all(), note


def test_every_dashboard_page_opens_an_imported_runs_results(runs, tiny_data, tmp_path, monkeypatch):
    """Non-browser check (streamlit AppTest): the results of imported runs on every page, no exception."""
    AppTest = pytest.importorskip("streamlit.testing.v1").AppTest
    folder = tmp_path / "results"
    for run in ("official", "lifter"):
        evaluate(runs[run], folder / f"{run}.nc", data=_eval_data(tiny_data), progress=False,
                 sampling=SamplingSetting(record=run == "official"))
    monkeypatch.setenv("DIFFPOSE_VIZ_RESULTS", str(folder))
    for page in [DASH / "Overview.py", *sorted((DASH / "pages").glob("*.py"))]:
        at = AppTest.from_file(str(page), default_timeout=90).run()
        assert not at.exception, (page.name, [e.value for e in at.exception])
        assert not at.error, (page.name, [e.value for e in at.error])


@pytest.mark.parametrize("run, context", [("lifter", "frame"), ("tcn_coco", "video")])
def test_an_imported_lifter_is_phi_st_of_the_two_stage_diffpose(runs, tiny_data, tmp_path, run, context):  # noqa: F811
    """GCNpose (frame) and a VideoPose3D TCN (video) as the frozen pre-trained phi_ST: DiffPose trains on them."""
    from diffpose_viz.inference import load_model
    from diffpose_viz.training.trainer import train

    from tiny_runs import tiny_config

    extra = {"method": "diffpose", "model.context_checkpoint": str(runs[run]), "train.max_steps": 2,
             "model.context": context, "init.depth_source": "prior"}
    if context == "video":
        extra.update({"model.frames": 9, "augmentation.view.enabled": False})
    result = train(tiny_config(tiny_data, **extra), tmp_path / "diffpose", progress=False)
    model = load_model(result.best)
    assert model.cfg.model.context_checkpoint == str(runs[run])
    assert model.extras["phi_st"] is not None
