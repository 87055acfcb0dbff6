"""Body and view augmentation (diffpose_viz.augmentation) and the cross-body data builder; synthetic data only."""
from __future__ import annotations

import dataclasses
import re
import time

import numpy as np
import pytest

from diffpose_viz import augmentation as aug
from diffpose_viz.augmentation import (
    BODY_GROUPS, AugmentationConfig, BodyAugConfig, ViewAugConfig, augment_bodies, augment_rows,
    camera_up_vectors, draw_body_scales, fit_cameras, matrix_to_quaternion, project_virtual, view_augment,
    virtual_cameras,
)
from diffpose_viz.camera import h36m_cameras, quaternion_to_matrix
from diffpose_viz.skeleton import H36M17

BONES = H36M17.bones
PAR = np.array([p for p, _ in BONES])
CHI = np.array([c for _, c in BONES])

# Standing pose, Z up, pelvis at the origin: (parent -> child) offsets in metres.
_OFFSETS = {
    1: (-0.10, 0, 0), 2: (0, 0, -0.42), 3: (0, 0, -0.41), 4: (0.10, 0, 0), 5: (0, 0, -0.42), 6: (0, 0, -0.41),
    7: (0, 0, 0.22), 8: (0, 0, 0.25), 9: (0, 0, 0.10), 10: (0, 0, 0.13),
    11: (0.17, 0, 0), 12: (0, 0, -0.29), 13: (0, 0, -0.25), 14: (-0.17, 0, 0), 15: (0, 0, -0.29), 16: (0, 0, -0.25),
}


def random_rotations(rng, n):
    q = rng.standard_normal((n, 4))
    return quaternion_to_matrix(q / np.linalg.norm(q, axis=1, keepdims=True))


def random_poses(n, seed=0, *, z_up=False):
    """(n,17,3) root-relative poses with random joint angles; rotated at random unless z_up."""
    rng = np.random.default_rng(seed)
    pose = np.zeros((n, 17, 3))
    for p, c in BONES:
        off = np.asarray(_OFFSETS[c], dtype=float)
        length = np.linalg.norm(off)
        d = off / length + rng.normal(0, 0.35, (n, 3))
        pose[:, c] = pose[:, p] + d / np.linalg.norm(d, axis=1, keepdims=True) * length
    if z_up:
        return pose
    return np.einsum("nji,nki->njk", pose, random_rotations(rng, n))


def bone_vectors(pose):
    return pose[:, CHI] - pose[:, PAR]


# --------------------------------------------------------------------------- bodies
def test_bodies_keep_directions_and_relative_rotations():
    pose = random_poses(400)
    new, _ = augment_bodies(pose, 3, BodyAugConfig(global_scale=(1.0, 0.1), hips=(1.3, 0.2)))
    old_b, new_b = bone_vectors(pose), bone_vectors(new)
    unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(unit(new_b), unit(old_b), atol=1e-12)
    # Rotation of each bone relative to its parent bone: same angle and same axis.
    for b, (p, c) in enumerate(BONES):
        if p == 0:
            continue
        pb = [i for i, (_, cc) in enumerate(BONES) if cc == p][0]
        ang = lambda v: np.arccos(np.clip((unit(v[:, b]) * unit(v[:, pb])).sum(-1), -1, 1))  # noqa: E731
        axis = lambda v: np.cross(unit(v[:, pb]), unit(v[:, b]))  # noqa: E731
        np.testing.assert_allclose(ang(new_b), ang(old_b), atol=1e-7)
        np.testing.assert_allclose(axis(new_b), axis(old_b), atol=1e-12)


