"""`diffpose-viz import`: released-layout files -> kit checkpoints that load_model and predict use; bad files
refused in one line naming the file and what differs. The fixtures are written by tests/released/released_files.py
in the released layouts (no official code needed); scripts/verify_released.py checks the numbers against it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from diffpose_viz.cli import main
from diffpose_viz.errors import CheckpointError, OutputExistsError
from diffpose_viz.inference import load_model
from diffpose_viz.released import import_released

from released.released_files import (
    gcn_shapes,
    mixste_shapes,
    predict,
    random_state,
    save_diffpose_file,
    save_run_py_file,
    tcn_shapes,
    window,
)

pytestmark = pytest.mark.usefixtures("one_thread")
HIDDEN, LAYERS = 8, 2


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("released")
    return {
        "gcnpose": save_diffpose_file(d / "gcn_xyz_cpn.pth", gcn_shapes(HIDDEN, LAYERS, diff=False), 1),
        "gcndiff": save_diffpose_file(d / "diffpose_uvxyz_cpn.pth", gcn_shapes(HIDDEN, LAYERS, diff=True), 2),
        "mixste": save_run_py_file(d / "mixste_cpn_9f.bin", mixste_shapes(16, 1, 9), 3, data_parallel=True),
        "tcn": save_run_py_file(d / "pretrained_tiny.bin", tcn_shapes([3, 3], 16), 4),
    }


def test_diffpose_frame_pair_becomes_official_run_and_lifter(files, tmp_path):
    written = import_released("diffpose-frame", [files["gcndiff"], files["gcnpose"]], tmp_path / "frame")
    assert written == [tmp_path / "frame" / "best.pt", tmp_path / "frame" / "lifter" / "best.pt"]
    official, lifter = load_model(written[0]), load_model(written[1])
    assert official.cfg.method == "official" and official.cfg.model.released
    assert lifter.cfg.method == "lifter" and (lifter.cfg.model.hidden, lifter.cfg.model.layers) == (HIDDEN, LAYERS)
    assert (official.cfg.official.test_num_diffusion_timesteps, official.cfg.sampling.official_steps) == (24, 2)
    # the file's weights under the kit's names: ChebConv (3, 1, in, out) -> (3, in, out), LayerNorm a_2 -> weight
    released = torch.load(files["gcndiff"], weights_only=True)[0]
    trunk = official.network.denoiser.trunk
    torch.testing.assert_close(trunk.input.weight, released["module.gconv_input.weight"][:, 0])
    torch.testing.assert_close(trunk.attention[1].norm2.weight, released["module.atten_layers.1.sublayer.1.norm.a_2"])
    torch.testing.assert_close(trunk.attention[0].attn.v.bias, released["module.atten_layers.0.self_attn.linears.2.bias"])
    pose = torch.load(files["gcnpose"], weights_only=True)[0]
    torch.testing.assert_close(lifter.network.net.trunk.blocks[1].conv2.bias, pose["module.gconv_layers.1.gconv2.gconv.bias"][0, 0])
    cond = window(4, 1)[:, 0]
    hyp = predict(official, cond)
    assert hyp.shape == (4, 1, 17, 3) and np.isfinite(hyp).all()
    np.testing.assert_allclose(hyp[:, 0, 0], 0, atol=1e-6)  # root-centred
    out = lifter.network(cond)
    torch.testing.assert_close(official.extras["lifter"](cond), out)  # the embedded GCNpose is the same network


def test_gcnpose_alone_is_a_frame_phi_st(files, tmp_path):
    from diffpose_viz.methods.two_stage import frozen_lifter, load_context_payload

    path = import_released("diffpose-frame", [files["gcnpose"]], tmp_path / "pose")[0]
    payload = load_context_payload(path)
    phi = frozen_lifter(payload, str(path))
    pose, feats = phi.forward_with_features(window(3, 1)[:, 0])
    assert pose.shape == (3, 17, 3) and feats.shape == (3, 17, HIDDEN)


def test_mixste_and_diffpose_video_round_trip(files, tmp_path):
    path = import_released("mixste", [files["mixste"]], tmp_path / "mixste", frames=9)[0]
    model = load_model(path)
    assert (model.cfg.method, model.cfg.model.frames, model.cfg.model.hidden) == ("video_lifter", 9, 16)
    state = torch.load(files["mixste"], weights_only=False)["model_pos"]
    torch.testing.assert_close(model.network.net.time_pos, state["module.Temporal_pos_embed"][0])
    torch.testing.assert_close(model.network.net.spatial[0].mlp[3].weight, state["module.STEblocks.0.mlp.fc2.weight"])
    hyp = predict(model, window(2, 9))
    assert hyp.shape == (2, 1, 17, 3) and np.isfinite(hyp).all()

    video = import_released("diffpose-video", [files["mixste"], files["gcndiff"]], tmp_path / "video")
    official = load_model(video[0])
    assert official.cfg.model.context == "video" and official.cfg.model.frames == 9
    assert (official.cfg.official.test_num_diffusion_timesteps, official.cfg.sampling.official_steps) == (6, 1)
    assert np.isfinite(predict(official, window(2, 9))).all()
    assert load_model(video[1]).cfg.method == "video_lifter"
    gt = load_model(import_released("diffpose-video", [files["gcndiff"], files["mixste"]], tmp_path / "gt",
                                    protocol="gt")[0]).cfg
    assert (gt.official.test_num_diffusion_timesteps, gt.sampling.official_steps) == (12, 2)
    assert gt.data.test_2d.endswith("data_2d_h36m_gt.npz") and gt.data.train_subjects == ["S1", "S5", "S6", "S7", "S8"]


# --------------------------------------------------------------------------- refusals


def test_file_of_another_kind_is_refused_naming_keys(files, tmp_path):
    with pytest.raises(CheckpointError, match=r"mixste_cpn_9f\.bin: not a released Diffpose GCNpose/GCNdiff file: "
                                              r"missing keys \['gconv_input.weight'"):
        import_released("diffpose-frame", [files["mixste"]], tmp_path / "x")
    with pytest.raises(CheckpointError, match=r"not a released MixSTE2 file: missing keys .*Spatial_patch"
                                              r".*expand_conv.weight \(16, 34, 3\)"):
        import_released("mixste", [files["tcn"]], tmp_path / "x")
    with pytest.raises(CheckpointError, match=r"gcn_xyz_cpn.pth: not a released VideoPose3D TemporalModel file"):
        import_released("videopose3d", [files["gcnpose"]], tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_missing_unexpected_and_misshapen_keys_are_named(tmp_path):
    shapes = gcn_shapes(HIDDEN, LAYERS, diff=True)
    state = random_state(shapes)
    del state["atten_layers.1.feed_forward.A_hat"]
    state["atten_layers.0.sublayer.0.norm.a_2"] = torch.ones(HIDDEN + 1)
    state["extra.weight"] = torch.zeros(2, 3)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as err:
        import_released("diffpose-frame", [tmp_path / "bad.pth"], tmp_path / "x")
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path / "bad.pth") in msg
    assert "atten_layers.0.sublayer.0.norm.a_2: file (9,) vs GCNdiff (8,)" in msg
    assert "missing keys: ['atten_layers.1.feed_forward.A_hat']" in msg
    assert "unexpected keys: ['extra.weight (2, 3)']" in msg


def test_truncated_and_code_referencing_files_are_refused(files, tmp_path):
    data = files["gcnpose"].read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pth: cannot read released Diffpose GCNpose/GCNdiff file") as err:
        import_released("diffpose-frame", [tmp_path / "cut.pth"], tmp_path / "x")
    assert "\n" not in str(err.value)
    torch.save({"model_pos": random_state(tcn_shapes([3, 3], 16)), "hook": np.random.default_rng}, tmp_path / "code.bin")
    with pytest.raises(CheckpointError, match=r"code\.bin: refused to load released .* Python global"):
        import_released("videopose3d", [tmp_path / "code.bin"], tmp_path / "x")


def test_receptive_field_mismatch_names_the_files_value(files, tmp_path):
    with pytest.raises(CheckpointError, match=r"--frames 27 does not match the file: its filter widths \[3, 3\] "
                                              r"implies a receptive field of 9 frames"):
        import_released("videopose3d", [files["tcn"]], tmp_path / "x", frames=27)
    with pytest.raises(CheckpointError, match=r"--frames 243 does not match the file: its Temporal_pos_embed "
                                              r"\(1, 9, 16\) implies a receptive field of 9 frames"):
        import_released("mixste", [files["mixste"]], tmp_path / "x", frames=243)


def test_out_is_never_replaced_without_force(files, tmp_path):
    out = tmp_path / "run"
    import_released("mixste", [files["mixste"]], out)
    before = (out / "best.pt").read_bytes()
    with pytest.raises(OutputExistsError, match="already exists; pass --force"):
        import_released("videopose3d", [files["tcn"]], out)
    assert (out / "best.pt").read_bytes() == before
    import_released("videopose3d", [files["tcn"]], out, force=True)
    assert load_model(out / "best.pt").cfg.model.video_lifter.kind == "tcn"


def test_cli_import_prints_and_refuses_in_one_line(files, tmp_path, capsys):
    assert main(["import", "diffpose-frame", str(files["gcnpose"]), str(files["gcndiff"]), "--out",
                 str(tmp_path / "cli"), "--protocol", "gt"]) == 0
    assert f"wrote {tmp_path / 'cli' / 'best.pt'}, {tmp_path / 'cli' / 'lifter' / 'best.pt'}" in capsys.readouterr().out
    assert load_model(tmp_path / "cli" / "best.pt").cfg.official.test_num_diffusion_timesteps == 12
    assert main(["import", "diffpose-frame", str(files["gcnpose"]), "--out", str(tmp_path / "cli")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists" in err
    assert main(["import", "mixste", str(files["gcnpose"]), "--out", str(tmp_path / "other")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a released MixSTE2 file" in err


def test_imported_official_run_follows_the_released_sampler(files, tmp_path):
    """The released test procedure written out here (Diffpose common/utils_diff.py `generalized_steps`, eta 0, the
    CPN config's seq [0, 12], linear betas 1e-4 -> 1e-3 over 51 steps) against the kit's `official` predict."""
    model = load_model(import_released("diffpose-frame", [files["gcnpose"], files["gcndiff"]], tmp_path / "o")[0])
    cond = window(5, 1, seed=3)[:, 0]
    betas = torch.from_numpy(np.linspace(1e-4, 1e-3, 51, dtype=np.float64)).float()
    abar = torch.cat([torch.ones(1), (1 - betas).cumprod(0)])  # abar[t + 1]; abar[0] = 1 for the last move

    with torch.no_grad():
        x = torch.cat([cond[..., :2], model.extras["lifter"](cond)], -1)
        seq = list(range(0, 24, 12))
        for i, j in zip(reversed(seq), reversed([-1] + seq[:-1])):
            at, at_next = abar[i + 1], abar[j + 1]
            eps = model.network.denoiser(x, torch.full((len(x),), i))
            x0 = (x - eps * (1 - at).sqrt()) / at.sqrt()
            x = at_next.sqrt() * x0 + (1 - at_next).sqrt() * eps
    expected = x[..., 2:] - x[:, :1, 2:]
    got = torch.as_tensor(predict(model, cond))[:, 0]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
