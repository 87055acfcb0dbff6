"""scripts/swap_bodies.py: the diagnostic files that keep a motion and change the body (or the reverse)
keep every bone's direction and take the other body's median bone lengths."""
from __future__ import annotations

import importlib.util

import numpy as np

from diffpose_viz.augmentation import rescale_bones
from diffpose_viz.datasets.vp3d import load_3d, save_3d
from diffpose_viz.skeleton import H36M17
from tiny_runs import REPO, make_tiny_dataset

spec = importlib.util.spec_from_file_location("swap_bodies", REPO / "scripts" / "swap_bodies.py")
swap_bodies = importlib.util.module_from_spec(spec)
spec.loader.exec_module(swap_bodies)


def bones(poses: np.ndarray) -> np.ndarray:
    return np.stack([poses[:, c] - poses[:, p] for p, c in H36M17.bones], 1)


def test_swapped_files_keep_directions_and_take_the_other_bodys_lengths(tmp_path):
    own = make_tiny_dataset(tmp_path / "own.npz", seed=0)
    other = load_3d(make_tiny_dataset(tmp_path / "other_src.npz", seed=1))
    factors = np.linspace(0.7, 1.6, len(H36M17.bones))  # another body: every bone a different length
    big = {s: {a: rescale_bones(v, np.broadcast_to(factors, (len(v), len(factors)))) for a, v in acts.items()}
           for s, acts in other.positions.items()}
    save_3d(tmp_path / "other.npz", big, cameras=other.cameras, metadata={"fps": 30})
    assert swap_bodies.main(["--bandai", str(own), "--train-styles", "syn_a", "syn_b", "--test-styles", "syn_t",
                             "--cross-body", str(tmp_path / "other.npz"), "--out", str(tmp_path / "out")]) == 0
    source = load_3d(own)
    train_bones = swap_bodies.median_bone_lengths(source, ["syn_a", "syn_b"])
    motion = load_3d(tmp_path / "out" / "data_3d_cross_motion_bandai_body.npz")
    assert sorted(motion.subjects) == sorted(big)
    for s, acts in big.items():
        for a, before in acts.items():
            b0, b1 = bones(before), bones(motion.sequence(s, a))
            cos = (b0 * b1).sum(-1) / np.linalg.norm(b0, axis=-1) / np.linalg.norm(b1, axis=-1)
            np.testing.assert_allclose(cos, 1.0, atol=1e-5)  # joint angles kept
            np.testing.assert_allclose(motion.sequence(s, a)[:, 0], before[:, 0], atol=1e-5)  # pelvis stays
        np.testing.assert_allclose(swap_bodies.median_bone_lengths(motion, [s]), train_bones, rtol=1e-4)
    bodies = load_3d(tmp_path / "out" / "data_3d_bandai_motion_cross_bodies.npz")
    assert sorted(bodies.subjects) == sorted(f"syn_t@{p}" for p in big)
    for p in big:
        np.testing.assert_allclose(swap_bodies.median_bone_lengths(bodies, [f"syn_t@{p}"]),
                                   swap_bodies.median_bone_lengths(load_3d(tmp_path / "other.npz"), [p]), rtol=1e-4)
        assert len(bodies.cameras_for(f"syn_t@{p}")) == len(source.cameras_for("syn_t"))
