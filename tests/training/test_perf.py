"""Training speed settings (diffpose_viz/training/perf.py): bf16 against fp32, fallbacks with one line, the memory
guard, the settings' checks."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from diffpose_viz.config import ExperimentConfig
from diffpose_viz.methods import TrainBatch, get_method
from diffpose_viz.training import perf


pytestmark = pytest.mark.usefixtures("one_thread")


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


def test_compile_that_fails_at_the_first_step_falls_back_with_one_line(monkeypatch, caplog):
    def fails_when_called(net):
        def run(*_a, **_k):
            raise RuntimeError("InductorError: no C++ compiler found\nlong traceback")
        return run

    monkeypatch.setattr(torch, "compile", fails_when_called)
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    x = torch.randn(4, 3)
    fwd = perf.compiled(net, True)
    with caplog.at_level(logging.WARNING):
        y = fwd(x)
        fwd(x)
    torch.testing.assert_close(y, net(x))  # eager numbers, not different ones
    assert len(caplog.records) == 1 and "training eagerly" in caplog.records[0].getMessage()
    assert "\n" not in caplog.records[0].getMessage()
    assert not list(fwd.parameters()) or {id(p) for p in fwd.parameters()} == {id(p) for p in net.parameters()}


def test_bench_with_bf16_on_a_cpu_without_it_says_so_and_times_float32(monkeypatch, caplog):
    from diffpose_viz.training.bench import run_train_bench

    monkeypatch.setattr(perf, "cpu_has_bf16", lambda: False)
    with caplog.at_level(logging.WARNING):
        report = run_train_bench(overrides=["train.amp=bf16"], rows=("lifter",), steps=1, warmup=0, batch_size=4,
                                 synthetic_rows=16, verbose=False)
    assert [r.amp for r in report.rows] == ["none"]  # the row says what it ran
    assert sum("no bf16 instructions" in r.getMessage() for r in caplog.records) == 1


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

    for key, value in (("threads", 0), ("window_stride", 0), ("amp", "fp8"), ("dropout_mask", "uniform")):
        cfg = ExperimentConfig()
        setattr(cfg.train, key, value)
        with pytest.raises(ConfigError, match=f"train.{key}"):
            validate(cfg)
