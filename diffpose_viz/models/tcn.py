"""Dilated temporal convolutions over 2D pose sequences (VideoPose3D, Pavllo et al., CVPR 2019): a video
lifter that costs a small fraction of a transformer per frame. Written for this package after reading the
released `common/model.py` (github.com/facebookresearch/VideoPose3D); the parameter names are the released
ones, so a released `model_pos` state dict loads as is:

    expand_conv   Conv1d(J_in * C_in, channels, filter_widths[0], bias=False)
    expand_bn     BatchNorm1d(channels)
    layers_conv.2i    Conv1d(channels, channels, filter_widths[i+1], dilation = prod(filter_widths[:i+1]), no bias)
    layers_bn.2i      BatchNorm1d(channels)
    layers_conv.2i+1  Conv1d(channels, channels, 1, no bias)
    layers_bn.2i+1    BatchNorm1d(channels)
    shrink        Conv1d(channels, J_out * 3, 1)  (with bias)

Every block is x <- x[sliced to the block's output frames] + ReLU(BN(1x1(ReLU(BN(dilated conv(x)))))), with
dropout after each ReLU. Input (B, T, J_in, C_in) -> output (B, T - R + 1, J_out, 3), R the receptive field
1 + sum_i (w_i - 1) * prod_{k<i} w_k (27 for [3, 3, 3], 81 for [3, 3, 3, 3], 243 for [3, 3, 3, 3, 3]).

Two ways to run the same weights:
* dense (`TemporalConvNet`, VideoPose3D's `TemporalModel`): dilated convolutions over any T >= R, one output
  frame per input frame beyond the first R - 1; used for evaluation, whole sequences at once.
* strided (`StridedTemporalConvNet`, VideoPose3D's `TemporalModelOptimized1f`): input exactly R frames,
  output the one frame they determine; each layer is a convolution with stride = its width and no dilation,
  which skips the intermediate frames the dense model computes and then discards. Used for training.
Both classes hold identical parameters; `load_state_dict` moves weights either way (the released training
code trains the strided model and copies its weights into the dense one for evaluation).

With `causal`, every output frame depends on itself and the R - 1 frames before it (real-time use); otherwise
on the frames centred on it.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from diffpose_viz.models.context import N_JOINTS, masked_2d_features

Tensor = torch.Tensor


def receptive_field(filter_widths: Sequence[int]) -> int:
    """Frames one output frame reads: 1 + sum_i (w_i - 1) * prod_{k<i} w_k."""
    frames, dilation = 1, 1
    for w in filter_widths:
        frames += (w - 1) * dilation
        dilation *= w
    return frames


def filter_widths_for(frames: int, width: int = 3) -> list[int]:
    """The all-`width` filter widths whose receptive field is `frames` (27 -> [3, 3, 3]); frames must be a power
    of width (at least width**1)."""
    if width < 3 or width % 2 == 0:
        raise ValueError(f"temporal convolution: the filter width must be odd and >= 3, found {width}")
    blocks = round(math.log(frames, width)) if frames > 1 else 0
    if blocks < 1 or width ** blocks != frames:
        raise ValueError(f"temporal convolution: a receptive field of {frames} frames is not a power of the "
                         f"filter width {width} (e.g. {width ** 3}, {width ** 4}, {width ** 5})")
    return [width] * blocks


class _TemporalConvBase(nn.Module):
    """Parameters and shapes shared by the dense and the strided model (see the module docstring)."""

    def __init__(self, num_joints_in: int, in_features: int, num_joints_out: int, filter_widths: Sequence[int],
                 *, causal: bool = False, dropout: float = 0.25, channels: int = 1024,
                 bn_momentum: float = 0.1) -> None:
        super().__init__()
        widths = [int(w) for w in filter_widths]
        if not widths:
            raise ValueError("temporal convolution: filter_widths must name at least one width")
        bad = [w for w in widths if w < 1 or w % 2 == 0]
        if bad:
            raise ValueError(f"temporal convolution: filter widths must be odd (the output frame sits in the middle), "
                             f"found {widths}")
        if min(num_joints_in, in_features, num_joints_out, channels) < 1:
            raise ValueError("temporal convolution: joints, features and channels must be >= 1, found "
                             f"{num_joints_in}, {in_features}, {num_joints_out}, {channels}")
        self.num_joints_in, self.in_features, self.num_joints_out = num_joints_in, in_features, num_joints_out
        self.filter_widths, self.causal, self.channels = widths, bool(causal), channels
        self.drop = nn.Dropout(dropout)
        self.relu = nn.ReLU(inplace=True)
        # dilations[i]: spacing of block i's taps in input frames (1, w0, w0*w1, ...)
        self.dilations = [math.prod(widths[:i]) for i in range(len(widths))]
        # pads[i]: frames block i trims from each side in the dense model
        self.pads = [(w - 1) * d // 2 for w, d in zip(widths, self.dilations)]
        self.expand_conv = nn.Conv1d(num_joints_in * in_features, channels, widths[0], bias=False)
        self.expand_bn = nn.BatchNorm1d(channels, momentum=bn_momentum)
        convs, bns = [], []
        for w, d in zip(widths[1:], self.dilations[1:]):
            convs.append(nn.Conv1d(channels, channels, w, dilation=d, bias=False))
            bns.append(nn.BatchNorm1d(channels, momentum=bn_momentum))
            convs.append(nn.Conv1d(channels, channels, 1, bias=False))
            bns.append(nn.BatchNorm1d(channels, momentum=bn_momentum))
        self.layers_conv = nn.ModuleList(convs)
        self.layers_bn = nn.ModuleList(bns)
        self.shrink = nn.Conv1d(channels, num_joints_out * 3, 1)

    def receptive_field(self) -> int:
        return receptive_field(self.filter_widths)

    @property
    def num_frames(self) -> int:
        """The window one output frame reads (the receptive field): what `models.temporal` windows feed."""
        return self.receptive_field()

    @property
    def feature_dim(self) -> int:
        return self.channels

    def total_causal_shift(self) -> int:
        """Frames a causal model's output lags its window's centre (0 when not causal): pad a sequence by R - 1
        frames at the start only."""
        return sum(self.pads) if self.causal else 0

    def set_bn_momentum(self, momentum: float) -> None:
        """VideoPose3D decays the BatchNorm momentum from 0.1 to 0.001 over training."""
        for bn in [self.expand_bn, *self.layers_bn]:
            bn.momentum = momentum

    def check_input(self, x: Tensor, what: str) -> None:
        J, C = self.num_joints_in, self.in_features
        if x.ndim != 4 or x.shape[2] != J or x.shape[3] != C:
            raise ValueError(f"{what}: expected (B, T, {J}, {C}) 2D poses, found {tuple(x.shape)}")
        if x.shape[1] < self.receptive_field():
            raise ValueError(f"{what}: the receptive field is {self.receptive_field()} frames, found T = "
                             f"{x.shape[1]} in {tuple(x.shape)}; pad the sequence (models.temporal.windows)")

    def _block(self, i: int, x: Tensor, conv: callable) -> Tensor:
        x = self.drop(self.relu(self.layers_bn[2 * i](conv(self.layers_conv[2 * i], x))))
        return self.drop(self.relu(self.layers_bn[2 * i + 1](self.layers_conv[2 * i + 1](x))))

    def _dense(self, x: Tensor) -> Tensor:
        """(B, J_in * C_in, T) -> (B, channels, T - R + 1) through the dilated convolutions."""
        x = self.drop(self.relu(self.expand_bn(self.expand_conv(x))))
        for i, pad in enumerate(self.pads[1:]):
            shift = pad if self.causal else 0  # causal: the output frame is the last of the window
            res = x[:, :, pad + shift: x.shape[2] - pad + shift]
            x = res + self._block(i, x, lambda conv, y: conv(y))
        return x

    def _strided(self, x: Tensor) -> Tensor:
        """(B, J_in * C_in, R) -> (B, channels, 1): the same weights as strided convolutions, no dilation."""
        x = F.conv1d(x, self.expand_conv.weight, stride=self.filter_widths[0])
        x = self.drop(self.relu(self.expand_bn(x)))
        for i, w in enumerate(self.filter_widths[1:]):
            # each group of w frames becomes one: keep its middle (last, if causal) frame for the residual
            res = x[:, :, (w - 1 if self.causal else w // 2)::w]
            x = res + self._block(i, x, lambda conv, y, w=w: F.conv1d(y, conv.weight, stride=w))
        return x

    def _hidden(self, x: Tensor) -> Tensor:
        return self._dense(x)

    def hidden(self, x: Tensor) -> Tensor:
        """(B, T, J_in, C_in) -> (B, T', channels): the hidden state the shrink layer reads, per output frame."""
        self.check_input(x, type(self).__name__)
        B, T = x.shape[:2]
        return self._hidden(x.reshape(B, T, -1).transpose(1, 2)).transpose(1, 2)

    def output_head(self, hidden: Tensor) -> Tensor:
        """(B, T', channels) -> (B, T', J_out, 3)."""
        out = F.conv1d(hidden.transpose(1, 2), self.shrink.weight, self.shrink.bias).transpose(1, 2)
        return out.reshape(*out.shape[:2], self.num_joints_out, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.output_head(self.hidden(x))


class TemporalConvNet(_TemporalConvBase):
    """Dense dilated model (VideoPose3D's TemporalModel): (B, T, J_in, C_in) -> (B, T - R + 1, J_out, 3)."""


class StridedTemporalConvNet(_TemporalConvBase):
    """Strided training model (VideoPose3D's TemporalModelOptimized1f): input exactly R frames, output
    (B, 1, J_out, 3); the same parameters as TemporalConvNet, so either loads the other's state dict."""

    def check_input(self, x: Tensor, what: str) -> None:
        super().check_input(x, what)
        if x.shape[1] != self.receptive_field():
            raise ValueError(f"{what}: the strided model reads exactly R = {self.receptive_field()} frames per "
                             f"output frame, found T = {x.shape[1]} in {tuple(x.shape)}; use TemporalConvNet for "
                             "longer sequences")

    def _hidden(self, x: Tensor) -> Tensor:
        return self._strided(x)


class TCNLifter(TemporalConvNet):
    """The package's video lifter on VideoPose3D's network: screen-normalised 2D (B, T, 17, 2|3) -> root-relative
    3D (B, T - R + 1, 17, 3), metres; R = num_frames (the receptive field).

    No parameters of its own: its state dict is TemporalConvNet's, i.e. the released one. `in_features` picks what
    each joint feeds the network: 2 = (u, v) (the released models), 3 = (u, v, confidence), 4 = (u, v,
    confidence, missing mask) (`masked_2d_features`); missing joints read as zeros, never NaN.

    In training mode a window of exactly R frames runs through the strided path (VideoPose3D trains
    TemporalModelOptimized1f; BatchNorm's batch statistics then see only the frames the output reads); in eval
    mode, and for longer inputs, the dense dilated path runs: the same weights, the same outputs in eval mode.

    `features` are per joint for DiffPose's f_ST: the frame's hidden state (channels) given to each of the 17
    joints (the network has no per-joint hidden state; the denoiser tells joints apart by the pose and 2D
    channels beside it)."""

    def __init__(self, num_frames: int, *, in_features: int = 4, channels: int = 1024, filter_width: int = 3,
                 dropout: float = 0.25, causal: bool = False, bn_momentum: float = 0.1) -> None:
        if in_features not in (2, 3, 4):
            raise ValueError(f"TCNLifter: in_features must be 2 (u, v), 3 (+ confidence) or 4 (+ mask), "
                             f"found {in_features}")
        super().__init__(N_JOINTS, in_features, N_JOINTS, filter_widths_for(num_frames, filter_width), causal=causal,
                         dropout=dropout, channels=channels, bn_momentum=bn_momentum)

    def _hidden(self, x: Tensor) -> Tensor:
        if self.training and x.shape[-1] == self.receptive_field():
            return self._strided(x)
        return self._dense(x)

    def prepare(self, pose2d: Tensor) -> Tensor:
        """(B, T, 17, 2|3) screen-normalised 2D -> (B, T, 17, in_features) network input."""
        if pose2d.ndim != 4:
            raise ValueError(f"TCNLifter: expected (B, T, {N_JOINTS}, 2|3) 2D poses, found {tuple(pose2d.shape)}")
        return masked_2d_features(pose2d)[..., :self.in_features]

    def forward_with_features(self, pose2d: Tensor) -> tuple[Tensor, Tensor]:
        """((B, T', 17, 3) root-relative pose, (B, T', 17, channels) per-joint features) from one pass."""
        h = self.hidden(self.prepare(pose2d))
        out = self.output_head(h)
        return out - out[..., :1, :], h[:, :, None].expand(-1, -1, N_JOINTS, -1)

    def features(self, pose2d: Tensor) -> Tensor:
        return self.forward_with_features(pose2d)[1]

    def forward(self, pose2d: Tensor) -> Tensor:
        return self.forward_with_features(pose2d)[0]
