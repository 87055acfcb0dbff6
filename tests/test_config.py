"""Config YAML round trip and strictness."""
from __future__ import annotations

import logging
from dataclasses import replace

import pytest
import yaml

from tiny_runs import REPO  # noqa: F401
from diffpose_viz.config import ExperimentConfig, save_config, to_dict
from diffpose_viz.errors import ConfigError
from diffpose_viz.methods import config_from_dict, get_method, load_config

# --------------------------------------------------------------------------- tests


SHIPPED = sorted(p.name for p in (REPO / "configs").glob("*.yaml"))


def test_the_configs_folder_is_found():
    assert len(SHIPPED) >= 9, SHIPPED  # the round trip below runs over every one of them


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_load_and_round_trip(name, tmp_path):
    path = REPO / "configs" / name
    cfg = load_config(path)
    save_config(cfg, tmp_path / "again.yaml")
    again = load_config(tmp_path / "again.yaml")
    assert to_dict(again) == to_dict(cfg)
    assert again.detector == cfg.detector  # nested frozen dataclass with tuples survives the round trip


@pytest.mark.parametrize("name", SHIPPED)
def test_no_shipped_config_warns_for_its_own_method(name, caplog):
    """Each shipped config sets only what its method reads, or names (for_overrides) the run that reads it."""
    with caplog.at_level(logging.WARNING, logger="diffpose_viz.methods"):
        load_config(REPO / "configs" / name)
    assert "does not read" not in caplog.text, caplog.text


def test_for_overrides_silences_a_key_only_when_the_named_run_reads_it(caplog):
    from diffpose_viz.methods import check_config, config_from_dict

    data = {"method": "diffpose", "model": {"context_dim": 8}}
    with caplog.at_level(logging.WARNING, logger="diffpose_viz.methods"):
        check_config(config_from_dict(data), "plain")
        check_config(config_from_dict({**data, "for_overrides": {"model.context_dim": ["method=gaussian_diffusion"]}}),
                     "named")
        check_config(config_from_dict({**data, "for_overrides": {"model.context_dim": ["method=init_only"]}}), "wrong")
    warned = [r.getMessage().split(":")[0] for r in caplog.records]
    assert warned == ["plain", "wrong"], caplog.text


def test_round_trip_keeps_every_value(tmp_path):
    cfg = ExperimentConfig(name="rt", method="martinez")
    cfg.train.lr = 3e-4
    cfg.data.cameras = ["54138969", "1"]
    cfg.detector = replace(cfg.detector, swap_pairs=((4, 1), (5, 2)), occluder_size=(0.2, 0.3))
    save_config(cfg, tmp_path / "c.yaml")
    back = load_config(tmp_path / "c.yaml")
    assert back.train.lr == pytest.approx(3e-4)
    assert back.detector.swap_pairs == ((4, 1), (5, 2))
    assert back.data.cameras == ["54138969", "1"]
    assert to_dict(back) == to_dict(cfg)


def test_unknown_key_names_key_and_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump({"name": "x", "train": {"lr": 1e-3, "learning_rate": 2}}))
    with pytest.raises(KeyError) as err:
        load_config(p)
    assert "train.learning_rate" in str(err.value) and str(p) in str(err.value)
    p.write_text(yaml.safe_dump({"detector": {"noise_px": 3}}))
    with pytest.raises(KeyError, match="detector.noise_px"):
        load_config(p)


def test_wrong_types_and_values_are_errors(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("train:\n  epochs: two\n")
    with pytest.raises(ConfigError, match="train.epochs"):
        load_config(p)
    p.write_text("method: diffusion\n")
    with pytest.raises(ConfigError, match="method"):
        load_config(p)
    with pytest.raises(ConfigError, match="test_subjects"):
        config_from_dict({"data": {"train_subjects": ["a"], "test_subjects": ["a"]}})
    with pytest.raises(ConfigError, match="diffusion.loss"):  # an MPJPE on noise means nothing
        config_from_dict({"diffusion": {"prediction": "eps", "loss": "mpjpe"}})


def test_raw_2d_context_reaches_the_denoiser():
    """model.context_raw_2d appends [u, v, confidence, mask] to the encoder's features, in training and sampling."""
    import torch

    cfg = config_from_dict({"method": "diffpose_joint", "model": {"hidden": 16, "layers": 1, "heads": 2, "context_dim": 8, "context_hidden": 8,
                                      "context_layers": 1, "context_raw_2d": True}})
    net = get_method(cfg.method).build_network(cfg).eval()
    cond = torch.rand(2, 17, 3)
    ctx = net.encode(cond)
    assert ctx.shape == (2, 17, 12) and net.denoiser.context_dim == 12
    assert torch.allclose(ctx[..., 8:10], cond[..., :2]) and torch.equal(ctx[..., 11], torch.ones(2, 17))
    out = net(torch.randn(2, 17, 3), torch.tensor([3, 7]), cond)
    assert out.shape == (2, 17, 3)


def test_yaml_scientific_notation_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  lr: 1e-3\n")  # YAML 1.1 reads this as a string
    cfg = load_config(p, ["train.epochs=3", "data.cameras=[0, 2]", "diffusion.schedule.kind=linear"])
    assert cfg.train.lr == 1e-3 and cfg.train.epochs == 3
    assert cfg.data.cameras == ["0", "2"] and cfg.diffusion.schedule.kind == "linear"
    with pytest.raises(KeyError, match="train.epoch"):
        load_config(p, ["train.epoch=3"])


@pytest.mark.parametrize("override,key", [
    ("data.extra_train=[{path: x.npz, subjects: [a], weight: 1.0e9}]", "data.extra_train[0].weight"),
    ("data.gt_noise_std_px=1.0e30", "data.gt_noise_std_px"),
    ("train.lr=.nan", "train.lr"),
    ("train.grad_clip=.inf", "train.grad_clip"),
], ids=["extra_train weight 1e9", "1e30 input noise", "NaN lr", "inf grad clip"])
def test_out_of_range_numbers_are_refused_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load_config(REPO / "configs" / "smoke.yaml", [override])


def test_people_config_trains_on_every_converted_source_without_reserved_people():
    cfg = load_config(REPO / "configs" / "people_cpu.yaml")
    sources = {s.name: s for s in cfg.data.extra_train}
    assert set(sources) == {"hdm05", "cmu", "reactidle"} and all(s.subjects for s in sources.values())
    assert "tr" not in sources["hdm05"].subjects and "mm" not in sources["hdm05"].subjects  # reserved; test person
    assert not any(int(s[3:]) <= 10 for s in sources["cmu"].subjects)  # CMU 01-10 are reserved


def test_missing_extra_train_subjects_names_the_key_and_the_files_subjects(tmp_path):
    import numpy as np

    from diffpose_viz.datasets import save_3d

    data = tmp_path / "data_3d_people.npz"
    save_3d(data, {p: {"walk": np.random.default_rng(0).normal(size=(4, 17, 3)) * 0.3} for p in ("bd", "mm")})
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"name": "x", "data": {"extra_train": [{"path": str(data), "name": "hdm05"}]}}))
    with pytest.raises(ConfigError, match=r"data.extra_train\[0\].subjects: missing.*it holds \['bd', 'mm'\]"):
        load_config(p)
