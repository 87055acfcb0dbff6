"""The tiny synthetic VideoPose3D dataset and config helpers that the training, evaluation, CLI and DDP tests
share (their fixtures `tiny_data`, `one_thread` and `smoke_run` live in conftest.py), and the smoke run that
`make test` builds first, built here when a plain `pytest` finds it missing."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from diffpose_viz.camera import h36m_cameras
from diffpose_viz.datasets.vp3d import save_3d
from diffpose_viz.methods import load_config
from diffpose_viz.config import ExperimentConfig

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "demo" / "data_3d_demo.npz"
#: Where `make test` (scripts/run_demo.py on configs/smoke.yaml) puts the smoke run; the tests read it there.
SMOKE_RESULTS = REPO / "results" / "smoke"
SMOKE_RUNS = REPO / "runs" / "smoke"
#: The methods whose smoke run the tests read (the lifter is the two-stage diffpose's stage 1).
SMOKE_METHODS = ("lifter", "diffpose", "diffpose_joint")

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


def tiny_config(data_path: Path, **extra) -> ExperimentConfig:
    return load_config(REPO / "configs" / "smoke.yaml", tiny_overrides(data_path, **extra))


def train_run(cfg: ExperimentConfig, out: Path):
    """Train `cfg` into `out` without progress output; the finished Trainer."""
    from diffpose_viz.training.trainer import Trainer

    tr = Trainer(cfg, out, progress=False)
    tr.setup()
    tr.train()
    return tr


def ensure_smoke_run() -> tuple[Path, Path]:
    """(results folder, runs folder) of the smoke run, built with scripts/run_demo.py (as `make test` does) for
    SMOKE_METHODS when any of their checkpoints or results files is missing. A lock file keeps two pytest
    workers from building it at once; run_demo reuses what is there already."""
    from diffpose_viz.methods import METHODS

    def ready() -> bool:
        return all((SMOKE_RUNS / m / "best.pt").exists() and (SMOKE_RESULTS / f"{METHODS[m].model_name}.nc").exists()
                   for m in SMOKE_METHODS)

    if not ready():
        SMOKE_RUNS.mkdir(parents=True, exist_ok=True)
        with open(SMOKE_RUNS.parent / ".smoke_build.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not ready():
                cmd = [sys.executable, "scripts/run_demo.py", "--config", "configs/smoke.yaml", "--out",
                       "results/smoke", "--runs", "runs/smoke", "--methods", *SMOKE_METHODS]
                done = subprocess.run(cmd, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                                      text=True, timeout=3600)
                if done.returncode != 0:
                    raise RuntimeError(f"building the smoke run failed ({' '.join(cmd)}):\n{done.stderr[-3000:]}")
    return SMOKE_RESULTS, SMOKE_RUNS


def masked_2d(B: int = 3, T: int | None = None):
    """Screen-normalised 2D (B,17,3) or (B,T,17,3) with two missing joints: NaN coordinates (joint 5) and
    confidence 0 (joint 11)."""
    import torch

    torch.manual_seed(0)
    shape = (B, 17, 3) if T is None else (B, T, 17, 3)
    x = torch.randn(shape)
    x[..., 2] = x[..., 2].sigmoid()
    x[..., 5, :2] = float("nan")
    x[..., 11, 2] = 0.0
    return x
