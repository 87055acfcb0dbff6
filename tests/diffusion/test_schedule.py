"""NoiseSchedule: the official table, gathering, step lists and serialisation."""
import json

import pytest
import torch

from diffpose_viz.diffusion.schedule import NoiseSchedule, ScheduleConfig, official_timesteps


def test_official_alpha_bar_table_matches_the_notes():
    s = NoiseSchedule.official()
    assert s.num_steps == 51
    # Method notes §2b: alpha_bar at t = 0, 6, 12, 24, 50.
    expected = {0: 0.99990, 6: 0.99892, 12: 0.99730, 24: 0.99213, 50: 0.97233}
    for t, a in expected.items():
        assert float(s.alpha_bar(t)) == pytest.approx(a, abs=6e-6), t
    assert float((1 - s.alpha_bar(50)).sqrt()) == pytest.approx(0.1663, abs=1e-4)


def test_alpha_bar_gathers_by_tensor_and_pads_minus_one():
    s = NoiseSchedule("linear", 10, 1e-3, 0.2)
    t = torch.tensor([[-1, 0], [4, 9]])
    a = s.alpha_bar(t)
    assert a.shape == (2, 2)
    assert a[0, 0] == 1.0
    assert torch.allclose(a[1], s.alphas_cumprod[[4, 9]])
    assert torch.allclose(s.alphas_cumprod, torch.cumprod(1 - s.betas.double(), 0).float())
    with pytest.raises(ValueError, match=r"\[-1, 9\]"):
        s.alpha_bar(torch.tensor([10]))
    with pytest.raises(ValueError):
        s.alpha_bar(torch.tensor([0.5]))


@pytest.mark.parametrize("kind", ["linear", "cosine", "quad"])
def test_kinds_are_monotone_and_round_trip_through_json(kind):
    s = NoiseSchedule(kind, 50, 1e-4, 0.02)
    a = s.alphas_cumprod
    assert (a[1:] < a[:-1]).all() and (a > 0).all() and (a <= 1).all()
    cfg = json.loads(json.dumps(s.to_dict()))
    s2 = NoiseSchedule.from_config(cfg)
    assert torch.equal(s2.betas, s.betas) and s2.config == s.config
    if kind == "cosine":
        assert float(a[-1]) < 1e-3  # ends at (almost) pure noise


def test_to_moves_in_place_and_bad_configs_raise():
    s = NoiseSchedule.official()
    assert s.to("cpu", torch.float64) is s and s.alphas_cumprod.dtype == torch.float64
    with pytest.raises(ValueError, match="kind"):
        NoiseSchedule("sigmoid")
    with pytest.raises(ValueError, match="beta_start"):
        ScheduleConfig(beta_start=0.1, beta_end=0.01)
    with pytest.raises(KeyError, match="unknown"):
        NoiseSchedule.from_config({"kind": "linear", "steps": 3})


@pytest.mark.parametrize("skip", ["uniform", "quad"])
@pytest.mark.parametrize("n", [1, 2, 5, 20, 51])
def test_ddim_timesteps_descend_from_t_max_to_zero(skip, n):
    ts = NoiseSchedule.official().ddim_timesteps(n, skip)
    assert len(ts) == n and ts[0] == 50
    assert all(a > b for a, b in zip(ts, ts[1:]))
    if n > 1:
        assert ts[-1] == 0


def test_quad_skip_is_denser_near_zero_and_limits_raise():
    s = NoiseSchedule("linear", 1000, 1e-4, 0.02)
    uni, quad = s.ddim_timesteps(10), s.ddim_timesteps(10, "quad")
    assert quad[-2] < uni[-2]
    assert s.ddim_timesteps(3, t_max=20) == [20, 10, 0]
    with pytest.raises(ValueError):
        s.ddim_timesteps(0)
    with pytest.raises(ValueError):
        s.ddim_timesteps(22, t_max=20)


def test_official_step_lists():
    assert official_timesteps(24, 2) == [12, 0]  # frame CPN config
    assert official_timesteps(12, 2) == [6, 0]  # GT configs
    assert official_timesteps(6, 1) == [0]  # video CPN config: one call
    q = official_timesteps(500, 50, "quad")
    assert len(q) == 50 and q[-1] == 0 and q[0] in (399, 400)  # int(sqrt(0.8*500)^2)
