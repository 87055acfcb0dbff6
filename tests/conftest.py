"""Shared test fixtures.

TEST FIXTURE, NOT MODEL OUTPUT: `make_results_dataset` builds a results Dataset that follows
docs/RESULTS_SCHEMA.md from real geometry (a standing H36M-17 body placed in front of the public
Human3.6M cameras, projected with `diffpose_viz.camera`), with hypotheses, trajectories and GMMs made
by perturbing the ground truth. It lets figures and dashboard be tested without training a model.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from diffpose_viz.camera import h36m_cameras
from tiny_runs import ensure_smoke_run, make_tiny_dataset, tiny_config, train_run
from diffpose_viz.skeleton import H36M17

# A standing person in a body frame: x to the person's left, y forward, z up (metres, pelvis at 0).
_BODY = np.array([
    [0.00, 0.00, 0.00],                                            # pelvis
    [-0.13, 0.00, 0.00], [-0.14, 0.03, -0.45], [-0.14, 0.00, -0.88],  # right hip, knee, ankle
    [0.13, 0.00, 0.00], [0.14, 0.03, -0.45], [0.14, 0.00, -0.88],     # left hip, knee, ankle
    [0.00, 0.00, 0.23], [0.00, 0.00, 0.48], [0.00, 0.06, 0.58], [0.00, 0.00, 0.72],  # spine..head
    [0.18, 0.00, 0.45], [0.22, 0.02, 0.18], [0.24, 0.08, -0.06],     # left shoulder, elbow, wrist
    [-0.18, 0.00, 0.45], [-0.22, 0.02, 0.18], [-0.24, 0.08, -0.06],  # right shoulder, elbow, wrist
])
_ACTIONS = [("Walking 1", "walk"), ("Sitting", "sit"), ("Directions", "directions"), ("Phoning 2", "phone")]


def _world_pose(rng: np.random.Generator) -> np.ndarray:
    """The body turned to a random heading, arms swung a little, pelvis 0.95 m above the floor."""
    body = _BODY.copy()
    for wrist, elbow in ((13, 12), (16, 15)):
        swing = rng.uniform(-0.15, 0.15)
        body[elbow, 1] += swing / 2
        body[wrist, 1] += swing
    yaw = rng.uniform(-np.pi, np.pi)
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    return body @ rot.T + np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), 0.95])


def make_results_dataset(model: str = "diffpose", n_clean: int = 10, n_occluded: int = 4, n_hypotheses: int = 5,
                         n_steps: int = 6, n_kernels: int = 3, noise_m: float = 0.03, seed: int = 0,
                         with_trajectory: bool = True) -> xr.Dataset:
    """A schema-conformant results Dataset (test fixture). The last `n_occluded` samples repeat the first
    ones' frames with 3 joints hidden, so occlusion pairs exist."""
    rng = np.random.default_rng(seed)
    cams = h36m_cameras("S9")
    n_joints = H36M17.num_joints
    base = [( _world_pose(rng), i % 4, _ACTIONS[i % len(_ACTIONS)], 100 + 10 * i) for i in range(n_clean)]
    rows = [(w, c, a, f, np.zeros(n_joints, bool)) for w, c, a, f in base]
    for i in range(n_occluded):
        occ = np.zeros(n_joints, bool)
        occ[rng.choice(np.arange(1, n_joints), 3, replace=False)] = True
        rows.append((*base[i], occ))
    n = len(rows)
    gt = np.zeros((n, n_joints, 3))
    input_2d = np.zeros((n, n_joints, 2))
    occluded = np.stack([r[4] for r in rows])
    for k, (world, cam_idx, _, _, occ) in enumerate(rows):
        cam_pose = cams[cam_idx].world_to_camera(world)
        gt[k] = cam_pose - cam_pose[0]
        input_2d[k] = cams[cam_idx].project(cam_pose)
        input_2d[k, occ] += rng.normal(0, 25, (occ.sum(), 2))  # a detector's guess for a hidden joint
    confidence = np.where(occluded, 0.0, rng.uniform(0.7, 1.0, occluded.shape))

    # Per-joint uncertainty: larger for hidden joints and for the extremities.
    sigma = noise_m * (1 + 2.5 * occluded) * (1 + 0.5 * np.isin(np.arange(n_joints), [3, 6, 13, 16]))
    sigma[:, 0] = 0.0
    h = n_hypotheses
    hyps = gt[:, None] + rng.normal(0, 1, (n, h, n_joints, 3)) * sigma[:, None, :, None]
    hyps += rng.normal(0, 1, (n, 1, n_joints, 3)) * sigma[:, None, :, None]  # shared bias: mean is wrong too
    hyps[:, :, 0] = 0.0
    pred = hyps.mean(1)
    err = np.linalg.norm(pred - gt, axis=-1) * 1000
    err_hyp = np.linalg.norm(hyps - gt[:, None], axis=-1) * 1000
    best = np.linalg.norm(hyps[..., :2] - gt[:, None, :, :2], axis=-1).argmin(1)  # stands in for 2D reprojection
    pred_jagg = np.take_along_axis(hyps, best[:, None, :, None], axis=1)[:, 0]

    m = n_kernels
    weight = rng.dirichlet(np.ones(m) * 2, (n, n_joints))
    depth_offsets = np.linspace(-0.15, 0.15, m)
    mean = gt[:, :, None] + rng.normal(0, 0.01, (n, n_joints, m, 3))
    mean[..., 2] += depth_offsets * (1 + 2 * occluded[..., None])
    mean[..., :2] += rng.normal(0, 0.05, (n, n_joints, m, 2)) * occluded[..., None, None]
    var = np.empty_like(mean)
    var[..., :2] = (0.015 * (1 + 3 * occluded[..., None, None])) ** 2
    var[..., 2] = 0.06**2
    mean[:, 0], var[:, 0] = 0.0, 1e-6

    data_vars = {
        "gt": (("sample", "joint", "xyz"), gt, "m", "ground truth, root-relative camera frame"),
        "input_2d": (("sample", "joint", "uv"), input_2d, "px", "2D input given to the model"),
        "confidence": (("sample", "joint"), confidence, "1", "per-joint 2D confidence"),
        "occluded": (("sample", "joint"), occluded.astype(np.int8), "1", "joint occluded in the input"),
        "hypotheses": (("sample", "hypothesis", "joint", "xyz"), hyps, "m", "final pose of every hypothesis"),
        "pred": (("sample", "joint", "xyz"), pred, "m", "P-Agg: mean of the hypotheses"),
        "pred_jagg": (("sample", "joint", "xyz"), pred_jagg, "m", "J-Agg"),
        "err": (("sample", "joint"), err, "mm", "per-joint error of pred"),
        "err_hyp": (("sample", "hypothesis", "joint"), err_hyp, "mm", "per-joint error of every hypothesis"),
    }
    if n_kernels:
        data_vars |= {
            "gmm_weight": (("sample", "joint", "kernel"), weight, "1", "H_K mixture weights"),
            "gmm_mean": (("sample", "joint", "kernel", "xyz"), mean, "m", "H_K kernel means"),
            "gmm_var": (("sample", "joint", "kernel", "xyz"), var, "m2", "H_K kernel variances"),
        }
    coords = {
        "sample": np.arange(n), "joint": list(H36M17.joint_names), "xyz": ["x", "y", "z"], "uv": ["u", "v"],
        "hypothesis": np.arange(h), "kernel": np.arange(m),
        "subject": ("sample", ["S9"] * n), "action": ("sample", [r[2][0] for r in rows]),
        "action_group": ("sample", [r[2][1] for r in rows]),
        "camera": ("sample", [cams[r[1]].id for r in rows]), "frame": ("sample", [r[3] for r in rows]),
    }
    if with_trajectory and n_steps > 1:
        # h_K: a draw per joint from the mixture; the state then slides to the final hypothesis.
        u = rng.random((n, h, n_joints, 1))
        k = (u > np.cumsum(weight, -1)[:, None]).sum(-1).clip(0, m - 1)  # (n, h, J)
        idx = k[..., None, None]
        mu_k = np.take_along_axis(np.broadcast_to(mean[:, None], (n, h, n_joints, m, 3)), np.broadcast_to(
            idx, (n, h, n_joints, 1, 3)), 3)[..., 0, :]
        sd_k = np.sqrt(np.take_along_axis(np.broadcast_to(var[:, None], (n, h, n_joints, m, 3)), np.broadcast_to(
            idx, (n, h, n_joints, 1, 3)), 3)[..., 0, :])
        h_start = mu_k + sd_k * rng.standard_normal(mu_k.shape)
        a = np.linspace(0, 1, n_steps)[None, None, :, None, None]
        traj = (1 - a) * h_start[:, :, None] + a * hyps[:, :, None]
        traj += (1 - a) * a * rng.normal(0, 0.02, traj.shape)
        x0 = hyps[:, :, None] + (1 - a) ** 2 * 1.5 * (h_start - hyps)[:, :, None]
        traj[..., 0, :], x0[..., 0, :] = 0.0, 0.0
        err_step = np.linalg.norm(x0.mean(1) - gt[:, None], axis=-1) * 1000
        data_vars |= {
            "trajectory": (("sample", "hypothesis", "step", "joint", "xyz"), traj, "m", "h_k at each step"),
            "x0_estimate": (("sample", "hypothesis", "step", "joint", "xyz"), x0, "m", "estimate of h_0"),
            "err_step": (("sample", "step", "joint"), err_step, "mm", "error of the mean x0 estimate per step"),
        }
        coords["step"] = np.arange(n_steps)
        coords["timestep"] = ("step", np.linspace(1000, 0, n_steps).round().astype(int))
    ds = xr.Dataset(
        {name: xr.DataArray(np.asarray(v, dtype=np.float32 if v.dtype.kind == "f" else v.dtype), dims=dims,
                            attrs={"units": units, "long_name": long_name})
         for name, (dims, v, units, long_name) in data_vars.items()},
        coords=coords,
    )
    ds.attrs = {"model": model, "config": json.dumps({"fixture": True, "seed": seed}),
                "versions": json.dumps({"diffpose_viz": "test-fixture"}), "created": "2026-01-01T00:00:00",
                "dataset": "test-fixture (synthetic poses, H36M cameras)", "split": "test",
                "oracle_note": "J-Best and P-Best use ground truth (oracle)"}
    return ds


