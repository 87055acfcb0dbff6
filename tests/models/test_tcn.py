"""VideoPose3D-style dilated temporal convolutions: receptive fields, the strided training model against the
dense one with shared weights, and the released parameter names."""
import pytest
import torch

from diffpose_viz.models.tcn import (
    StridedTemporalConvNet,
    TCNLifter,
    TemporalConvNet,
    filter_widths_for,
    receptive_field,
)


def _pair(widths, *, causal=False, channels=32, joints_in=17, features=2, seed=0):
    torch.manual_seed(seed)
    dense = TemporalConvNet(joints_in, features, 17, widths, causal=causal, dropout=0.25, channels=channels)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so eval mode is not the identity
        for bn in [dense.expand_bn, *dense.layers_bn]:
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.1, 0.1)
    strided = StridedTemporalConvNet(joints_in, features, 17, widths, causal=causal, dropout=0.25, channels=channels)
    strided.load_state_dict(dense.state_dict())
    return dense.eval(), strided.eval()


@pytest.mark.parametrize("widths, frames", [([3, 3, 3], 27), ([3, 3, 3, 3], 81), ([3, 3, 3, 3, 3], 243),
                                            ([1], 1), ([5, 3], 15), ([3, 5], 15), ([3, 3, 5], 45)])
def test_receptive_field_arithmetic(widths, frames):
    assert receptive_field(widths) == frames
    model = TemporalConvNet(17, 2, 17, widths, channels=8)
    assert model.receptive_field() == model.num_frames == frames
    assert sum(model.pads) == (frames - 1) // 2  # the dense model trims (R - 1) / 2 frames from each side
    # the dense model turns T frames into T - R + 1
    assert model.eval()(torch.randn(2, frames + 4, 17, 2)).shape == (2, 5, 17, 3)


def test_filter_widths_for_a_receptive_field():
    assert filter_widths_for(27) == [3, 3, 3]
    assert filter_widths_for(81) == [3, 3, 3, 3]
    assert filter_widths_for(243) == [3] * 5
    assert filter_widths_for(125, width=5) == [5, 5, 5]
    for bad in (9 * 2, 28, 1):
        with pytest.raises(ValueError, match="power of the filter width"):
            filter_widths_for(bad)


