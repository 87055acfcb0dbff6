"""The `diffpose-viz` command line, run as a subprocess like a user would."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np

from diffpose_viz.camera import h36m_cameras
from diffpose_viz.results import load_results

from tiny_runs import DEMO, REPO, tiny_overrides

SUBCOMMANDS = ["data", "train", "evaluate", "sample", "bench", "dashboard", "wild"]


def cli(*args: str, check: bool = True, timeout: int = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "diffpose_viz.cli", *args], cwd=REPO, env=env, text=True,
                          capture_output=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"diffpose-viz {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_help_of_every_subcommand():
    top = cli("--help").stdout
    for name in SUBCOMMANDS:
        assert name in top
        out = cli(name, "--help").stdout
        assert "--device" in out, name


def test_smoke_train_evaluate_sample(tiny_data, tmp_path):  # noqa: F811
    """configs/smoke.yaml on the demo data when it is built, else on a tiny synthetic VideoPose3D file."""
    overrides = ["train.max_steps=6", "method=diffpose_joint"] if DEMO.exists() else tiny_overrides(
        tiny_data, **{"train.max_steps": 6, "method": "diffpose_joint"})
    run = tmp_path / "run"
    args = ["train", "configs/smoke.yaml", "--out", str(run), "--no-progress", "--hk-cache", str(tmp_path / "hk")]
    for o in overrides:
        args += ["--override", o]
    out = cli(*args)
    # the demo data has more than 6 steps per run; the tiny file's few rows can end the epochs first
    steps = re.search(r"trained diffpose_joint for (\d+) steps", out.stdout)
    assert steps, out.stdout
    assert int(steps.group(1)) == 6 if DEMO.exists() else 1 <= int(steps.group(1)) <= 6
    assert {"config.yaml", "last.pt", "best.pt", "train_log.jsonl"} <= {p.name for p in run.iterdir()}
    assert len(list((tmp_path / "hk").glob("hk_train_*.pt"))) == 1 and not (run / "cache").exists()  # --hk-cache

    res = tmp_path / "diffpose.nc"
    out = cli("evaluate", str(run / "best.pt"), "--out", str(res), "--hypotheses", "2", "--steps", "2",
              "--record-trajectory", "--no-progress")
    assert "P1 (MPJPE)" in out.stdout and "ORACLE" in out.stdout
    ds = load_results(res)
    assert ds.sizes["hypothesis"] == 2 and ds.sizes["step"] == 3
    assert json.loads(res.with_suffix(".metrics.json").read_text())["n_hypotheses"] == 2

    # user keypoints in COCO-17 order: a projected synthetic pose, as JSON
    cam = h36m_cameras("S1")[0]
    world = np.array([[0.0, 0.0, 0.95]]) + np.random.default_rng(1).normal(0, 0.25, (17, 3))
    coco = cam.project(cam.world_to_camera(world)).tolist()
    (tmp_path / "kp.json").write_text(json.dumps({"keypoints": [coco, coco], "format": "coco17"}))
    out = cli("sample", str(run / "best.pt"), "--input", str(tmp_path / "kp.json"), "--image-size", "1000", "1002",
              "--out", str(tmp_path / "mine.nc"), "--hypotheses", "2")
    mine = load_results(tmp_path / "mine.nc")
    assert mine.sizes["sample"] == 2 and "gt" not in mine and "ood_score" not in mine
    # the sampling setting reaches `sample` too: eta and the start step, recorded in the results
    cli("sample", str(run / "best.pt"), "--input", str(tmp_path / "kp.json"), "--image-size", "1000", "1002",
        "--out", str(tmp_path / "eta.nc"), "--hypotheses", "2", "--sampling", "eta=0.5", "--sampling", "start_t=20",
        "--steps", "3", "--record-trajectory")
    eta = load_results(tmp_path / "eta.nc")
    assert json.loads(eta.attrs["sampling"])["eta"] == 0.5 and eta["timestep"].values[0] == 20
    assert not np.allclose(eta["hypotheses"].values, mine["hypotheses"].values)
    # the same with the out-of-domain model evaluate stored: score, flag and radius join the user's results
    out = cli("sample", str(run / "best.pt"), "--input", str(tmp_path / "kp.json"), "--image-size", "1000", "1002",
              "--out", str(tmp_path / "mine_ood.nc"), "--hypotheses", "2",
              "--calibration", str(res.with_suffix(".metrics.json")))
    assert "out of domain:" in out.stdout
    assert {"ood_score", "ood_flag", "radius"} <= set(load_results(tmp_path / "mine_ood.nc").data_vars)
    (tmp_path / "plain.json").write_text("{}")
    proc = cli("sample", str(run / "best.pt"), "--input", str(tmp_path / "kp.json"), "--image-size", "1000", "1002",
               "--out", str(tmp_path / "x.nc"), "--calibration", str(tmp_path / "plain.json"), check=False)
    assert proc.returncode == 1 and "no uncertainty -> ood -> model" in proc.stderr and "Traceback" not in proc.stderr


def test_clear_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lrate: 1\n")
    proc = cli("train", str(bad), "--out", str(tmp_path / "x"), check=False)
    assert proc.returncode == 1 and "train.lrate" in proc.stderr and "Traceback" not in proc.stderr
    proc = cli("evaluate", str(tmp_path / "none.pt"), "--out", str(tmp_path / "r.nc"), check=False)
    assert proc.returncode == 1 and "does not exist" in proc.stderr
    (tmp_path / "kp.csv").write_text(",".join(["1"] * 34) + "\n")
    proc = cli("sample", str(tmp_path / "none.pt"), "--input", str(tmp_path / "kp.csv"), "--image-size", "10", "10",
               "--out", str(tmp_path / "o.nc"), check=False)
    assert proc.returncode == 1 and "--format coco17" in proc.stderr
    proc = cli("evaluate", str(tmp_path / "none.pt"), "--out", str(tmp_path / "r.nc"), "--sampling", "etta=1",
               check=False)
    assert proc.returncode == 1 and "'etta=1'" in proc.stderr and "'eta'" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = cli("train", "configs/smoke.yaml", "--out", str(tmp_path / "y"), "--device", "cuda:7", check=False)
    if proc.returncode != 0:
        assert "cuda" in proc.stderr.lower() and "Traceback" not in proc.stderr


def test_bench_prints_and_writes_its_table(tmp_path):
    """`diffpose-viz bench` on a tiny grid: the JSON carries one row per (N, K, B) with positive rates."""
    out = tmp_path / "bench.json"
    proc = cli("bench", "--hypotheses", "2", "--steps", "1", "2", "--batch-sizes", "4", "--naive-max", "1",
               "--tile-frames", "2", "--out", str(out))
    assert "matmul peak" in proc.stdout and "| N | K | batch |" in proc.stdout
    rec = json.loads(out.read_text())
    assert [(r["n_hypotheses"], r["n_steps"], r["batch_size"]) for r in rec["rows"]] == [(2, 1, 4), (2, 2, 4)]
    for r in rec["rows"]:
        assert r["batched_poses_per_s"] > 0 and r["naive_poses_per_s"] > 0 and r["achieved_gflops"] > 0
    assert rec["flops_per_pose_step_first_row"] > 1e6 and rec["tile_frames"] == 2
