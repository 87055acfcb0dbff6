"""Config YAML round trip and strictness; also holds the tiny synthetic dataset the training,
evaluation, CLI and DDP tests share (imported from here)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from diffpose_viz.camera import h36m_cameras
from diffpose_viz.datasets.vp3d import save_3d
from diffpose_viz.training.config import (
    ConfigError,
    ExperimentConfig,
    config_from_dict,
    load_config,
    save_config,
    to_dict,
)

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "demo" / "data_3d_demo.npz"

# A standing body (x: person's left, y: forward, z: up; metres, pelvis at 0), H36M-17 order.
_BODY = np.array([
    [0.00, 0.00, 0.00], [-0.13, 0.00, 0.00], [-0.14, 0.03, -0.45], [-0.14, 0.00, -0.88],
    [0.13, 0.00, 0.00], [0.14, 0.03, -0.45], [0.14, 0.00, -0.88],
    [0.00, 0.00, 0.23], [0.00, 0.00, 0.48], [0.00, 0.06, 0.58], [0.00, 0.00, 0.72],
    [0.18, 0.00, 0.45], [0.22, 0.02, 0.18], [0.24, 0.08, -0.06],
    [-0.18, 0.00, 0.45], [-0.22, 0.02, 0.18], [-0.24, 0.08, -0.06],
])


def synthetic_sequence(n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """A walking-like clip: legs and arms swing (rotations about the hips/shoulders), the body turns and
    moves; world metres, Z up, pelvis ~0.95 m above the floor."""
    t = np.arange(n_frames) / 30.0
    freq, phase, yaw0 = rng.uniform(0.7, 1.3), rng.uniform(0, 2 * np.pi), rng.uniform(-np.pi, np.pi)
    out = np.empty((n_frames, 17, 3))
    for i, ti in enumerate(t):
        body = _BODY.copy()
        swing = 0.5 * np.sin(2 * np.pi * freq * ti + phase)
        for hip, joints, sign in ((1, (2, 3), 1), (4, (5, 6), -1), (14, (15, 16), -1), (11, (12, 13), 1)):
            a = sign * swing
            c, s = np.cos(a), np.sin(a)
            rel = body[list(joints)] - body[hip]
            body[list(joints)] = body[hip] + np.stack([rel[:, 0], c * rel[:, 1] - s * rel[:, 2],
                                                       s * rel[:, 1] + c * rel[:, 2]], -1)
        yaw = yaw0 + 0.3 * ti
        c, s = np.cos(yaw), np.sin(yaw)
        rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
        out[i] = body @ rot.T + np.array([0.3 * np.sin(ti), 0.3 * np.cos(ti), 0.95])
    return out.astype(np.float32)


def make_tiny_dataset(path: Path, seed: int = 0, n_actions: int = 4, n_frames: int = 40) -> Path:
    """VideoPose3D-format npz: 3 train subjects + 1 test subject with the public H36M S1 cameras."""
    rng = np.random.default_rng(seed)
    subjects = ["syn_a", "syn_b", "syn_c", "syn_t"]
    positions = {s: {f"walk {k:03d}": synthetic_sequence(n_frames, rng) for k in range(n_actions)} for s in subjects}
    cams = [c.to_dict() for c in h36m_cameras("S1")]
    return save_3d(path, positions, cameras={s: cams for s in subjects}, metadata={"fps": 30})


def tiny_overrides(data_path: Path, **extra) -> list[str]:
    """Overrides that shrink configs/smoke.yaml to a second-scale run on the synthetic data."""
    base = {
        "data.path": str(data_path), "data.train_subjects": "[syn_a, syn_b, syn_c]", "data.test_subjects": "[syn_t]",
        "data.cameras": "[0]", "data.frame_stride": 4, "data.max_frames": None, "data.max_test_samples": 24,
        "data.validation_fraction": 0.2, "model.hidden": 8, "model.layers": 1, "model.heads": 2,
        "model.context_dim": 8, "model.context_hidden": 8, "model.martinez_hidden": 16, "init.n_samples": 16,
        "init.em_iters": 4, "init.n_kernels": 2, "train.batch_size": 16, "train.epochs": 1, "train.val_max_samples": 16,
        "train.log_every": 5, "train.progress": False,
    }
    base.update(extra)
    return [f"{k}={'null' if v is None else v}" for k, v in base.items()]


@pytest.fixture
def one_thread():
    """Tiny models run fastest (and most predictably on a shared machine) on one intra-op thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("tinydata") / "data_3d_tiny.npz")