def test_bodies_respect_drawn_lengths_left_equals_right_pelvis_at_origin():
    pose = random_poses(300, seed=1)
    new, scales = augment_bodies(pose, 11)
    assert set(scales) == {"global", *BODY_GROUPS}
    ratio = H36M17.bone_lengths(new) / H36M17.bone_lengths(pose)
    for b, (_, c) in enumerate(BONES):
        group = aug.BONE_GROUP_BY_CHILD[H36M17.joint_names[c]]
        np.testing.assert_allclose(ratio[:, b], scales["global"] * scales[group], rtol=1e-12)
    for left, right in zip(H36M17.left, H36M17.right):
        bl = [i for i, (_, c) in enumerate(BONES) if c == left][0]
        br = [i for i, (_, c) in enumerate(BONES) if c == right][0]
        np.testing.assert_allclose(ratio[:, bl], ratio[:, br], rtol=1e-12)
    np.testing.assert_array_equal(new[:, 0], 0.0)
    # Widths scale exactly with their group (both sides hang off one joint).
    width = lambda p, a, b: np.linalg.norm(p[:, a] - p[:, b], axis=-1)  # noqa: E731
    np.testing.assert_allclose(width(new, 1, 4) / width(pose, 1, 4), scales["global"] * scales["hips"], rtol=1e-12)
    np.testing.assert_allclose(width(new, 11, 14) / width(pose, 11, 14), scales["global"] * scales["shoulders"],
                               rtol=1e-12)


def test_bodies_deterministic_per_seed_and_dtype_kept():
    pose = random_poses(50, seed=2).astype(np.float32)
    a, sa = augment_bodies(pose, 5)
    b, sb = augment_bodies(pose, np.random.default_rng(5))
    c, _ = augment_bodies(pose, 6)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert not np.allclose(a, c)
    with pytest.raises(ValueError, match=r"\(N, 17, 3\)"):
        augment_bodies(pose[:, :16], 0)
    with pytest.raises(ValueError, match="seed"):
        augment_bodies(pose, None)


def test_body_scale_distribution_matches_config():
    cfg = BodyAugConfig()
    s = draw_body_scales(200_000, 0, cfg)
    for name, key in [("global", "global_scale"), *[(g, g) for g in BODY_GROUPS]]:
        median, sigma = getattr(cfg, key)
        v = s[name]
        assert abs(v.mean() - 1.0) < 0.01, name
        assert abs(np.median(v) - median) < 0.005, name
        assert v.std() == pytest.approx(median * sigma, rel=0.05), name  # truncation at 3 sd costs ~1.5 %
        assert v.min() >= median * np.exp(-3 * sigma) - 1e-12 and v.max() <= median * np.exp(3 * sigma) + 1e-12
    # Groups and global are drawn independently.
    assert abs(np.corrcoef(s["hips"], s["shoulders"])[0, 1]) < 0.02


def test_body_prob_and_disabled():
    pose = random_poses(2000, seed=3)
    new, s = augment_bodies(pose, 0, BodyAugConfig(prob=0.25))
    untouched = np.all([s[k] == 1.0 for k in s], axis=0)
    assert untouched.mean() == pytest.approx(0.75, abs=0.04)
    np.testing.assert_array_equal(new[untouched], pose[untouched])
    assert not np.allclose(new[~untouched], pose[~untouched])
    new, s = augment_bodies(pose, 0, BodyAugConfig(enabled=False))
    np.testing.assert_array_equal(new, pose)
    assert all((v == 1).all() for v in s.values())


@pytest.mark.parametrize("kwargs, field, allowed", [
    (dict(hips=(1.0, -0.1)), "hips", r"\[0, 0.5\]"),
    (dict(global_scale=(0.0, 0.05)), "global_scale", r"\[0.25, 4\]"),
    (dict(prob=1.5), "prob", r"\[0, 1\]"),
    (dict(truncate=0), "truncate", r"\(0, 5\]"),
    (dict(thighs=(1.0,)), "thighs", "pair"),
])
def test_body_config_errors_name_field_and_range(kwargs, field, allowed):
    with pytest.raises(ValueError, match=field) as err:
        BodyAugConfig(**kwargs)
    assert re.search(allowed, str(err.value)), str(err.value)


