"""`import videopose3d`: TemporalModel files as a tcn video_lifter, H36M-17 or COCO-17 input, receptive field
read from the filter widths (fixtures: tests/released/released_files.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from diffpose_viz.errors import CheckpointError
from diffpose_viz.inference import load_model
from diffpose_viz.released import import_released

from released.released_files import predict, save_run_py_file, tcn_shapes, window

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("vp3d")
    return {"tcn": save_run_py_file(d / "pretrained_tiny.bin", tcn_shapes([3, 3], 16), 4),
            "tcn27": save_run_py_file(d / "pretrained_27.bin", tcn_shapes([3, 3, 3], 8), 5),
            "uneven": save_run_py_file(d / "dense.bin", tcn_shapes([3, 5], 8), 6)}


@pytest.mark.parametrize("layout", ["h36m", "coco"])
def test_videopose3d_round_trip(files, tmp_path, layout):
    path = import_released("videopose3d", [files["tcn"]], tmp_path / layout, input_layout=layout)[0]
    model = load_model(path)
    m = model.cfg.model
    assert (m.frames, m.video_lifter.kind, m.video_lifter.channels) == (9, "tcn", 16)
    assert m.released_input == {"h36m": "h36m17", "coco": "coco17"}[layout]
    state = torch.load(files["tcn"], weights_only=False)["model_pos"]
    torch.testing.assert_close(model.network.net.layers_bn[1].running_var, state["layers_bn.1.running_var"])
    hyp = predict(model, window(2, 9))
    assert hyp.shape == (2, 1, 17, 3) and np.isfinite(hyp).all()


def test_coco_layout_changes_what_the_network_reads(files, tmp_path):
    h36m = load_model(import_released("videopose3d", [files["tcn"]], tmp_path / "a", input_layout="h36m")[0])
    coco = load_model(import_released("videopose3d", [files["tcn"]], tmp_path / "b", input_layout="coco")[0])
    cond = window(1, 9)
    assert not torch.allclose(h36m.network(cond), coco.network(cond))


def test_receptive_field_is_read_from_the_widths(files, tmp_path):
    model = load_model(import_released("videopose3d", [files["tcn27"]], tmp_path / "rf27", frames=27)[0])
    assert model.cfg.model.frames == 27 and model.network.net.filter_widths == [3, 3, 3]
    with pytest.raises(CheckpointError, match=r"filter widths \[3, 5\] .* equal odd widths"):
        import_released("videopose3d", [files["uneven"]], tmp_path / "x")
