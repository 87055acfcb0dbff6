"""The sampling setting: one validated value; a request over the model's own setting; 'key=value' changes
with an error naming the valid keys; configs and checkpoints of earlier versions read unchanged."""
from __future__ import annotations

from dataclasses import replace

import pytest

from diffpose_viz.config import parse_config, to_dict
from diffpose_viz.diffusion.setting import DEFAULT_SAMPLING, LEGACY_KEYS, SETTING_KEYS, SamplingSetting
from diffpose_viz.errors import ConfigError


def test_a_request_keeps_the_models_values_where_it_says_nothing():
    model = DEFAULT_SAMPLING
    got = SamplingSetting(n_hypotheses=7, eta=0.5).over(model)
    assert (got.n_hypotheses, got.eta, got.n_steps, got.clip_x0, got.batch_size) == (7, 0.5, 5, 2.0, 256)


@pytest.mark.parametrize("bad", [dict(n_hypotheses=0), dict(eta=-0.1), dict(skip="cubic"), dict(start_from="x"),
                                 dict(clip_x0=0.0), dict(batch_size=0), dict(amp="fp8"), dict(start_t=-1)])
def test_bad_values_are_refused_naming_the_key(bad):
    key = next(iter(bad))
    with pytest.raises(ConfigError, match=key):
        SamplingSetting(**bad)


def test_key_value_changes_accept_the_older_names_and_name_the_valid_keys():
    s = SamplingSetting.from_items(["eta=0.5", "diffusion.start_t=12", "skip=quad", "official_steps=3"],
                                   SamplingSetting(n_hypotheses=4))
    assert (s.eta, s.start_t, s.skip, s.official_steps, s.n_hypotheses) == (0.5, 12, "quad", 3, 4)
    with pytest.raises(ConfigError) as err:
        SamplingSetting.from_items(["etta=0.5"])
    assert "'etta=0.5'" in str(err.value) and all(k in str(err.value) for k in SETTING_KEYS)
    with pytest.raises(ConfigError, match="n_steps"):
        SamplingSetting.from_items(["n_steps=two"])


def test_an_older_config_reads_its_sampling_keys_as_the_settings_defaults():
    old = {"method": "diffpose_joint",
           "diffusion": {"n_hypotheses": 3, "n_sampling_steps": 4, "eta": 0.2, "skip": "quad", "start_t": 30,
                         "start_from": "hk", "clip_x0": None},
           "official": {"test_timesteps": 1}}
    cfg = parse_config(old, "old checkpoint")
    assert cfg.sampling == replace(DEFAULT_SAMPLING, n_hypotheses=3, n_steps=4, eta=0.2, skip="quad", start_t=30,
                                   clip_x0=None, official_steps=1)
    assert "eta" not in to_dict(cfg)["diffusion"] and to_dict(cfg)["sampling"]["eta"] == 0.2
    assert parse_config(to_dict(cfg), "re-read") == cfg  # the new layout reads back to the same config
    assert set(LEGACY_KEYS.values()) <= set(SETTING_KEYS)


def test_one_key_in_both_places_is_refused():
    with pytest.raises(ConfigError, match="diffusion.eta"):
        parse_config({"diffusion": {"eta": 0.1}, "sampling": {"eta": 0.2}})
    with pytest.raises(ConfigError, match="start_t"):
        parse_config({"sampling": {"n_steps": 10, "start_t": 5}})
