"""Training speed (docs/BENCHMARKS.md, "Training throughput"): the training benchmark runs and reports what it
claims (no timing is asserted: speed targets live in the benchmark), bf16 agrees with float32, the seq2seq
window stride, the frozen-encoder cache, attention against the textbook formula, and the one-line refusals."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from diffpose_viz import inputs
from diffpose_viz.config import ExperimentConfig
from diffpose_viz.methods import TrainBatch, get_method
from diffpose_viz.models.graformer import GraphMultiHeadAttention
from diffpose_viz.models.mixste import SelfAttention
from diffpose_viz.training import perf
from diffpose_viz.training.bench import run_train_bench
from diffpose_viz.training.trainer import Trainer

from tiny_runs import REPO, tiny_config, tiny_overrides

pytestmark = pytest.mark.usefixtures("one_thread")


def _train(cfg, out: Path) -> Trainer:
    tr = Trainer(cfg, out, progress=False)
    tr.setup()
    tr.train()
    return tr


# --------------------------------------------------------------------------- the benchmark


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


# --------------------------------------------------------------------------- bf16


def _lifter_losses(amp: str, steps: int = 8) -> list[float]:
    cfg = ExperimentConfig(method="lifter")
    cfg.model.hidden, cfg.model.layers, cfg.model.dropout = 32, 2, 0.0
    method = get_method("lifter")
    torch.manual_seed(0)
    net = method.build_network(cfg)
    fwd = perf.forward_module(net, torch.device("cpu"), amp, False)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    cond = torch.cat([torch.rand(64, 17, 2, generator=g) * 2 - 1, torch.ones(64, 17, 1)], -1)
    x0 = 0.3 * torch.randn(64, 17, 3, generator=g)
    x0 = x0 - x0[:, :1]
    losses = []
    for _ in range(steps):
        loss, _ = method.loss(fwd, TrainBatch(x0, cond, None, None, g, cfg))
        assert loss.dtype == torch.float32  # the loss stays float32 under bf16 autocast
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(p.dtype == torch.float32 for p in net.parameters())  # so do the weights
    return losses


@pytest.mark.skipif(not perf.cpu_has_bf16(), reason="this CPU has no bf16 instructions (avx512_bf16 / amx_bf16)")
def test_bf16_and_fp32_training_agree():
    fp32, bf16 = _lifter_losses("none"), _lifter_losses("bf16")
    assert fp32[-1] < fp32[0] and bf16[-1] < bf16[0]
    np.testing.assert_allclose(bf16, fp32, rtol=0.03)


def test_bf16_without_bf16_instructions_falls_back_with_one_line(monkeypatch, caplog):
    monkeypatch.setattr(perf, "cpu_has_bf16", lambda: False)
    with caplog.at_level(logging.WARNING):
        assert perf.resolve_amp("bf16", torch.device("cpu")) == "none"
    assert len(caplog.records) == 1 and "no bf16 instructions" in caplog.records[0].getMessage()
    with pytest.raises(ValueError, match="expected 'none' or 'bf16'"):
        perf.resolve_amp("fp16", torch.device("cpu"))


def test_compile_unavailable_falls_back_with_one_line(monkeypatch, caplog):
    def broken(*_a, **_k):
        raise RuntimeError("no inductor backend here")

    monkeypatch.setattr(torch, "compile", broken)
    net = torch.nn.Linear(2, 2)
    with caplog.at_level(logging.WARNING):
        assert perf.compiled(net, True) is net
    assert len(caplog.records) == 1 and "training eagerly" in caplog.records[0].getMessage()


def test_a_batch_that_does_not_fit_stops_with_one_line():
    with pytest.raises(perf.BatchTooLarge, match=r"train.batch_size 4096: .* lower train.batch_size") as err:
        with perf.memory_guard(4096, torch.device("cpu")):
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:118] DefaultCPUAllocator: can't allocate memory: "
                               "you tried to allocate 1099511627776 bytes.\nmore detail")
    assert "\n" not in str(err.value)
    with pytest.raises(RuntimeError, match="shape mismatch"):  # other errors pass through unchanged
        with perf.memory_guard(8, torch.device("cpu")):
            raise RuntimeError("shape mismatch")


def test_speed_settings_are_checked():
    from diffpose_viz.config import validate
    from diffpose_viz.errors import ConfigError

    for key, value in (("threads", 0), ("window_stride", 0), ("amp", "fp8")):
        cfg = ExperimentConfig()
        setattr(cfg.train, key, value)
        with pytest.raises(ConfigError, match=f"train.{key}"):
            validate(cfg)


# --------------------------------------------------------------------------- seq2seq over windows


def test_strided_centres_tile_every_sequence():
    T = 9
    seq = np.repeat(["a", "b", "c"], [40, 5, 27])
    frame = np.concatenate([np.arange(40), np.arange(5), np.arange(27)])[::-1].copy()  # any row order
    seq = seq[::-1].copy()
    centres = inputs.strided_centres(seq, frame, T, T)
    windows = inputs.sequence_windows(seq, frame, T)
    covered = np.zeros(len(seq), bool)
    covered[windows[centres].ravel()] = True
    assert covered.all()  # every frame is supervised at least once per epoch
    assert len(centres) == 5 + 1 + 3  # 40 frames: 4 tiles + the tail's; 5: one; 27: three (ceil(L / T) here)
    np.testing.assert_array_equal(inputs.strided_centres(seq, frame, T, 1), np.arange(len(seq)))


def test_video_lifter_loss_supervises_every_frame_of_the_window():
    cfg = ExperimentConfig(method="video_lifter")
    cfg.model.context, cfg.model.frames, cfg.model.hidden, cfg.model.layers = "video", 5, 16, 1
    method = get_method("video_lifter")
    torch.manual_seed(0)
    net = method.build_network(cfg).eval()
    g = torch.Generator().manual_seed(0)
    cond = torch.rand(4, 5, 17, 3)
    target = 0.3 * torch.randn(4, 5, 17, 3)
    assert net(cond).shape == (4, 5, 17, 3)  # seq2seq: a pose for every frame

    def loss(t):
        return float(method.loss(net, TrainBatch(t[:, 2], cond, None, None, g.manual_seed(0), cfg, t))[0])

    moved = target.clone()
    moved[:, 0] += 1.0  # a non-centre frame
    assert loss(moved) > loss(target) + 0.1


def test_window_stride_trains_on_fewer_windows(tiny_data, tmp_path):
    video = {"method": "video_lifter", "model.context": "video", "model.frames": 5, "data.frame_stride": 1,
             "train.batch_size": 8, "augmentation.body.enabled": False, "augmentation.view.enabled": False}
    every = _train(tiny_config(tiny_data, **video), tmp_path / "every")
    strided = _train(tiny_config(tiny_data, **video, **{"train.window_stride": 5}), tmp_path / "strided")
    assert strided.train_data.n_centres < every.train_data.n_centres / 4
    assert 0 < strided.step < every.step


# --------------------------------------------------------------------------- the frozen-encoder cache


def test_two_stage_caches_phi_st_and_trains_the_same(tiny_data, tmp_path):
    lifter = _train(tiny_config(tiny_data, method="lifter", **{"train.max_steps": 4}), tmp_path / "lifter")
    stage2 = {"method": "diffpose", "model.context_checkpoint": str(lifter.out_dir / "best.pt"), "train.max_steps": 6}
    cached = _train(tiny_config(tiny_data, **stage2), tmp_path / "cached")
    plain = _train(tiny_config(tiny_data, **stage2, **{"train.cache_context": False}), tmp_path / "plain")
    assert cached.train_data.context is not None and plain.train_data.context is None
    data = cached.train_data
    idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(1))[:16]
    with torch.no_grad():
        fresh = cached.net.encode(data.cond[idx])
    torch.testing.assert_close(data.context[idx], fresh, rtol=0, atol=1e-6)
    assert cached.best_val == pytest.approx(plain.best_val, rel=1e-6)


# --------------------------------------------------------------------------- fused attention


def _textbook_attention(q, k, v):
    return torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, -1) @ v


def test_fused_attention_equals_the_textbook_formula():
    torch.manual_seed(0)
    x = torch.randn(6, 17, 32)
    gra = GraphMultiHeadAttention(32, heads=4).eval()

    def split(t):
        return t.view(6, 17, 4, 8).transpose(1, 2)

    y = _textbook_attention(split(gra.q(x)), split(gra.k(x)), split(gra.v(x)))
    torch.testing.assert_close(gra(x), gra.out(y.transpose(1, 2).reshape(6, 17, 32)), rtol=1e-5, atol=1e-6)
    mix = SelfAttention(32, 4).eval()
    q, k, v = mix.qkv(x).view(6, 17, 3, 4, 8).permute(2, 0, 3, 1, 4)
    want = mix.proj(_textbook_attention(q, k, v).transpose(1, 2).reshape(6, 17, 32))
    torch.testing.assert_close(mix(x), want, rtol=1e-5, atol=1e-6)
    assert F.scaled_dot_product_attention is not None
