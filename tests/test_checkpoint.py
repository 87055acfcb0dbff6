"""Files that cannot run code: checkpoints, lifter checkpoints and H_K caches are read with
weights_only=True; a crafted pickle is refused (naming the file and the global) and never executed.
Old checkpoints (numpy arrays and the numpy RNG tuple inside) still load and predict; a killed write's
temporaries are cleaned at the next start."""
from __future__ import annotations

import logging
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from diffpose_viz import checkpoint as ck
from diffpose_viz.checkpoint import load_checkpoint
from diffpose_viz.errors import CheckpointError

from tiny_runs import tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


class _Marker:
    """Unpickling this writes a marker file (what a crafted checkpoint could do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",))


def _crafted(path: Path, marker: Path, *, zip_format: bool = True) -> Path:
    payload = {"format": ck.FORMAT, "format_version": ck.FORMAT_VERSION, "method": "lifter", "config": {},
               "model": {}, "x": _Marker(marker)}
    if zip_format:
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    return path


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):  # noqa: F811
    from diffpose_viz.training.trainer import train

    out = tmp_path_factory.mktemp("safety_run")
    train(tiny_config(tiny_data, **{"train.max_steps": 2, "method": "diffpose_joint"}), out, progress=False)
    return out


@pytest.mark.parametrize("zip_format", [True, False], ids=["torch.save", "raw-pickle"])
def test_crafted_checkpoint_is_refused_and_never_runs(tmp_path, zip_format):
    marker = tmp_path / "marker"
    path = _crafted(tmp_path / "evil.pt", marker, zip_format=zip_format)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and "refused" in str(info.value)
    assert "'exec'" in str(info.value) or "builtins.exec" in str(info.value)  # the refused global is named
    assert not marker.exists()


def test_crafted_checkpoint_refused_by_load_model_and_lifter(tmp_path):
    from diffpose_viz.inference import load_model
    from diffpose_viz.methods.official import load_lifter_payload

    marker = tmp_path / "marker"
    path = _crafted(tmp_path / "evil.pt", marker)
    for load in (load_model, load_lifter_payload):
        with pytest.raises(CheckpointError, match="refused"):
            load(path)
    assert not marker.exists()


def test_crafted_hk_cache_is_deleted_and_refitted(tiny_data, tmp_path, caplog):  # noqa: F811
    from diffpose_viz import inputs

    cfg = tiny_config(tiny_data)
    splits = inputs.load_splits(cfg.data, cfg.train.seed)
    val = splits.val.thin(8)
    prior = inputs.fit_prior(splits.train, cfg.init)
    det = inputs.make_inputs(val, cfg, "val")
    marker = tmp_path / "marker"
    cache = tmp_path / "hk.pt"
    torch.save({"weights": _Marker(marker)}, cache)
    with caplog.at_level(logging.WARNING):
        gmm = inputs.build_hk(det, inputs.row_intrinsics(val), prior, cfg.init, seed=1, cache=cache)
    assert not marker.exists()
    assert len(gmm.weights) == len(val)
    assert "unusable" in caplog.text and str(cache) in caplog.text
    # the refit replaced the crafted file with a plain-tensor cache
    assert set(torch.load(cache, weights_only=True)) == set(inputs.HK_FIELDS)


def test_new_checkpoints_need_nothing_allow_listed(trained):
    # plain torch.load(weights_only=True), no allow-list: only tensors and plain values inside
    ckpt = torch.load(trained / "last.pt", weights_only=True)
    assert isinstance(ckpt["rng_per_rank"][0]["global"]["numpy"], dict)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(trained / "last.pt") == []


def test_numpy_rng_state_round_trips():
    np.random.seed(3)
    np.random.normal()  # leaves a cached gaussian
    state = ck.rng_state()
    a = (np.random.rand(5), random.random(), torch.rand(3))
    ck.set_rng_state(state)
    b = (np.random.rand(5), random.random(), torch.rand(3))
    assert np.array_equal(a[0], b[0]) and a[1] == b[1] and torch.equal(a[2], b[2])


def _old_format_payload(ckpt: dict) -> dict:
    """What the trainer before weights_only=True saved (git show 0aee3cb:diffpose_viz/training/checkpoint.py):
    numpy arrays in the depth prior, np.random.get_state()'s tuple, torch.__version__ as is."""
    import platform

    from diffpose_viz.initialization.depth_prior import depth_prior_from_dict

    old = dict(ckpt)
    old["versions"] = {"diffpose_viz": ckpt["versions"]["diffpose_viz"], "torch": torch.__version__,
                       "numpy": np.__version__, "python": platform.python_version()}
    old["depth_prior"] = depth_prior_from_dict(ckpt["depth_prior"]).to_dict()  # numpy arrays, as before
    old["rng_per_rank"] = [{"global": {"python": random.getstate(), "numpy": np.random.get_state(),
                                       "torch": torch.get_rng_state()}, "noise": r["noise"]}
                           for r in ckpt["rng_per_rank"]]
    old["n_params"] = np.int64(ckpt["n_params"])
    old.pop(ck.FINGERPRINT_KEY, None)  # written since; an old file gets its fingerprint computed on load
    return old


