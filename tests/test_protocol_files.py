"""The paper's protocol on the user's own files, end to end: the shipped Human3.6M configs train and evaluate
on format-identical fixtures (tests/fixtures/h36m_layout.py: 32-joint data_3d_h36m layout with the real
camera parameters, CPN-style 2D without scores, GT 2D and a DiffPose GMM file), in seconds."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from diffpose_viz.evaluation.evaluate import evaluate
from diffpose_viz.results import load_results
from diffpose_viz.methods import load_config
from diffpose_viz.training.trainer import train

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("h36m_layout", Path(__file__).parent / "fixtures" / "h36m_layout.py")
L = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(L)

SMALL = {"model.hidden": 8, "model.layers": 1, "model.heads": 2, "init.n_samples": 16, "init.em_iters": 4,
         "init.n_kernels": 2, "init.chunk_size": 256, "train.batch_size": 32, "train.epochs": 1, "train.max_steps": 3,
         "train.val_max_samples": 16, "train.progress": False, "data.validation_fraction": 0.2,
         "diffusion.n_hypotheses": 2, "diffusion.n_sampling_steps": 2, "data.error_model_kernels": 2, "device": "cpu"}


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> dict[str, Path]:
    return L.build_h36m_layout(tmp_path_factory.mktemp("h36m_layout"))


def protocol_config(name: str, layout: dict, **extra):
    values = {"data.path": layout["3d"], **SMALL, **extra}
    return load_config(REPO / "configs" / name, [f"{k}={'null' if v is None else v}" for k, v in values.items()])


@pytest.mark.parametrize("name,test_2d,rule", [("h36m_frame_cpn.yaml", "cpn", "error_model"),
                                                 ("h36m_frame_gt.yaml", "gt", "fixed"),
                                                 ("h36m_frame_cpn.yaml", "gmm", "file_gmm")])
def test_protocol_config_trains_and_evaluates(name, test_2d, rule, layout, tmp_path):
    """Two stages as the paper: the lifter (phi_ST), then DiffPose with it frozen; test on S9/S11 from the file."""
    lifter = train(protocol_config(name, layout, method="lifter", **{"data.test_2d": layout[test_2d],
                                                                       "data.uncertainty_2d": rule}),
                   tmp_path / "lifter", progress=False)
    cfg = protocol_config(name, layout, **{"data.test_2d": layout[test_2d], "data.uncertainty_2d": rule,
                                           "model.context_checkpoint": lifter.best})
    run = train(cfg, tmp_path / "diffpose", progress=False)
    out = evaluate(run.best, tmp_path / "diffpose.nc", progress=False)
    ds = load_results(out.results_path)
    assert set(np.unique(ds["subject"].values)) == {"S9", "S11"}
    # the damaged S11 'Directions' sequence is left out, as VideoPose3D does
    assert not ((ds["subject"].values == "S11") & (ds["action"].values.astype(str) == "Directions")).any()
    assert ((ds["subject"].values == "S11") & (ds["action"].values.astype(str) == "Directions 1")).any()
    assert np.isfinite(out.summary["P1_mm_action_wise"]) and out.summary["P1_mm_action_wise"] > 0
    assert ds.attrs["input_2d_file"] == str(layout[test_2d]) and ds.attrs["uncertainty_2d"] == rule
    if test_2d == "cpn":  # CPN files carry no scores: the results say so
        assert ds.attrs["confidence_from_file"] == 0 and "no scores" in ds.attrs["confidence_note"]
    # four cameras of the real calibration, rows per camera in the 2D file's list order
    assert set(np.unique(ds["camera"].values)) == {"54138969", "55011271", "58860488", "60457274"}
    if rule == "error_model":
        import torch

        ckpt = torch.load(run.best, weights_only=True)
        assert ckpt["detection_error"] is not None  # fitted on the training subjects, stored for test and sample


def _write_rows_as_2d_file(poses, path: Path) -> Path:
    """The rows' in-memory 2D written as a VideoPose3D data_2d file (positions_2d[S][action][camera index])."""
    from diffpose_viz.datasets.files_2d import H36M_CAMERA_ORDER

    seqs: dict = {}
    for i in np.lexsort((poses.frame, poses.camera, poses.action, poses.subject)):
        cam = H36M_CAMERA_ORDER.index(poses.cameras[str(poses.camera[i])].id)
        seqs.setdefault(str(poses.subject[i]), {}).setdefault(str(poses.action[i]), {}).setdefault(cam, []).append(
            poses.pose2d[i])
    positions = {s: {a: [np.stack(cams[c]).astype(np.float32) for c in sorted(cams)] for a, cams in acts.items()}
                 for s, acts in seqs.items()}
    return L.write_2d(path, positions, L.GT_METADATA)