@pytest.mark.parametrize("kwargs, field, allowed", [
    (dict(distance_m=(8.0, 2.5)), "distance_m", "empty range"),
    (dict(focal_px=(1500.0, 700.0)), "focal_px", "empty range"),
    (dict(elevation_deg=(-10.0, 95.0)), "elevation_deg", r"\(-90, 90\)"),
    (dict(elevation_deg=(-90.0, 10.0)), "elevation_deg", r"\(-90, 90\)"),
    (dict(roll_deg=(-60.0, 5.0)), "roll_deg", r"\[-45, 45\]"),
    (dict(yaw_deg=(0.0, 400.0)), "yaw_deg", "at most 360"),
    (dict(principal_jitter_px=-1.0), "principal_jitter_px", r"\[0, "),
    (dict(image_size=(1000, 0)), "image_size", r"\[16, 20000\]"),
    (dict(prob=-0.1), "prob", r"\[0, 1\]"),
    (dict(min_depth_m=3.0), "min_depth_m", r"\[0.1, 2.5\]"),
])
def test_view_config_errors_name_field_and_range(kwargs, field, allowed):
    with pytest.raises(ValueError, match=field) as err:
        ViewAugConfig(**kwargs)
    assert re.search(allowed, str(err.value)), str(err.value)


def test_augmentation_config_nests_and_checks_types():
    cfg = AugmentationConfig()
    assert cfg.body.prob == 1.0 and cfg.view.prob == 0.5
    with pytest.raises(ValueError, match="AugmentationConfig.view"):
        AugmentationConfig(view={"prob": 0.3})


# --------------------------------------------------------------------------- real bodies (a bank of people)
def bank_lengths(*limb_scale):
    """(P, 16) bone lengths of people whose limbs are those of `_OFFSETS` times each (upper_arm, lower_arm, thigh,
    shin) tuple, trunk unchanged."""
    base = np.array([np.linalg.norm(_OFFSETS[c]) for _, c in BONES])
    out = []
    for scales in limb_scale:
        group_scale = dict(zip(aug.LIMB_GROUPS, scales))
        out.append([b * group_scale.get(BODY_GROUPS[g], 1.0) for b, g in zip(base, aug.BONE_GROUP_INDEX)])
    return np.array(out)


BANK = BodyAugConfig(bank="fixture.json", bank_fraction=1.0)
LIMBS = [BODY_GROUPS.index(g) for g in aug.LIMB_GROUPS]
TRUNK = [i for i in range(len(BODY_GROUPS)) if i not in LIMBS]


def test_bank_rows_get_the_persons_limbs_and_grow_the_trunk_with_them():
    pose = random_poses(300, seed=4)
    person = bank_lengths((1.25, 1.25, 1.25, 1.25))  # one person, limbs 25 % longer than the rows'
    new, scales = augment_bodies(pose, 1, BANK, bank_bones=person)
    groups_old = aug.group_lengths(H36M17.bone_lengths(np.asarray(pose, dtype=np.float64)))
    groups_new = aug.group_lengths(H36M17.bone_lengths(np.asarray(new, dtype=np.float64)))
    np.testing.assert_allclose(groups_new[:, LIMBS], np.broadcast_to(aug.group_lengths(person)[0, LIMBS], (300, 4)))
    np.testing.assert_allclose(groups_new[:, TRUNK], 1.25 * groups_old[:, TRUNK])  # the row's shape, the person's size
    np.testing.assert_allclose(scales["global"], 1.0)
    unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(unit(bone_vectors(new)), unit(bone_vectors(pose)), atol=1e-9)


def test_bank_proportions_keep_the_rows_size():
    pose = random_poses(200, seed=5)
    person = bank_lengths((1.0, 1.0, 1.3, 1.3))  # long legs
    new, _ = augment_bodies(pose, 2, dataclasses.replace(BANK, bank_size="proportions"), bank_bones=person)
    old_g, new_g = (aug.group_lengths(H36M17.bone_lengths(p.astype(np.float64))) for p in (pose, new))
    np.testing.assert_allclose(new_g[:, LIMBS].sum(-1), old_g[:, LIMBS].sum(-1))
    np.testing.assert_allclose(new_g[:, TRUNK], old_g[:, TRUNK])
    ratio = aug.group_lengths(person)[0, LIMBS]
    np.testing.assert_allclose(new_g[:, LIMBS] / new_g[:, LIMBS].sum(-1, keepdims=True), np.broadcast_to(
        ratio / ratio.sum(), (200, 4)))