def tiny_config(data_path: Path, **extra) -> ExperimentConfig:
    return load_config(REPO / "configs" / "smoke.yaml", tiny_overrides(data_path, **extra))


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("name", ["smoke.yaml", "demo.yaml", "bandai_cpu.yaml", "bandai_gpu.yaml"])
def test_shipped_configs_load_and_round_trip(name, tmp_path):
    path = REPO / "configs" / name
    if not path.exists():
        pytest.skip(f"{path} not written yet")
    cfg = load_config(path)
    save_config(cfg, tmp_path / "again.yaml")
    again = load_config(tmp_path / "again.yaml")
    assert to_dict(again) == to_dict(cfg)
    assert again.detector == cfg.detector  # nested frozen dataclass with tuples survives the round trip


def test_round_trip_keeps_every_value(tmp_path):
    cfg = ExperimentConfig(name="rt", method="martinez")
    cfg.train.lr = 3e-4
    cfg.data.cameras = ["54138969", "1"]
    cfg.detector = replace(cfg.detector, swap_pairs=((4, 1), (5, 2)), occluder_size=(0.2, 0.3))
    save_config(cfg, tmp_path / "c.yaml")
    back = load_config(tmp_path / "c.yaml")
    assert back.train.lr == pytest.approx(3e-4)
    assert back.detector.swap_pairs == ((4, 1), (5, 2))
    assert back.data.cameras == ["54138969", "1"]
    assert to_dict(back) == to_dict(cfg)


def test_unknown_key_names_key_and_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump({"name": "x", "train": {"lr": 1e-3, "learning_rate": 2}}))
    with pytest.raises(KeyError) as err:
        load_config(p)
    assert "train.learning_rate" in str(err.value) and str(p) in str(err.value)
    p.write_text(yaml.safe_dump({"detector": {"noise_px": 3}}))
    with pytest.raises(KeyError, match="detector.noise_px"):
        load_config(p)


def test_wrong_types_and_values_are_errors(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("train:\n  epochs: two\n")
    with pytest.raises(ConfigError, match="train.epochs"):
        load_config(p)
    p.write_text("method: diffusion\n")
    with pytest.raises(ConfigError, match="method"):
        load_config(p)
    with pytest.raises(ConfigError, match="test_subjects"):
        config_from_dict({"data": {"train_subjects": ["a"], "test_subjects": ["a"]}})
    with pytest.raises(ConfigError, match="diffusion.loss"):  # an MPJPE on noise means nothing
        config_from_dict({"diffusion": {"prediction": "eps", "loss": "mpjpe"}})


def test_raw_2d_context_reaches_the_denoiser():
    """model.context_raw_2d appends [u, v, confidence, mask] to the encoder's features, in training and sampling."""
    import torch

    from diffpose_viz import pipeline

    cfg = config_from_dict({"method": "diffpose_joint", "model": {"hidden": 16, "layers": 1, "heads": 2, "context_dim": 8, "context_hidden": 8,
                                      "context_layers": 1, "context_raw_2d": True}})
    net = pipeline.build_network(cfg).eval()
    cond = torch.rand(2, 17, 3)
    ctx = net.encode(cond)
    assert ctx.shape == (2, 17, 12) and net.denoiser.context_dim == 12
    assert torch.allclose(ctx[..., 8:10], cond[..., :2]) and torch.equal(ctx[..., 11], torch.ones(2, 17))
    out = net(torch.randn(2, 17, 3), torch.tensor([3, 7]), cond)
    assert out.shape == (2, 17, 3)


def test_yaml_scientific_notation_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  lr: 1e-3\n")  # YAML 1.1 reads this as a string
    cfg = load_config(p, ["train.epochs=3", "data.cameras=[0, 2]", "diffusion.schedule.kind=linear"])
    assert cfg.train.lr == 1e-3 and cfg.train.epochs == 3
    assert cfg.data.cameras == ["0", "2"] and cfg.diffusion.schedule.kind == "linear"
    with pytest.raises(KeyError, match="train.epoch"):
        load_config(p, ["train.epoch=3"])
