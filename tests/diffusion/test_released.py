"""The released code's test procedure as a sampler: a clean start labelled as the first step of the released step
lists, eps-prediction of the scaled noise, no root zeroing."""

import pytest
import torch

from diffpose_viz.diffusion.executor import run_chain
from diffpose_viz.diffusion.released import ReleasedSampler
from diffpose_viz.diffusion.schedule import NoiseSchedule
from diffpose_viz.diffusion.setting import SamplingSetting
from diffpose_viz.models.official import OfficialDenoiser

B, N = 3, 4


def released(span: int, steps: int) -> ReleasedSampler:
    return ReleasedSampler(NoiseSchedule.official(), SamplingSetting(official_steps=steps), official_span=span)


def test_released_sampler_starts_clean_and_uses_the_config_step_lists():
    s = NoiseSchedule.official()
    calls = []

    def zero_eps(x, t, context):
        calls.append((x.shape, int(t[0])))
        return torch.zeros_like(x)

    x_init = torch.randn(B, 17, 5)
    out = run_chain(released(24, 2), zero_eps, None, 1, start_from=x_init, record="all")
    assert [t for _, t in calls] == [12, 0] and out.step_timesteps == [12, 0]
    # eps = 0: the start is read as sqrt(abar_12) x0 (no noising of the start, no root zeroing).
    assert torch.allclose(out.hypotheses[:, 0], x_init / s.alpha_bar(12).sqrt(), atol=1e-6)
    assert torch.equal(out.trajectory[:, 0, 0], x_init)
    assert out.timesteps == [12, 0, -1]

    def unit_eps(x, t, context):
        return torch.ones_like(x)

    one = run_chain(released(6, 1), unit_eps, None, 1, start_from=x_init)  # video CPN: x0 = (x - 0.01 eps) / 0.99995
    assert torch.allclose(one.hypotheses[:, 0], (x_init - 0.01) / 0.99995, atol=2e-6)
    with pytest.raises(ValueError, match="initial pose"):
        run_chain(released(24, 2), zero_eps, None, 1)


def test_released_sampler_runs_the_official_denoiser_on_hypotheses():
    torch.manual_seed(0)
    net = OfficialDenoiser(hidden=16, layers=1, heads=2).eval()
    x_init = torch.randn(B, N, 17, 5)
    out = run_chain(released(12, 2), net, None, N, start_from=x_init, chunk_frames=None)
    assert out.hypotheses.shape == (B, N, 17, 5) and torch.isfinite(out.hypotheses).all()
    assert (out.hypotheses - x_init).abs().max() < 5  # a refiner: moves the state, does not replace it