def test_bank_fraction_mixes_real_people_with_the_log_normal_draws():
    pose = random_poses(4000, seed=6)
    people = bank_lengths((1.1, 1.1, 1.1, 1.1), (0.9, 0.9, 0.9, 0.9))
    without, plain = augment_bodies(pose, 9, BodyAugConfig())
    none_real, same = augment_bodies(pose, 9, dataclasses.replace(BANK, bank_fraction=0.0), bank_bones=people)
    np.testing.assert_array_equal(none_real, without)  # the bank's draws come after the log-normal ones
    _, half = augment_bodies(pose, 9, dataclasses.replace(BANK, bank_fraction=0.5), bank_bones=people)
    real = half["global"] == 1.0
    assert 0.45 < real.mean() < 0.55
    np.testing.assert_array_equal(half["hips"][~real], plain["hips"][~real])
    thigh = aug.group_lengths(H36M17.bone_lengths(augment_bodies(pose, 9, dataclasses.replace(
        BANK, bank_fraction=0.5), bank_bones=people)[0].astype(np.float64)))[real, BODY_GROUPS.index("thighs")]
    persons = aug.group_lengths(people)[:, BODY_GROUPS.index("thighs")]
    assert np.all(np.isclose(thigh[:, None], persons[None]).any(-1))  # every real row is one of the two people
    assert 0.4 < np.isclose(thigh, persons[0]).mean() < 0.6  # drawn uniformly


def test_a_bank_without_its_people_or_with_bad_settings_is_refused():
    with pytest.raises(ValueError, match="augmentation.body.bank is 'fixture.json'.*augment_split reads the file"):
        augment_bodies(random_poses(5), 0, BANK)
    for kwargs, match in [({"bank": ""}, "BodyAugConfig.bank must be the path"),
                          ({"bank_fraction": 1.5}, r"BodyAugConfig.bank_fraction must be a number in \[0, 1\]"),
                          ({"bank_size": "stature"}, r"bank_size must be one of \['absolute', 'proportions'\]"),
                          ({"bank_exclude": (55, 0)}, r"bank_exclude must list CMU subject numbers.*\[0\]")]:
        with pytest.raises(ValueError, match=match):
            BodyAugConfig(**kwargs)


def test_the_bank_settings_round_trip_through_yaml_and_bad_ones_name_the_key(tmp_path):
    from diffpose_viz.config import ConfigError, read_config, save_config, to_dict
    from tiny_runs import tiny_config
    cfg = tiny_config(tmp_path / "unused.npz", **{
        "augmentation.body.bank": "../shared/data/cmu-skeletons/skeletons.json",
        "augmentation.body.bank_exclude": "[55, 63]", "augmentation.body.bank_size": "proportions"})
    assert cfg.augmentation.body.bank_exclude == (55, 63)
    save_config(cfg, tmp_path / "c.yaml")
    assert to_dict(read_config(tmp_path / "c.yaml")) == to_dict(cfg)
    with pytest.raises(ConfigError, match="augmentation.body.*bank_size must be one of"):
        tiny_config(tmp_path / "unused.npz", **{"augmentation.body.bank_size": "tall"})


# --------------------------------------------------------------------------- viewpoints
def test_matrix_to_quaternion_round_trip():
    rng = np.random.default_rng(0)
    r = random_rotations(rng, 500)
    # Include rotations by ~180 degrees about each axis (w near 0), where naive formulas divide by ~0.
    r = np.concatenate([r, np.diag([1.0, -1, -1])[None], np.diag([-1.0, 1, -1])[None], np.diag([-1.0, -1, 1])[None]])
    q = matrix_to_quaternion(r)
    assert (q[:, 0] >= 0).all()
    np.testing.assert_allclose(quaternion_to_matrix(q), r, atol=1e-12)


