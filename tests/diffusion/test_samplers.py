"""The sampler table: adding a sampler is one class and one table line. A tiny sampler defined here (in the
tests, registered for the test only) runs through the real path: the setting names it, the method builds it
once, the executor runs it, `lift` returns its hypotheses."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from diffpose_viz.config import ExperimentConfig
from diffpose_viz.diffusion import SAMPLERS, ChainState, Sampler, SamplingSetting
from diffpose_viz.errors import ConfigError
from diffpose_viz.inference import lift
from diffpose_viz.inputs import default_camera, feed_from_keypoints
from diffpose_viz.methods import METHODS, LoadedModel


class OneJump(Sampler):
    """One denoiser call at the schedule's last step, then the clean estimate: the whole sampler."""

    name = "one_jump"

    def timesteps(self) -> list[int]:
        return [self.schedule.num_steps - 1]

    def step(self, state: ChainState, t: int) -> tuple[ChainState, torch.Tensor]:
        out = state.denoise(state.x, t)  # an x0-predicting denoiser: its output is the estimate
        x0 = out.clone()
        x0[:, 0] = 0.0
        return state._replace(x=x0, index=state.index + 1), x0


@pytest.fixture
def one_jump(monkeypatch):
    monkeypatch.setitem(SAMPLERS, OneJump.name, OneJump)  # the "one table line"
    return OneJump.name


def _untrained(method: str) -> LoadedModel:
    cfg = ExperimentConfig(method=method)
    torch.manual_seed(0)
    net = METHODS[method].build_network(cfg).eval()
    return LoadedModel(cfg, METHODS[method], net, None)


def _feed(model: LoadedModel):
    kp = np.tile(np.linspace(300, 700, 34).reshape(1, 17, 2), (3, 1, 1)).astype(np.float32)
    return feed_from_keypoints(kp, np.ones((3, 17)), np.zeros((3, 17), bool), 5.0, default_camera(1000, 1000),
                               model.cfg, model.method)


def test_a_sampler_added_to_the_table_runs_through_lift(one_jump):
    model = _untrained("gaussian_diffusion")  # x0-prediction, starts from N(0, s^2 I): no H_K needed
    feed = _feed(model)
    jump = lift(model, feed, SamplingSetting(4, sampler=one_jump, record=True, seed=3))
    ddim_one_step = lift(model, feed, SamplingSetting(4, 1, seed=3))  # DDIM with K = 1 is the same single jump
    assert jump.hypotheses.shape == (3, 4, 17, 3)
    assert np.array_equal(jump.hypotheses, ddim_one_step.hypotheses)
    assert jump.timesteps == [model.cfg.diffusion.schedule.num_steps - 1, -1]
    # built once per model and setting, then reused
    names = [name for name, _ in model.samplers]
    assert names.count(one_jump) == 1 and isinstance(next(iter(model.samplers.values())), OneJump)


def test_an_unknown_sampler_is_refused_naming_the_table():
    with pytest.raises(ConfigError, match="ddim"):
        SamplingSetting(sampler="dpm_solver")


def test_each_method_names_a_sampler_of_the_table():
    for method in METHODS.values():
        assert method.sampler_name is None or method.sampler_name in SAMPLERS
