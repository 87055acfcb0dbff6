"""The trainer's speed paths: the seq2seq loss on every frame of a window, train.window_stride, the cached phi_ST
of two-stage DiffPose, fused attention."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from diffpose_viz.config import ExperimentConfig
from diffpose_viz.methods import TrainBatch, get_method
from diffpose_viz.models.graformer import GraphMultiHeadAttention
from diffpose_viz.models.mixste import SelfAttention

from tiny_runs import tiny_config, train_run


pytestmark = pytest.mark.usefixtures("one_thread")


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
    every = train_run(tiny_config(tiny_data, **video), tmp_path / "every")
    strided = train_run(tiny_config(tiny_data, **video, **{"train.window_stride": 5}), tmp_path / "strided")
    assert strided.train_data.n_centres < every.train_data.n_centres / 4
    assert 0 < strided.step < every.step


def test_two_stage_caches_phi_st_and_trains_the_same(tiny_data, tmp_path):
    lifter = train_run(tiny_config(tiny_data, method="lifter", **{"train.max_steps": 4}), tmp_path / "lifter")
    stage2 = {"method": "diffpose", "model.context_checkpoint": str(lifter.out_dir / "best.pt"), "train.max_steps": 6}
    cached = train_run(tiny_config(tiny_data, **stage2), tmp_path / "cached")
    plain = train_run(tiny_config(tiny_data, **stage2, **{"train.cache_context": False}), tmp_path / "plain")
    assert cached.train_data.context is not None and plain.train_data.context is None
    data = cached.train_data
    idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(1))[:16]
    with torch.no_grad():
        fresh = cached.net.encode(data.cond[idx])
    torch.testing.assert_close(data.context[idx], fresh, rtol=0, atol=1e-6)
    assert cached.best_val == pytest.approx(plain.best_val, rel=1e-6)


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