def test_virtual_cameras_geometry():
    cfg = ViewAugConfig(roll_deg=(0.0, 0.0), aim_jitter_m=0.0, principal_jitter_px=0.0)
    cams = virtual_cameras(300, 4, cfg, target_height_m=1.0)
    assert len(cams) == 300 and cams.res.dtype == np.int32 and (cams.res == 1000).all()
    aim = np.array([0.0, 0.0, 1.0])
    offset = cams.translation - aim
    np.testing.assert_allclose(np.linalg.norm(offset, axis=1), cams.distance_m, rtol=1e-12)
    np.testing.assert_allclose(offset[:, 2], cams.distance_m * np.sin(np.radians(cams.elevation_deg)), atol=1e-12)
    np.testing.assert_allclose(np.degrees(np.arctan2(offset[:, 1], offset[:, 0])) % 360, cams.yaw_deg % 360,
                               atol=1e-9)
    r = cams.rotation
    np.testing.assert_allclose(r[:, 2, 0], 0.0, atol=1e-12)  # no roll: image x axis is horizontal
    assert (r[:, 2, 1] < 0).all()  # image y (down) has a downward world component
    uv = cams.project(cams.world_to_camera(np.broadcast_to(aim, (300, 1, 3))))
    np.testing.assert_allclose(uv[:, 0], np.full((300, 2), 500.0), atol=1e-9)  # the aim point is the principal point
    assert (cams.focal >= 700).all() and (cams.focal <= 1500).all() and (cams.focal[:, 0] == cams.focal[:, 1]).all()


def test_virtual_projection_matches_camera_project():
    pose = random_poses(40, seed=5, z_up=True)
    root = np.random.default_rng(1).uniform(-1, 1, (40, 3)) + [0.0, 0.0, 1.0]
    cams = virtual_cameras(40, 9, ViewAugConfig(), target=root)
    cams = fit_cameras(cams, pose + root[:, None], ViewAugConfig())
    out = project_virtual(pose, root, cams)
    for i in range(0, 40, 3):
        cam = cams.camera(i)
        x_cam = cam.world_to_camera(pose[i] + root[i])
        np.testing.assert_allclose(out.pose2d[i], cam.project(x_cam), atol=1e-4, rtol=0)
        np.testing.assert_allclose(out.root[i], x_cam[0], atol=1e-9)
        np.testing.assert_allclose(out.pose3d[i], x_cam - x_cam[0], atol=1e-9)
    # Absolute input (root=None) gives the same result.
    again = project_virtual(pose + root[:, None], None, cams)
    np.testing.assert_allclose(again.pose2d, out.pose2d, atol=1e-9)
    # Re-viewing is a rigid motion: bone lengths are unchanged.
    np.testing.assert_allclose(H36M17.bone_lengths(out.pose3d), H36M17.bone_lengths(pose), atol=1e-12)


@pytest.mark.parametrize("cfg", [
    ViewAugConfig(),
    # Forces both fixes: cameras inside the body's reach and a long lens.
    ViewAugConfig(distance_m=(0.6, 1.0), focal_px=(3000.0, 5000.0), min_depth_m=0.5, aim_jitter_m=0.5),
])
def test_subjects_in_front_and_in_frame(cfg):
    n = 3000
    pose = random_poses(n, seed=7)
    root = np.random.default_rng(2).uniform(-0.5, 0.5, (n, 3)) + [0.0, 0.0, 5.0]
    drawn = virtual_cameras(n, 3, cfg, target=root, up=(0.0, -1.0, 0.0), reference=-root)
    res = view_augment(pose, root, 3, cfg)
    depth = res.pose3d[..., 2] + res.root[:, None, 2]
    assert depth.min() >= cfg.min_depth_m - 1e-9
    w, h = cfg.image_size
    m = cfg.margin_px
    assert res.pose2d[..., 0].min() >= m - 1e-6 and res.pose2d[..., 0].max() <= w - m + 1e-6
    assert res.pose2d[..., 1].min() >= m - 1e-6 and res.pose2d[..., 1].max() <= h - m + 1e-6
    assert (res.cameras.focal <= drawn.focal + 1e-9).all()  # focal only ever shrinks
    np.testing.assert_array_equal(res.cameras.orientation, drawn.orientation)  # angles are never re-drawn
    if cfg.distance_m[1] < 2:
        assert (res.cameras.distance_m > drawn.distance_m).mean() > 0.3
        assert (res.cameras.focal[:, 0] < drawn.focal[:, 0]).mean() > 0.9