@pytest.mark.parametrize("widths", [[3, 3, 3], [3, 3, 3, 3], [5, 3], [3, 3, 5]])
@pytest.mark.parametrize("causal", [False, True])
def test_strided_and_dense_agree_on_the_frame_a_window_determines(widths, causal):
    dense, strided = _pair(widths, causal=causal)
    R = dense.receptive_field()
    seq = torch.randn(3, R + 10, 17, 2)
    with torch.no_grad():
        full = dense(seq)  # (3, 11, 17, 3): output k reads input frames k .. k + R - 1
        for k in (0, 4, 10):
            one = strided(seq[:, k:k + R])
            assert one.shape == (3, 1, 17, 3)
            torch.testing.assert_close(one[:, 0], full[:, k], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(strided.hidden(seq[:, k:k + R])[:, 0], dense.hidden(seq)[:, k],
                                       atol=1e-5, rtol=1e-5)


def test_causal_output_frame_is_the_last_of_its_window():
    """With every block's branch switched off (BatchNorm scale and shift 0), an output is the expand layer at the
    frame the residuals carry: the window's centre frame, or its last one when causal."""
    outs = {}
    for causal in (False, True):
        dense, _ = _pair([3, 3, 3], causal=causal)
        with torch.no_grad():
            for bn in dense.layers_bn:
                bn.weight.zero_()
                bn.bias.zero_()
        seq = torch.randn(1, 27, 17, 2)
        moved = {}
        for frame in (13, 26):
            other = seq.clone()
            other[:, frame] += 1.0
            with torch.no_grad():
                moved[frame] = not torch.allclose(dense(seq), dense(other))
        outs[causal] = moved
        assert dense.total_causal_shift() == (13 if causal else 0)
    assert outs[False] == {13: True, 26: False}
    assert outs[True] == {13: False, 26: True}


def test_the_weights_move_between_the_two_models_in_train_mode_too():
    """Training mode: BatchNorm uses batch statistics, which differ between the models (the dense one sees the
    intermediate frames too); what must hold is that the strided one trains the dense one's parameters."""
    dense, strided = _pair([3, 3, 3])
    strided.train()
    opt = torch.optim.SGD(strided.parameters(), lr=0.1)
    x = torch.randn(8, 27, 17, 2)
    strided(x).square().mean().backward()
    opt.step()
    dense.load_state_dict(strided.state_dict())
    for (name, a), (_, b) in zip(dense.state_dict().items(), strided.state_dict().items()):
        assert torch.equal(a, b), name


def test_state_dict_keys_are_the_released_ones():
    """VideoPose3D's TemporalModel(17, 2, 17, filter_widths=[3, 3, 3], channels=1024) state dict."""
    model = TemporalConvNet(17, 2, 17, [3, 3, 3], channels=1024)
    bn = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    want = {"expand_conv.weight": (1024, 34, 3)}
    want.update({f"expand_bn.{k}": None for k in bn})
    for i, (kernel) in enumerate([3, 1, 3, 1]):
        want[f"layers_conv.{i}.weight"] = (1024, 1024, kernel)
        want.update({f"layers_bn.{i}.{k}": None for k in bn})
    want.update({"shrink.weight": (51, 1024, 1), "shrink.bias": (51,)})
    state = model.state_dict()
    assert set(state) == set(want)
    for key, shape in want.items():
        if shape is not None:
            assert tuple(state[key].shape) == shape, key
    assert model.layers_conv[0].dilation == (3,) and model.layers_conv[2].dilation == (9,)
    assert model.expand_bn.momentum == 0.1
    # COCO input (the detectron_coco weights): J_in = 17 COCO keypoints, output H36M-17
    coco = TemporalConvNet(17, 2, 17, [3, 3, 3, 3, 3], channels=1024)
    assert tuple(coco.state_dict()["expand_conv.weight"].shape) == (1024, 34, 3)
    assert len([k for k in coco.state_dict() if k.endswith(".weight") and k.startswith("layers_conv")]) == 8
    assert set(StridedTemporalConvNet(17, 2, 17, [3, 3, 3], channels=1024).state_dict()) == set(state)


def test_bad_shapes_are_named():
    dense, strided = _pair([3, 3, 3])
    with pytest.raises(ValueError, match=r"\(B, T, 17, 2\)"):
        dense(torch.randn(2, 27, 17, 3))
    with pytest.raises(ValueError, match="receptive field is 27"):
        dense(torch.randn(2, 26, 17, 2))
    with pytest.raises(ValueError, match="exactly R = 27"):
        strided(torch.randn(2, 30, 17, 2))
    with pytest.raises(ValueError, match="odd"):
        TemporalConvNet(17, 2, 17, [3, 2])


def test_set_bn_momentum_reaches_every_batchnorm():
    dense, _ = _pair([3, 3, 3])
    dense.set_bn_momentum(0.001)
    assert all(bn.momentum == 0.001 for bn in [dense.expand_bn, *dense.layers_bn])


def _uvc(B, T, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, 17, 3, generator=g) * 0.3
    x[..., 2] = torch.rand(B, T, 17, generator=g)
    return x


def test_tcn_lifter_keeps_the_released_keys_and_reads_the_package_2d():
    torch.manual_seed(0)
    lifter = TCNLifter(27, in_features=4, channels=16).eval()
    assert set(lifter.state_dict()) == set(TemporalConvNet(17, 4, 17, [3, 3, 3], channels=16).state_dict())
    x = _uvc(2, 27)
    x[0, 5, 3, :2] = float("nan")  # a missing joint reads as zeros, never NaN
    pose, feats = lifter.forward_with_features(x)
    assert pose.shape == (2, 1, 17, 3) and feats.shape == (2, 1, 17, 16)
    assert torch.isfinite(pose).all() and torch.all(pose[..., 0, :] == 0)  # root-relative
    assert torch.equal(feats[:, :, 0], feats[:, :, 16])  # the frame's hidden state, given to every joint
    torch.testing.assert_close(lifter(x), pose)
    # the released models read (u, v) only
    released = TCNLifter(27, in_features=2, channels=16)
    assert tuple(released.state_dict()["expand_conv.weight"].shape) == (16, 34, 3)
    with pytest.raises(ValueError, match="in_features"):
        TCNLifter(27, in_features=5)


def test_tcn_lifter_trains_strided_and_evaluates_dense_with_the_same_weights():
    torch.manual_seed(0)
    lifter = TCNLifter(27, channels=16, dropout=0.0)
    calls = []
    for name in ("_strided", "_dense"):
        orig = getattr(lifter, name)
        setattr(lifter, name, lambda x, orig=orig, name=name: calls.append(name) or orig(x))
    x = _uvc(4, 27)
    lifter.train()(x)
    lifter.eval()(x)
    lifter.eval()(_uvc(1, 40))  # a whole sequence: 14 output frames
    assert calls == ["_strided", "_dense", "_dense"]
    # in eval mode the two paths are the same function
    lifter.eval()
    with torch.no_grad():
        flat = lifter.prepare(x).reshape(4, 27, -1).transpose(1, 2)
        torch.testing.assert_close(lifter._strided(flat), lifter._dense(flat), atol=1e-5, rtol=1e-5)
