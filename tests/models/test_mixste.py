"""MixSTE-style temporal lifter, flip augmentation / test-time augmentation, whole-sequence evaluation,
and the GraFormer lifter's hidden features."""
import math
import time

import numpy as np
import pytest
import torch

from diffpose_viz.models import (
    FlipTestTime,
    GraFormerLifter,
    MixSTELifter,
    chunk_indices,
    count_parameters,
    evaluate_centre,
    evaluate_sequence,
    flip_2d,
    flip_3d,
    flip_average,
    flip_features,
    random_flip,
    swap_left_right,
    windows,
)
from diffpose_viz.skeleton import H36M17


def _tiny(T, **kw):
    torch.manual_seed(0)
    kw = {"embed_dim": 16, "depth": 1, "heads": 2, **kw}
    return MixSTELifter(T, **kw).eval()


def _uvc(*shape):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(*shape, 17, 3, generator=g) * 0.3
    x[..., 2] = torch.rand(*shape, 17, generator=g)
    return x


# --------------------------------------------------------------------------- MixSTE lifter


@pytest.mark.parametrize("T", [27, 81])
def test_shapes_root_and_features(T):
    net = _tiny(T)
    x = _uvc(2, T)
    with torch.no_grad():
        out, feats = net.forward_with_features(x)
        assert out.shape == (2, T, 17, 3)
        assert feats.shape == (2, T, 17, net.feature_dim) == (2, T, 17, 16)
        assert torch.equal(out[..., 0, :], torch.zeros(2, T, 3))  # root joint forced to the origin
        assert torch.equal(net(x), out)
        assert torch.equal(net.output_head(net.features(x)), out)
        assert torch.equal(net.centre_features(x), feats[:, T // 2])
        assert out[..., 1:, :].abs().sum() > 0


def test_input_convention_missing_joints_and_two_channels():
    net = _tiny(27)
    x = _uvc(1, 27)
    x[:, :, 5, :2] = float("nan")  # missing joint: NaN coordinates
    x[:, :, 11, 2] = 0.0  # missing joint: confidence 0
    with torch.no_grad():
        assert torch.isfinite(net(x)).all()
    net2 = _tiny(27, in_dim=2)
    with torch.no_grad():
        assert net2(x[..., :2]).shape == (1, 27, 17, 3)


def test_wrong_frames_joints_or_channels_raise_clear_errors():
    net = _tiny(27)
    with pytest.raises(ValueError, match=r"built for T = 27 frames, found T = 81"):
        net(_uvc(1, 81))
    with pytest.raises(ValueError, match=r"\(B, 27, 17, 3\).*\(1, 27, 16, 3\)"):
        net(torch.zeros(1, 27, 16, 3))
    with pytest.raises(ValueError, match=r"\(B, 27, 17, 3\).*\(1, 27, 17, 2\)"):
        net(torch.zeros(1, 27, 17, 2))
    with pytest.raises(ValueError, match=r"\(B, 27, 17, 3\)"):
        net(torch.zeros(27, 17, 3))
    with pytest.raises(ValueError, match="in_dim"):
        MixSTELifter(27, in_dim=4)


def test_parameter_counts(capsys):
    cpu = count_parameters(MixSTELifter(27))
    paper = count_parameters(MixSTELifter.paper(243))
    with capsys.disabled():
        print(f"\n[params] MixSTELifter(27) CPU size {cpu:,}  MixSTELifter.paper(243) {paper:,}")
    assert abs(paper - 33_800_000) / 33_800_000 < 0.01  # MixSTE paper (Zhang et al. CVPR 2022): about 33.8 M
    assert cpu < 300_000


# --------------------------------------------------------------------------- flip


def test_left_right_swap_is_an_involution_matching_the_skeleton():
    perm = H36M17.flip_permutation
    names = H36M17.joint_names
    for j, k in enumerate(perm):
        if names[j].startswith("left_"):
            assert names[k] == "right_" + names[j][5:]
        elif names[j].startswith("right_"):
            assert names[k] == "left_" + names[j][6:]
        else:
            assert k == j  # centre-line joints stay
    x = torch.arange(17.0)[:, None].repeat(1, 3)
    swapped = swap_left_right(x)
    assert torch.equal(swapped[:, 0], torch.as_tensor(perm, dtype=torch.float32))
    assert torch.equal(swap_left_right(swapped), x)


@pytest.mark.parametrize("shape", [(17,), (4, 17), (2, 9, 17)])
def test_flip_of_a_flip_is_the_identity(shape):
    x2 = torch.randn(*shape[:-1], 17, 3)
    x3 = torch.randn(*shape[:-1], 17, 3)
    assert torch.equal(flip_2d(flip_2d(x2)), x2)
    assert torch.equal(flip_3d(flip_3d(x3)), x3)
    f = flip_2d(x2)
    perm = torch.as_tensor(H36M17.flip_permutation)
    assert torch.equal(f[..., 0], -x2[..., perm, 0])  # u negated, joints swapped
    assert torch.equal(f[..., 1:], x2[..., perm, 1:])  # v and confidence only swapped
    with pytest.raises(ValueError, match="17"):
        flip_2d(torch.zeros(4, 16, 3))


def _equivariant_lifter(x):
    """Exactly mirror-equivariant: each joint's pose = (u, v, confidence) with the root subtracted."""
    out = x[..., :3] * torch.tensor([1.0, 1.0, 0.5])
    return out - out[..., :1, :]


def _equivariant_features(x):
    """Per-joint features invariant to u -> -u: flipping the input only swaps the joints."""
    return torch.stack([x[..., 0] ** 2, x[..., 1], x[..., 2]], -1)


@pytest.mark.parametrize("lead", [(5,), (3, 27)])
def test_flip_tta_of_an_equivariant_model_is_the_plain_call(lead):
    x = _uvc(*lead)
    assert torch.allclose(flip_average(_equivariant_lifter, x), _equivariant_lifter(x), atol=0, rtol=0)
    assert torch.allclose(flip_average(_equivariant_features, x, output="features"), _equivariant_features(x),
                          atol=0, rtol=0)
    # a model that is not equivariant is changed by the averaging, and the result is mirror-symmetric
    net = _tiny(27)
    if len(lead) == 2:
        with torch.no_grad():
            tta = FlipTestTime(net)
            avg, plain = tta(x), net(x)
            assert not torch.allclose(avg, plain)
            assert torch.allclose(tta(flip_2d(x)), flip_3d(avg), atol=1e-6)
            feats = tta.features(x)
            assert feats.shape == (3, 27, 17, 16)
            assert torch.allclose(feats, 0.5 * (net.features(x) + flip_features(net.features(flip_2d(x)))),
                                  atol=1e-6)
        assert set(tta.state_dict()) == {"model." + k for k in net.state_dict()}
    with pytest.raises(ValueError, match="output"):
        flip_average(_equivariant_lifter, x, output="depth")


def test_random_flip_flips_input_and_target_together():
    x2, x3 = _uvc(64, 9), torch.randn(64, 9, 17, 3)
    g = torch.Generator().manual_seed(0)
    a2, a3, flipped = random_flip(x2, x3, 0.5, generator=g)
    assert flipped.shape == (64,) and 10 < int(flipped.sum()) < 54
    assert torch.equal(a2[flipped], flip_2d(x2[flipped])) and torch.equal(a3[flipped], flip_3d(x3[flipped]))
    assert torch.equal(a2[~flipped], x2[~flipped]) and torch.equal(a3[~flipped], x3[~flipped])
    assert not random_flip(x2, x3, 0.0)[2].any() and random_flip(x2, x3, 1.0)[2].all()
    frame2, frame3, _ = random_flip(x2[:, 0], x3[:, 0], 1.0)  # frame tensors (B,17,C)
    assert torch.equal(frame3, flip_3d(x3[:, 0]))
    with pytest.raises(ValueError, match="match"):
        random_flip(x2, x3[:, :4])


# --------------------------------------------------------------------------- sequences


@pytest.mark.parametrize("last", ["overlap", "pad"])
@pytest.mark.parametrize("L", [1, 5, 27, 28, 53, 54, 100])
def test_chunks_cover_every_frame_exactly_once(L, last):
    T = 27
    index, keep = chunk_indices(L, T, last)
    assert index.shape == keep.shape and index.shape[1] == T
    assert np.array_equal(index[keep], np.arange(L))  # every frame once, in order
    assert index.min() >= 0 and index.max() == L - 1
    full, rest = divmod(L, T)
    assert len(index) == full + (rest > 0)
    for k in range(full if (rest and last == "overlap" and full) else len(index)):
        row = index[k]
        real = row[keep[k]]
        if len(real) == T:
            assert np.array_equal(row, np.arange(k * T, (k + 1) * T))  # non-overlapping chunks
        else:  # edge padding: the remaining frames, then the last frame repeated
            assert np.array_equal(row[: len(real)], real) and (row[len(real):] == L - 1).all()
    if rest and full and last == "overlap":  # MixSTE: the last T frames, only the uncovered ones kept
        assert np.array_equal(index[-1], np.arange(L - T, L)) and keep[-1].sum() == rest


def test_evaluate_sequence_places_each_frame_and_matches_the_model():
    L, T = 61, 27
    seq = _uvc(L)
    for last in ("overlap", "pad"):
        out = evaluate_sequence(lambda x: x * 2.0, seq, T, last=last, batch_size=2)
        assert torch.equal(out, seq * 2.0)
    net = _tiny(T)
    with torch.no_grad():
        out = evaluate_sequence(net, seq, batch_size=2)
        assert out.shape == (L, 17, 3)
        assert torch.allclose(out[:T], net(seq[None, :T])[0], atol=1e-6)
        assert torch.allclose(out[-7:], net(seq[None, -T:])[0, -7:], atol=1e-6)
        assert evaluate_sequence(net.features, seq).shape == (L, 17, 16)
        assert evaluate_sequence(FlipTestTime(net), seq, T).shape == (L, 17, 3)
        centre = evaluate_centre(net.features, seq)
        assert centre.shape == (L, 17, 16)
        assert torch.allclose(centre[30], net.features(seq[None, 30 - 13:30 + 14])[0, 13], atol=1e-6)
    with pytest.raises(ValueError, match="num_frames"):
        evaluate_sequence(lambda x: x, seq)
    with pytest.raises(ValueError, match="last"):
        chunk_indices(10, 3, "wrap")


def test_windows_are_centred_and_edge_replicated():
    w = windows(6, 5)
    assert w.shape == (6, 5) and w.dtype == np.int64
    assert np.array_equal(w[:, 2], np.arange(6))  # frame i at column T // 2
    assert w[0].tolist() == [0, 0, 0, 1, 2] and w[5].tolist() == [3, 4, 5, 5, 5] and w[2].tolist() == [0, 1, 2, 3, 4]
    assert windows(1, 27).tolist() == [[0] * 27]
    # the same rows as pipeline.window_indices for odd T: offsets -T//2..T//2 clipped to the sequence
    assert np.array_equal(windows(40, 27), np.clip(np.arange(40)[:, None] + np.arange(-13, 14), 0, 39))


# --------------------------------------------------------------------------- GraFormer features


@pytest.mark.parametrize("in_dim", [2, 3])
def test_graformer_features_and_head_reproduce_forward(in_dim):
    torch.manual_seed(0)
    net = GraFormerLifter(in_dim, hidden=32, layers=2, heads=4).eval()
    x = _uvc(4)[..., :in_dim]
    with torch.no_grad():
        feats = net.features(x)
        assert feats.shape == (4, 17, 32)
        assert torch.equal(net.output_head(feats), net(x))
        pose, f2 = net.forward_with_features(x)
        assert torch.equal(pose, net(x)) and torch.equal(f2, feats)
    assert "features" not in "".join(net.state_dict())  # no new parameters: old checkpoints still load


# --------------------------------------------------------------------------- training


_BODY = torch.tensor([  # x to the person's left, y forward, z up (metres)
    [0.00, 0.00, 0.00], [-0.13, 0.00, 0.00], [-0.14, 0.03, -0.45], [-0.14, 0.00, -0.88],
    [0.13, 0.00, 0.00], [0.14, 0.03, -0.45], [0.14, 0.00, -0.88],
    [0.00, 0.00, 0.23], [0.00, 0.00, 0.48], [0.00, 0.06, 0.58], [0.00, 0.00, 0.72],
    [0.18, 0.00, 0.45], [0.22, 0.02, 0.18], [0.24, 0.08, -0.06],
    [-0.18, 0.00, 0.45], [-0.22, 0.02, 0.18], [-0.24, 0.08, -0.06],
])


def _synthetic_clips(n, T, g):
    """Random 3D poses turning smoothly over T frames, projected by a pinhole camera (f = 1.2 in
    screen-normalised units) at 3.5-5.5 m: (n,T,17,3) = (u, v, confidence 1) and (n,T,17,3) root-relative
    camera-frame metres (X right, Y down, Z forward)."""
    body = _BODY + 0.04 * torch.randn(n, 1, 17, 3, generator=g)  # per-clip body shape
    yaw0 = (torch.rand(n, 1, generator=g) * 2 - 1) * math.pi
    yaw = yaw0 + torch.linspace(-0.3, 0.3, T) * torch.randn(n, 1, generator=g)  # (n,T)
    c, s = yaw.cos()[..., None], yaw.sin()[..., None]
    bx, by, bz = body[..., 0], body[..., 1], body[..., 2]
    rel = torch.stack([c * bx - s * by, -bz.expand_as(c * bx), s * bx + c * by], -1)  # (n,T,17,3)
    root = torch.stack([torch.rand(n, generator=g) - 0.5, torch.rand(n, generator=g) * 0.2,
                        3.5 + 2 * torch.rand(n, generator=g)], -1)[:, None, None]
    cam = rel + root
    uv = 1.2 * cam[..., :2] / cam[..., 2:3]
    return torch.cat([uv, torch.ones_like(uv[..., :1])], -1), rel - rel[..., :1, :]


def _mpjpe(pred, target):
    return (pred - target).norm(dim=-1).mean()


def test_tiny_mixste_learns_a_synthetic_lifting_task():
    torch.set_num_threads(1)
    T = 9
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    net = MixSTELifter(T, embed_dim=32, depth=2, heads=4)
    test2d, test3d = _synthetic_clips(64, T, g)
    with torch.no_grad():
        before = _mpjpe(net.eval()(test2d), test3d).item()
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=0.0)
    start = time.perf_counter()
    net.train()
    for _ in range(30):
        x, y = _synthetic_clips(32, T, g)
        x, y, _ = random_flip(x, y, 0.5, generator=g)  # training-time flip augmentation
        loss = _mpjpe(net(x), y)  # MPJPE on all T frames
        opt.zero_grad()
        loss.backward()
        opt.step()
    elapsed = time.perf_counter() - start
    with torch.no_grad():
        after = _mpjpe(FlipTestTime(net.eval())(test2d), test3d).item()  # flip TTA at test
    print(f"\n[mixste] MPJPE {before * 1000:.0f} mm -> {after * 1000:.0f} mm in 30 steps, {elapsed:.1f} s")
    assert after < 0.7 * before  # no time bound: speed is measured by `bench --train`, not by tests