def test_view_augment_deterministic_and_seed_dependent():
    pose = random_poses(100, seed=8)
    root = np.tile([0.1, -0.2, 4.5], (100, 1))
    a = view_augment(pose, root, 21)
    b = view_augment(pose, root, 21)
    c = view_augment(pose, root, 22)
    np.testing.assert_array_equal(a.pose2d, b.pose2d)
    np.testing.assert_array_equal(a.pose3d, b.pose3d)
    assert not np.allclose(a.pose2d, c.pose2d)


# --------------------------------------------------------------------------- PoseSet rows
def _camera_rows(n, seed=0):
    """Rows like a PoseSet: world poses (Z up, on the floor near the origin) seen by the four S1 cameras."""
    cams = {c.id: c for c in h36m_cameras("S1")}
    keys = np.array(list(cams))[np.arange(n) % 4]
    world = random_poses(n, seed, z_up=True) + np.random.default_rng(seed).uniform(-0.5, 0.5, (n, 1, 3)) * [1, 1, 0]
    world[..., 2] += 0.95
    pose3d, root = np.empty_like(world), np.empty((n, 3))
    for k, cam in cams.items():
        rows = keys == k
        x = cam.world_to_camera(world[rows])
        root[rows] = x[:, 0]
        pose3d[rows] = x - x[:, :1]
    return pose3d, root, keys, cams, world


def test_camera_up_vectors_point_up():
    _, _, keys, cams, _ = _camera_rows(8)
    up = camera_up_vectors(cams, keys)
    for i, k in enumerate(keys):
        np.testing.assert_allclose(cams[k].camera_to_world(up[i]) - cams[k].camera_to_world(np.zeros(3)),
                                   [0, 0, 1], atol=1e-12)


def test_augment_rows_real_camera_rows_reproject_new_body():
    pose3d, root, keys, cams, _ = _camera_rows(200)
    cfg = AugmentationConfig(view=ViewAugConfig(prob=0.0))
    out = augment_rows(pose3d, root, keys, cams, 1, cfg)
    assert not out.virtual.any()
    np.testing.assert_array_equal(out.root, root)
    new_body, scales = augment_bodies(pose3d, 1, cfg.body)  # same seed, same first draws
    np.testing.assert_allclose(out.pose3d, new_body, atol=1e-12)
    for i in (0, 1, 2, 3, 57):
        cam = cams[keys[i]]
        np.testing.assert_allclose(out.pose2d[i], cam.project(out.pose3d[i] + out.root[i]), atol=1e-9)
        assert tuple(out.res[i]) == (cam.res_w, cam.res_h) and out.focal[i] == pytest.approx(np.mean(cam.focal))


def test_augment_rows_virtual_rows_are_consistent_and_upright():
    pose3d, root, keys, cams, world = _camera_rows(400, seed=4)
    cfg = AugmentationConfig(view=ViewAugConfig(prob=0.6, roll_deg=(0.0, 0.0)))
    out = augment_rows(pose3d, root, keys, cams, 2, cfg)
    again = augment_rows(pose3d, root, keys, cams, 2, cfg)
    np.testing.assert_array_equal(out.pose2d, again.pose2d)
    v = out.virtual
    assert 0.5 < v.mean() < 0.7
    # 2D is the projection of the new camera-frame pose (no distortion on virtual cameras).
    absolute = out.pose3d[v] + out.root[v][:, None]
    f = out.focal[v][:, None, None]
    uv = absolute[..., :2] / absolute[..., 2:] * f
    centred = out.pose2d[v] - uv  # = principal point, the same for every joint of a row
    np.testing.assert_allclose(centred - centred[:, :1], 0.0, atol=1e-6)
    assert (out.res[v] == 1000).all()
    # New body kept through the re-view: lengths scaled as drawn.
    ratio = H36M17.bone_lengths(out.pose3d) / H36M17.bone_lengths(pose3d)
    np.testing.assert_allclose(ratio, aug.bone_scale_matrix(out.scales), rtol=1e-9)
    # With no roll the people stay upright: head above feet in the virtual image (v grows downwards).
    assert (out.pose2d[v][:, 10, 1] < out.pose2d[v][:, [3, 6], 1].max(1)).mean() > 0.95
    with pytest.raises(KeyError, match="camera keys"):
        augment_rows(pose3d, root, np.array(["nope"] * 400), cams, 0, cfg)


