"""The feed (diffpose_viz/inputs/feed.py): one split as a method is fed it. Windows and H_K follow what the
method asks for, the H_K cache has one name, and a feed gives the same numbers as the steps it replaces."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from diffpose_viz.camera import h36m_cameras
from diffpose_viz.inputs import (
    SPLIT_SEEDS,
    build_feed,
    build_hk,
    feed_from_keypoints,
    fit_prior,
    hk_cache_key,
    load_poses,
    make_inputs,
    row_intrinsics,
    rows_digest,
    scored_rows,
    screen_input,
    window_indices,
)
from diffpose_viz.methods import METHODS

from tiny_runs import tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


@dataclass
class Needs:
    """A stand-in method: only what the feed asks of one."""

    windows: bool = False
    hk_at_training: bool = False
    hk_at_test: bool = False
    name: str = "stand-in"

    def uses_windows(self, cfg) -> bool:
        return self.windows

    def hk_depth(self, cfg, extras, cond, occluded, windows=None):
        return None


@pytest.fixture(scope="module")
def rows(tiny_data):
    cfg = tiny_config(tiny_data, **{"model.frames": 5})
    return cfg, load_poses(cfg.data, ["syn_a"])


def test_windows_only_for_a_method_that_reads_them(rows):
    cfg, poses = rows
    assert build_feed(poses, cfg, "val", Needs(windows=False)).windows is None
    feed = build_feed(poses, cfg, "val", Needs(windows=True))
    assert feed.windows.shape == (len(poses), 5)
    np.testing.assert_array_equal(feed.windows.numpy(), window_indices(poses, 5))
    thinned = scored_rows(poses, 6, cfg, Needs(windows=True))  # the scored rows keep their windows' frames
    assert len(thinned.scored) == 6 and len(thinned.poses) > 6
    assert scored_rows(poses, 6, cfg, Needs(windows=False)).windows is None


def test_hk_follows_the_split_and_the_method(rows, tmp_path):
    cfg, poses = rows
    prior = fit_prior(poses, cfg.init)
    train_only = Needs(hk_at_training=True)
    assert build_feed(poses, cfg, "val", train_only).with_hk(prior).gmm is None  # predict does not read it
    feed = build_feed(poses, cfg, "train", train_only).with_hk(prior, cache=tmp_path)
    assert feed.gmm is not None and len(feed.gmm.weights) == len(poses)
    key = hk_cache_key(cfg, "train", len(poses), prior,
                       rows=rows_digest(feed.det, np.asarray(feed.intrinsics), SPLIT_SEEDS["train"]))
    assert [p.name for p in tmp_path.iterdir()] == [f"hk_train_{key}.pt"]
    again = build_feed(poses, cfg, "train", train_only).with_hk(prior, cache=tmp_path)  # read from the cache
    torch.testing.assert_close(again.gmm.means, feed.gmm.means, rtol=0, atol=0)


def test_a_shared_hk_cache_never_serves_other_rows(rows, tmp_path):
    """Same config, same number of rows, other rows (as another train.seed's split gives): another file."""
    cfg, poses = rows
    prior = fit_prior(poses, cfg.init)
    train_only = Needs(hk_at_training=True)
    first, second = poses.subset(np.arange(0, 20)), poses.subset(np.arange(20, 40))
    a = build_feed(first, cfg, "train", train_only).with_hk(prior, cache=tmp_path)
    b = build_feed(second, cfg, "train", train_only).with_hk(prior, cache=tmp_path)
    assert len(list(tmp_path.glob("hk_train_*.pt"))) == 2
    assert not torch.equal(a.gmm.means, b.gmm.means)
    fresh = build_feed(second, cfg, "train", train_only).with_hk(prior)  # no cache: what b must equal
    torch.testing.assert_close(b.gmm.means, fresh.gmm.means, rtol=0, atol=0)
    det = a.det
    assert rows_digest(det, np.asarray(a.intrinsics), 1) != rows_digest(det, np.asarray(a.intrinsics), 2)


def test_hk_of_some_rows_is_indexed_by_row(rows, tmp_path):
    cfg, poses = rows
    prior = fit_prior(poses, cfg.init)
    picked = np.array([1, 4, 7])
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(b"x")
    feed = build_feed(poses, cfg, "test", Needs(hk_at_test=True)).with_hk(prior, rows=picked, cache=tmp_path,
                                                                          checkpoint=ckpt)
    assert len(feed.gmm.weights) == 3
    np.testing.assert_array_equal(feed.gmm_index(np.array([7, 1])), [2, 0])
    with pytest.raises(ValueError, match="no H_K"):
        feed.gmm_index(np.array([2]))
    assert [p.name.startswith("hk_test_eval_") for p in tmp_path.glob("hk_*.pt")] == [True]


def test_a_feed_gives_the_numbers_of_the_steps_it_replaces(rows):
    """2D input, condition, intrinsics and H_K as the trainer built them before the feed, bit for bit."""
    cfg, poses = rows
    prior = fit_prior(poses, cfg.init)
    method = METHODS["diffpose_joint"]
    feed = build_feed(poses, cfg, "train", method, targets=True).with_hk(prior)
    det = make_inputs(poses, cfg, "train")
    cond = screen_input(det.keypoints, det.confidence, poses.res)
    gmm = build_hk(det, row_intrinsics(poses), prior, cfg.init, seed=SPLIT_SEEDS["train"])
    np.testing.assert_array_equal(feed.cond.numpy(), cond)
    np.testing.assert_array_equal(feed.intrinsics, row_intrinsics(poses))
    for name in ("weights", "means", "variances"):
        torch.testing.assert_close(getattr(feed.gmm, name), getattr(gmm, name), rtol=0, atol=0)
    np.testing.assert_array_equal(feed.pose3d.numpy(), poses.pose3d)


def test_nan_targets_are_refused(rows):
    cfg, poses = rows
    bad = poses.subset(np.arange(len(poses)))
    bad.pose3d[2, 3, 0] = np.nan
    with pytest.raises(ValueError, match="train 3D targets"):
        build_feed(bad, cfg, "train", Needs(), targets=True)


def test_user_keypoints_are_one_sequence_seen_by_one_camera(rows):
    cfg, poses = rows
    cam = h36m_cameras("S1")[0]
    kp = poses.pose2d[:4]
    feed = feed_from_keypoints(kp, np.ones((4, 17)), np.zeros((4, 17), bool), 5.0, cam, cfg, Needs(windows=True))
    assert feed.split == "wild" and feed.windows.shape == (4, 5)
    assert feed.windows[0].tolist() == [0, 0, 0, 1, 2]  # edge-replicated at the sequence's start
    assert feed.res.tolist() == [[cam.res_w, cam.res_h]] * 4 and feed.intrinsics.shape == (4, 4)
    assert feed.det.modes.shape[:3] == (4, 17, 1)  # one mode per joint at the keypoint