def test_file_input_matches_the_in_memory_2d(layout, tmp_path):
    """The package's own 2D written as a data_2d file and read back through input_2d: file gives the same
    predictions as the in-memory path (the file path is the same arithmetic, not an approximation)."""
    from diffpose_viz.inputs import load_poses

    base = {"method": "lifter", "data.uncertainty_2d": "fixed", "augmentation.body.enabled": "false",
            "augmentation.view.enabled": "false"}
    cfg_mem = protocol_config("h36m_frame_gt.yaml", layout, **base, **{"data.input_2d": "gt"})
    poses = load_poses(cfg_mem.data, list(cfg_mem.data.test_subjects))
    written = _write_rows_as_2d_file(poses, tmp_path / "data_2d_h36m_mine.npz")
    run = train(protocol_config("h36m_frame_gt.yaml", layout, **base, **{"data.test_2d": written}),
                tmp_path / "lifter", progress=False)
    from_file = load_results(evaluate(run.best, tmp_path / "file.nc", progress=False,
                                      calibrate=False).results_path)
    # the same checkpoint with its test 2D switched to the in-memory projection
    import torch

    from diffpose_viz.checkpoint import save_checkpoint

    payload = {k: v for k, v in torch.load(run.best, weights_only=True).items()
               if k not in ("format", "format_version", "versions")}
    payload["config"] = json.loads(json.dumps(payload["config"]))
    payload["config"]["data"]["input_2d"] = "gt"
    save_checkpoint(tmp_path / "mem.pt", payload)
    in_memory = load_results(evaluate(tmp_path / "mem.pt", tmp_path / "mem.nc", progress=False,
                                      calibrate=False).results_path)

    def keys(d):
        return [f"{s}|{a}|{c}|{f}" for s, a, c, f in zip(d["subject"].values, d["action"].values,
                                                         d["camera"].values, d["frame"].values)]

    ka, kb = keys(from_file), keys(in_memory)
    shared = sorted(set(ka) & set(kb))
    assert len(shared) > 100  # the file path leaves out only the damaged S11 'Directions' rows
    ia, ib = [ka.index(k) for k in shared], [kb.index(k) for k in shared]
    np.testing.assert_allclose(from_file["err"].values[ia], in_memory["err"].values[ib], atol=1e-3)


def test_file_input_errors_are_one_line(layout, tmp_path):
    from diffpose_viz.errors import ConfigError

    with pytest.raises(ConfigError, match="data.test_2d"):
        protocol_config("h36m_frame_cpn.yaml", layout, **{"data.test_2d": None})
    with pytest.raises(ConfigError, match="augmentation"):
        protocol_config("h36m_frame_cpn.yaml", layout, **{"data.test_2d": layout["cpn"], "data.train_2d": layout["cpn"],
                                                          "augmentation.body.enabled": "true"})


def test_3dhp_protocol_config_trains_on_h36m_and_tests_on_3dhp(layout, tmp_path):
    """configs/3dhp_frame_gt.yaml on the fixtures: two stages on the H36M layout with GT 2D, test on the 3DHP
    test file's valid frames, PCK@150 / AUC on the 14 official joints per sequence and overall."""
    from diffpose_viz.datasets.mpi3dhp import fit_intrinsics, load_3dhp_test

    over = {"data.test_3dhp": layout["3dhp"]}
    lifter = train(protocol_config("3dhp_frame_gt.yaml", layout, method="lifter", **over), tmp_path / "lifter",
                   progress=False)
    run = train(protocol_config("3dhp_frame_gt.yaml", layout, **over, **{"model.context_checkpoint": lifter.best}),
                tmp_path / "diffpose", progress=False)
    out = evaluate(run.best, tmp_path / "3dhp.nc", progress=False)
    ds = load_results(out.results_path)
    data = load_3dhp_test(layout["3dhp"])
    assert ds.sizes["sample"] == sum(int(s.valid.sum()) for s in data.values())  # valid frames only
    assert set(ds["subject"].values) == {f"TS{k}" for k in range(1, 7)}
    per_seq = out.summary["per_action"]
    assert {f"TS{k}" for k in range(1, 7)} <= set(per_seq)
    assert all("PCK" in " ".join(v) for v in per_seq.values()) and 0 <= out.summary["PCK150_14joints_pct"] <= 100
    fx, fy, cx, cy, rms = fit_intrinsics(data["TS1"])  # the fixture's camera: f 1500, centre (1024, 1024)
    assert abs(fx - 1500) < 0.5 and abs(cx - 1024) < 0.5 and rms < 0.05


def test_video_protocol_config_two_stages(layout, tmp_path):
    """configs/h36m_video_cpn.yaml on the fixtures (windows shortened to 5 frames): the temporal phi_ST, then
    DiffPose conditioned on it, CPN 2D from the file for training and test."""
    over = {"data.train_2d": layout["cpn"], "data.test_2d": layout["cpn"], "model.frames": 5}
    stage1 = train(protocol_config("h36m_video_cpn.yaml", layout, method="video_lifter", **over),
                   tmp_path / "video_lifter", progress=False)
    run = train(protocol_config("h36m_video_cpn.yaml", layout, **over, **{"model.context_checkpoint": stage1.best}),
                tmp_path / "diffpose", progress=False)
    out = evaluate(run.best, tmp_path / "v.nc", progress=False, calibrate=False)
    assert np.isfinite(out.summary["P1_mm_action_wise"])
    assert set(load_results(out.results_path)["subject"].values) == {"S9", "S11"}
