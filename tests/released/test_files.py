"""Reading released files: the wrappers of each training script, 'module.' prefixes, the numpy RandomState the
run.py files pickle (dropped without running numpy code), and one-line refusals."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from diffpose_viz.errors import CheckpointError
from diffpose_viz.released.files import load_released_state


def test_every_released_wrapper_gives_the_state_dict(tmp_path):
    state = {"module.a.weight": torch.ones(2, 3), "module.b": torch.zeros(1)}
    torch.save([state, {"state": {}, "param_groups": []}, 3, 10, {"a.weight": torch.ones(2, 3)}], tmp_path / "list.pth")
    torch.save({"epoch": 1, "lr": 1e-3, "random_state": np.random.RandomState(7), "optimizer": {},
                "model_pos": state, "model_traj": None}, tmp_path / "run.bin")
    torch.save({"a.weight": torch.ones(2, 3), "b": torch.zeros(1)}, tmp_path / "plain.pt")
    for name in ("list.pth", "run.bin", "plain.pt"):
        got = load_released_state(tmp_path / name, "test")
        assert sorted(got) == ["a.weight", "b"], name
        torch.testing.assert_close(got["a.weight"], torch.ones(2, 3))


def test_a_file_without_weights_is_refused_naming_what_it_holds(tmp_path):
    torch.save({"epoch": 3, "lr": 0.1}, tmp_path / "meta.bin")
    with pytest.raises(CheckpointError, match=r"meta\.bin: expected a released test file .* found a dict with keys "
                                              r"\['epoch', 'lr'\]"):
        load_released_state(tmp_path / "meta.bin", "test")


def test_other_pickled_objects_are_refused(tmp_path):
    torch.save({"model_pos": {"w": torch.ones(1)}, "rng": np.random.default_rng(0)}, tmp_path / "gen.bin")
    with pytest.raises(CheckpointError, match=r"gen\.bin: refused to load released test file: it references the "
                                              r"Python global 'numpy.random._pickle.__generator_ctor'"):
        load_released_state(tmp_path / "gen.bin", "test")


def test_missing_and_empty_files(tmp_path):
    with pytest.raises((CheckpointError, FileNotFoundError), match="nothing.bin"):
        load_released_state(tmp_path / "nothing.bin", "test")
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.bin") as err:
        load_released_state(tmp_path / "empty.bin", "test")
    assert "\n" not in str(err.value)
