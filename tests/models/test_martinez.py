"""The Martinez et al. baseline lifter."""
import torch

from diffpose_viz.models import MartinezBaseline, count_parameters

from tiny_runs import masked_2d


def test_martinez_baseline():
    net = MartinezBaseline(hidden=64)
    x = masked_2d()[..., :2]
    out = net(x)  # train mode: BatchNorm over the batch
    assert out.shape == (3, 17, 3) and torch.isfinite(out).all() and (out[:, 0] == 0).all()
    full = count_parameters(MartinezBaseline())
    assert 4.2e6 < full < 4.4e6  # Martinez et al. report about 4-5 M