def test_body_augmentation_is_fast_enough_for_a_million_rows():
    # Vectorised over rows: 1e6 rows take about 2 s on one busy core; 1e5 here keeps the test fast.
    pose = np.zeros((100_000, 17, 3), np.float32) + random_poses(1, seed=9).astype(np.float32)
    t = time.perf_counter()
    augment_bodies(pose, 0)
    assert time.perf_counter() - t < 2.0


# --------------------------------------------------------------------------- cross-body data
def test_measure_body_on_a_known_skeleton():
    from diffpose_viz.datasets.cross_body import measure_body

    pose = random_poses(1, z_up=True)
    standing = np.zeros((1, 17, 3))
    for p, c in BONES:
        standing[:, c] = standing[:, p] + _OFFSETS[c]
    poses = np.concatenate([standing, pose, standing]) + [0, 0, 0.95]
    m = measure_body(poses)
    assert m["hip_width"] == pytest.approx(0.20) and m["shoulder_width"] == pytest.approx(0.34)
    assert m["thigh"] == pytest.approx(0.42) and m["shin"] == pytest.approx(0.41)
    assert m["upper_arm"] == pytest.approx(0.29) and m["forearm"] == pytest.approx(0.25)
    assert m["spine"] == pytest.approx(0.47) and m["neck_head"] == pytest.approx(0.23)
    assert m["chain_height"] == pytest.approx(0.42 + 0.41 + 0.47 + 0.23)
    assert m["height"] == pytest.approx(0.41 + 0.42 + 0.47 + 0.23)  # standing frames dominate the percentile
    with pytest.raises(ValueError, match="17, 3"):
        measure_body(poses[:, :16])


def test_build_cross_body_from_a_stub_demo(tmp_path, monkeypatch):
    from diffpose_viz.datasets import cross_body, load_3d, save_3d
    from diffpose_viz.datasets.demo import DemoSummary

    def fake_build_demo(out_dir, cache_dir, **kw):
        path = tmp_path / "demo" / "data_3d_demo.npz"
        path.parent.mkdir(exist_ok=True)
        small = random_poses(40, seed=1, z_up=True) + [0, 0, 0.95]
        big = (small - small[:, :1]) * 1.2 + small[:, :1]
        save_3d(path, {"small": {"a 001": small}, "big": {"b 001": big}},
                cameras={s: h36m_cameras("S1") for s in ("small", "big")},
                metadata={"fps": 30.0, "demo_version": 1, "world": "Z up", "license": "test"})
        calls.append(1)
        return DemoSummary(path=path, subjects={})

    calls = []
    monkeypatch.setattr(cross_body, "build_demo", fake_build_demo)
    summary = cross_body.build_cross_body(tmp_path / "xb", tmp_path / "cache", demo_dir=tmp_path / "demo", log=None)
    assert summary.rebuilt and calls == [1]
    m = load_3d(summary.path)
    assert set(m.subjects) == {"small", "big"} and len(m.cameras_for("big")) == 4
    assert m.metadata["split"]["test"] == ["small", "big"]
    bodies = m.metadata["bodies"]
    assert bodies["big"]["thigh"] == pytest.approx(1.2 * bodies["small"]["thigh"], rel=1e-5)
    assert bodies["small"]["frames"] == 40
    assert "do not commit" in (tmp_path / "xb" / "BODIES.md").read_text()
    again = cross_body.build_cross_body(tmp_path / "xb", tmp_path / "cache", demo_dir=tmp_path / "demo", log=None)
    assert not again.rebuilt and calls == [1] and again.bodies["big"]["thigh"] == pytest.approx(bodies["big"]["thigh"])