@pytest.fixture(scope="session")
def results_ds() -> xr.Dataset:
    return make_results_dataset()


@pytest.fixture(scope="session")
def results_dir(tmp_path_factory) -> Path:
    """A results folder like `results/demo/`: DiffPose plus two baselines, as netCDF files (test fixture)."""
    d = tmp_path_factory.mktemp("results")
    make_results_dataset().to_netcdf(d / "diffpose.nc")
    make_results_dataset("gaussian_diffusion", noise_m=0.045, n_kernels=1, seed=0).to_netcdf(
        d / "gaussian_diffusion.nc")
    make_results_dataset("deterministic_lifter", n_hypotheses=1, n_kernels=0, noise_m=0.05, seed=0,
                         with_trajectory=False).to_netcdf(d / "deterministic_lifter.nc")
    return d


# --------------------------------------------------------------------------- shared training fixtures


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


@pytest.fixture(scope="module")
def lifter_ckpt(tiny_data, tmp_path_factory) -> Path:
    """A frame 'lifter' trained for five steps on the tiny data (the stage 1 of the two-stage and official
    tests): its best.pt."""
    out = tmp_path_factory.mktemp("lifter")
    train_run(tiny_config(tiny_data, method="lifter", **{"train.max_steps": 5}), out)
    return out / "best.pt"


@pytest.fixture(scope="session")
def smoke_run() -> tuple[Path, Path]:
    """(results/smoke, runs/smoke): the smoke run `make test` builds first, built now when missing."""
    return ensure_smoke_run()