def test_old_format_checkpoint_loads_and_predicts(trained, tmp_path):
    from diffpose_viz.camera import h36m_cameras
    from diffpose_viz.inference import SamplingSetting, lift_2d
    from diffpose_viz.inference import load_model

    old = _old_format_payload(torch.load(trained / "best.pt", weights_only=True))
    path = tmp_path / "old.pt"
    torch.save(old, path)
    assert "numpy._core.multiarray._reconstruct" in torch.serialization.get_unsafe_globals_in_checkpoint(path) or \
        "numpy.core.multiarray._reconstruct" in torch.serialization.get_unsafe_globals_in_checkpoint(path)
    ckpt = load_checkpoint(path)
    assert isinstance(ckpt["depth_prior"]["weights"], np.ndarray)
    ck.set_rng_state(ckpt["rng_per_rank"][0]["global"])  # the legacy numpy tuple is accepted
    model = load_model(path)
    new = load_model(trained / "best.pt")
    cam = h36m_cameras("S1")[0]
    world = np.array([[0.0, 0.0, 0.95]]) + np.random.default_rng(1).normal(0, 0.25, (17, 3))
    kp = cam.project(cam.world_to_camera(world))[None].repeat(2, 0)
    a = lift_2d(model, kp, cam, SamplingSetting(2, 2))
    b = lift_2d(new, kp, cam, SamplingSetting(2, 2))
    assert np.isfinite(a["hypotheses"].values).all()
    np.testing.assert_array_equal(a["hypotheses"].values, b["hypotheses"].values)


def test_killed_checkpoint_write_leaves_no_temporaries(trained, tiny_data, tmp_path):  # noqa: F811
    from diffpose_viz.training.trainer import Trainer

    run = tmp_path / "run"
    run.mkdir()
    for name in ("best.pt", "last.pt"):
        (run / f".{name}.12345.tmp").write_bytes(b"half a checkpoint")  # what a killed atomic write leaves
    tr = Trainer(tiny_config(tiny_data, **{"train.max_steps": 1}), run, progress=False)
    tr._claim_out_dir()
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]


def test_the_fingerprint_is_of_the_content_not_the_path(trained, tmp_path):
    """Written at save time, verified on load; a copy elsewhere has the same one, an edit is refused."""
    src = Path(trained) / "best.pt"
    fp = ck.checkpoint_fingerprint(src)
    raw = torch.load(src, weights_only=True)
    assert raw[ck.FINGERPRINT_KEY] == fp == ck.content_fingerprint(raw)
    moved = tmp_path / "elsewhere" / "best.pt"
    moved.parent.mkdir()
    moved.write_bytes(src.read_bytes())
    assert ck.checkpoint_fingerprint(moved) == fp
    raw["config"]["train"]["lr"] = 0.5  # an edited config: the stored fingerprint no longer fits
    torch.save(raw, tmp_path / "edited.pt")
    with pytest.raises(ck.CheckpointError, match="does not match the fingerprint"):
        load_checkpoint(tmp_path / "edited.pt")


def test_non_finite_weights_are_refused_even_with_a_fresh_fingerprint(trained, tmp_path):
    raw = torch.load(Path(trained) / "last.pt", weights_only=True)
    name = next(k for k, v in raw["model"].items() if v.is_floating_point())
    raw["model"][name][..., 0] = float("nan")
    ck.save_checkpoint(tmp_path / "nan.pt", raw)  # re-sealed: the content itself is what is wrong
    with pytest.raises(ck.CheckpointError, match=f"model weight '{name}' holds NaN"):
        load_checkpoint(tmp_path / "nan.pt")


def test_check_made_from_names_both_files_and_fingerprints(trained, tmp_path):
    from diffpose_viz.errors import ProvenanceError

    ckpt = Path(trained) / "best.pt"
    fp = ck.checkpoint_fingerprint(ckpt)
    assert ck.check_made_from(fp, "m.json", ckpt) == fp
    with pytest.raises(ProvenanceError, match=f"m.json: .*{'0' * 16}.*{ckpt}.*{fp[:16]}"):
        ck.check_made_from("0" * 64, "m.json", ckpt)
    assert ck.provenance(ckpt) == {"checkpoint": str(ckpt), "checkpoint_fingerprint": fp}