# --------------------------------------------------------------------------- the 2D size cue (sampler "real_cameras")


def _size_cue_rows(n: int = 1500):
    """Standing fixture bodies in a level camera's frame, pelvis 5 m ahead (x right, y down, z forward)."""
    from conftest import _world_pose

    rng = np.random.default_rng(0)
    world = np.stack([_world_pose(rng) for _ in range(n)])
    cam = np.stack([world[..., 0], -world[..., 2], world[..., 1]], -1)
    return cam - cam[:, :1], np.tile([0.0, 0.0, 5.0], (n, 1))


def _height_2d(rel, root, stature: float, cfg: ViewAugConfig, seed: int = 7) -> np.ndarray:
    """Projected height (fraction of the image width, what the screen-normalised input sees) of the bodies scaled
    to `stature` x, through cameras drawn with `seed`: the same draw for every stature."""
    from diffpose_viz.augmentation import BODY_GROUPS, bone_scale_matrix, rescale_bones, view_augment

    n = len(rel)
    k = bone_scale_matrix({"global": np.full(n, stature), **{g: np.ones(n) for g in BODY_GROUPS}})
    v = view_augment(rescale_bones(rel, k), root, seed, cfg)
    return np.ptp(v.pose2d[..., 1], axis=1) / cfg.image_size[0]


def size_cue_error(cfg_small: ViewAugConfig, cfg_big: ViewAugConfig, small: float = 0.85, big: float = 1.3):
    """(median, max) over rows of |(h_big / h_small) / (big / small) - 1|: 0 when a camera draw that sees a
    small body sees a big one exactly as much bigger as it is (the size cue survives augmentation)."""
    rel, root = _size_cue_rows()
    dev = np.abs(_height_2d(rel, root, big, cfg_big) / _height_2d(rel, root, small, cfg_small) / (big / small) - 1)
    return float(np.median(dev)), float(dev.max())


def test_real_camera_sampler_keeps_the_2d_size_cue():
    real = ViewAugConfig(prob=1.0, sampler="real_cameras")
    med, worst = size_cue_error(real, real)
    assert med < 0.01 and worst < 0.05  # only perspective (depth of the limbs) is left
    # distributions too: 2D height per metre of body does not depend on the body
    rel, root = _size_cue_rows()
    per_m_small = _height_2d(rel, root, 0.85, real, seed=1) / 0.85
    per_m_big = _height_2d(rel, root, 1.3, real, seed=2) / 1.3
    assert abs(np.median(per_m_big) / np.median(per_m_small) - 1) < 0.03
    focal = virtual_cameras(2000, 0, real).focal[:, 0]
    fov = 2 * np.degrees(np.arctan(real.image_size[0] / 2 / focal))
    assert fov.min() >= real.hfov_deg[0] - 1e-6 and fov.max() <= real.hfov_deg[1] + 1e-6


def test_the_size_cue_property_fails_for_samplers_that_hide_body_size():
    real = ViewAugConfig(prob=1.0, sampler="real_cameras")
    # distance rescaled with the body: every body looks the same size, the cue is gone
    small = dataclasses.replace(real, distance_m=(2.5 * 0.85, 8.0 * 0.85))
    big = dataclasses.replace(real, distance_m=(2.5 * 1.3, 8.0 * 1.3))
    assert size_cue_error(small, big)[0] > 0.2
    # the first sampler shrinks the focal of the rows a big body would leave: those rows lose the cue
    assert size_cue_error(ViewAugConfig(prob=1.0), ViewAugConfig(prob=1.0))[1] > 0.2


def test_bad_view_sampler_is_refused():
    with pytest.raises(ValueError, match=r"ViewAugConfig.sampler must be one of"):
        ViewAugConfig(sampler="orbit")
    with pytest.raises(ValueError, match=r"ViewAugConfig.hfov_deg"):
        ViewAugConfig(hfov_deg=(5.0, 60.0))
