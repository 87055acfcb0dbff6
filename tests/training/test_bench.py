"""The training benchmark (diffpose_viz/training/bench.py): synthetic rows, a config's data preparation, the
released-code rows of a user checkout."""
from __future__ import annotations

import json

import pytest

from diffpose_viz.training.bench import run_train_bench

from tiny_runs import REPO, tiny_overrides


pytestmark = pytest.mark.usefixtures("one_thread")


def test_tiny_training_benchmark_on_synthetic_rows(tmp_path):
    out = tmp_path / "bench.json"
    run_train_bench(rows=("lifter", "diffpose", "official", "video_lifter_T9", "diffpose_T5"), steps=1, warmup=0,
                    batch_size=8,
                    synthetic_rows=64, out=str(out), verbose=False)
    report = json.loads(out.read_text())
    assert report["matmul_peak_fp32_gflops"] > 0
    assert [r["row"] for r in report["rows"]] == ["lifter", "diffpose", "official", "video_lifter_T9", "diffpose_T5"]
    for r in report["rows"]:
        assert r["flops_per_step"] > 0 and r["samples_per_s"] > 0 and r["params"] > 0
        assert r["step_ms"] >= r["forward_ms"] > 0 and r["backward_ms"] > 0 and r["optimizer_ms"] > 0
        assert 0 < r["pct_fp32_peak"]
    video = report["rows"][3]
    assert video["frames"] == 9 and video["frames_supervised_per_s"] == pytest.approx(9 * video["samples_per_s"])
    assert report["rows"][1]["context_cache_s"] > 0  # two-stage: the frozen phi_ST encodes each row once
    assert report["rows"][4]["frames"] == 5 and report["rows"][4]["context_cache_s"] > 0
    assert "official_code" in report["not_run"]  # no checkout given: said, not silently skipped
    with pytest.raises(ValueError, match="unknown row 'lifter_T9'"):
        run_train_bench(rows=("lifter_T9",), verbose=False)


def test_training_benchmark_on_a_config_times_data_preparation(tiny_data, tmp_path):
    out = tmp_path / "bench.json"
    run_train_bench(config=str(REPO / "configs" / "smoke.yaml"), overrides=tiny_overrides(tiny_data),
                    rows=("diffpose",), steps=1, warmup=0, out=str(out), verbose=False)
    report = json.loads(out.read_text())
    prep = report["data_prep"]
    assert prep["rows"] > 0 and prep["hk_fit_s"] > 0 and prep["detections_2d_s"] > 0
    assert report["rows"][0]["flops_per_step"] > 0


def test_official_code_path_that_is_not_a_checkout_is_reported(tmp_path):
    out = tmp_path / "bench.json"
    run_train_bench(rows=("lifter",), steps=1, warmup=0, batch_size=4, synthetic_rows=16, official_code=str(tmp_path),
                    out=str(out), verbose=False)
    assert "models/gcndiff.py" in json.loads(out.read_text())["not_run"]["official_code"]


def test_tcn_rows_supervise_the_centre_frame_only(tmp_path):
    out = tmp_path / "tcn.json"
    run_train_bench(rows=("video_lifter_T9", "diffpose_T9"), steps=1, warmup=0, batch_size=8, synthetic_rows=64,
                    overrides=["model.video_lifter.kind=tcn", "model.video_lifter.channels=16"], out=str(out),
                    verbose=False)
    rows = json.loads(out.read_text())["rows"]
    assert [r["frames"] for r in rows] == [9, 9]
    assert rows[0]["frames_supervised_per_s"] == pytest.approx(rows[0]["samples_per_s"])
    assert rows[0]["flops_per_step"] > 0 and rows[1]["context_cache_s"] > 0
