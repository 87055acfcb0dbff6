"""Cameras: frames, projection against the bandai17 sample, screen normalisation, H36M calibration."""
from pathlib import Path

import os
import numpy as np
import pytest

from diffpose_viz.camera import (
    H36M_SUBJECTS,
    Camera,
    h36m_cameras,
    image_coordinates,
    normalize_screen,
    quaternion_to_matrix,
)

BANDAI = Path(os.environ.get("DIFFPOSE_VIZ_BANDAI", Path(__file__).resolve().parents[1].parent / "shared/data/bandai17"))


def test_world_camera_round_trip_and_camera_centre():
    rng = np.random.default_rng(0)
    x = rng.normal(scale=2.0, size=(50, 17, 3))
    for cam in h36m_cameras("S9"):
        np.testing.assert_allclose(cam.camera_to_world(cam.world_to_camera(x)), x, atol=1e-12)
        np.testing.assert_allclose(cam.world_to_camera(np.asarray(cam.translation)), 0.0, atol=1e-12)
        r = cam.rotation
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-6)
        assert np.linalg.det(r) == pytest.approx(1.0, abs=1e-6)


def test_h36m_cameras_look_at_the_capture_volume():
    # The studio centre (world origin, ~1 m up) is in front of every camera and inside its image.
    for subject in H36M_SUBJECTS:
        for cam in h36m_cameras(subject):
            p = cam.world_to_camera(np.array([0.0, 0.0, 1.0]))
            assert p[2] > 3.0
            u, v = cam.project(p)
            assert 0 < u < cam.res_w and 0 < v < cam.res_h


def test_quaternion_to_matrix_known_rotation():
    np.testing.assert_allclose(quaternion_to_matrix(np.array([1.0, 0, 0, 0])), np.eye(3))
    half = np.sqrt(0.5)
    rz = quaternion_to_matrix(np.array([half, 0, 0, half]))  # 90 degrees about z
    np.testing.assert_allclose(rz @ [1.0, 0, 0], [0, 1.0, 0], atol=1e-12)


@pytest.fixture(scope="module")
def bandai():
    if not (BANDAI / "data_3d_bandai17.npz").exists():
        pytest.skip(f"real mocap not available: {BANDAI} is absent")
    d3 = np.load(BANDAI / "data_3d_bandai17.npz", allow_pickle=True)
    d2 = np.load(BANDAI / "data_2d_bandai17_gt_sample.npz", allow_pickle=True)
    return (d3["positions_3d"].item(), d3["cameras"].item(), d2["positions_2d"].item(),
            d2["positions_2d_vp3d"].item())


@pytest.mark.parametrize("order,key", [("h36m", 2), ("vp3d", 3)])
def test_projection_matches_bandai_sample(bandai, order, key):
    positions_3d, cameras, samples = bandai[0], bandai[1], bandai[key]
    worst = 0.0
    for subject, actions in samples.items():
        for action, per_camera in actions.items():
            for cam_dict, expected in zip(cameras[subject], per_camera):
                cam = Camera.from_dict(cam_dict)
                uv = cam.project(cam.world_to_camera(positions_3d[subject][action]), tangential_order=order)
                worst = max(worst, float(np.abs(uv - expected).max()))
    assert worst < 1e-3


def test_tangential_orders_differ_measurably(bandai):
    positions_3d, cameras, samples = bandai[0], bandai[1], bandai[2]
    action = next(iter(samples["normal"]))
    cam = Camera.from_dict(cameras["normal"][2])
    x = cam.world_to_camera(positions_3d["normal"][action])
    diff = np.abs(cam.project(x, tangential_order="h36m") - cam.project(x, tangential_order="vp3d")).max()
    assert 0.05 < diff < 0.5  # the README's "at most 0.44 px"


def test_bandai_rig_is_the_h36m_s1_rig(bandai):
    for cam_dict, cam in zip(bandai[1]["normal"], h36m_cameras("S1")):
        other = Camera.from_dict(cam_dict)
        assert other.id == cam.id
        np.testing.assert_allclose(other.focal, cam.focal, rtol=1e-6)
        np.testing.assert_allclose(other.translation, cam.translation, atol=1e-6)
        np.testing.assert_allclose(other.orientation, cam.orientation, atol=1e-6)


def test_screen_normalisation_formula_and_inverse():
    w, h = 1000, 1002
    xy = np.array([[0.0, 0.0], [w, h / 2], [w / 2, h], [123.4, 567.8]])
    uv = normalize_screen(xy, w, h)
    np.testing.assert_allclose(uv[:, 0], 2 * xy[:, 0] / w - 1)
    np.testing.assert_allclose(uv[:, 1], 2 * xy[:, 1] / w - h / w)
    np.testing.assert_allclose(uv[0], [-1.0, -h / w])
    np.testing.assert_allclose(uv[1], [1.0, 0.0])  # the image centre row maps to v = 0
    np.testing.assert_allclose(image_coordinates(uv, w, h), xy, atol=1e-12)
    # Integer pixel input works and float32 stays float32.
    np.testing.assert_allclose(normalize_screen(np.array([500, 501]), w, h), [0.0, 0.0], atol=1e-12)
    assert normalize_screen(xy.astype(np.float32), w, h).dtype == np.float32


# Rounded values of the public Human3.6M calibration (VideoPose3D common/h36m_dataset.py).
_INTRINSICS = {
    "54138969": ((1000, 1002), (1145.05, 1143.78), (512.542, 515.451)),
    "55011271": ((1000, 1000), (1149.68, 1147.59), (508.849, 508.065)),
    "58860488": ((1000, 1000), (1149.14, 1148.8), (519.816, 501.403)),
    "60457274": ((1000, 1002), (1145.51, 1144.77), (514.968, 501.882)),
}
_EXTRINSICS = {
    ("S1", 0): ((0.140706, -0.150070, -0.755241, 0.622328), (1841.11, 4955.28, 1563.45)),
    ("S5", 2): ((0.142914, -0.129078, 0.767838, -0.611014), (-1620.59, 5171.66, 1496.44)),
    ("S8", 1): ((0.616960, -0.764767, -0.148464, 0.111582), (2219.97, -5148.45, 1613.04)),
    ("S9", 3): ((0.587940, -0.782341, 0.142761, -0.147949), (-1696.04, -3827.10, 1591.41)),
    ("S11", 1): ((0.618945, -0.760092, -0.153006, 0.125526), (2083.18, -4912.17, 1561.08)),
}


def test_h36m_camera_table_spot_checks():
    cams = h36m_cameras("S1")
    assert [c.id for c in cams] == list(_INTRINSICS)
    for cam in cams:
        res, f, c = _INTRINSICS[cam.id]
        assert (cam.res_w, cam.res_h) == res
        np.testing.assert_allclose(cam.focal, f, atol=0.006)
        np.testing.assert_allclose(cam.center, c, atol=6e-4)
    assert cams[0].radial[0] == pytest.approx(-0.207099, abs=1e-6)
    assert cams[2].tangential == pytest.approx((0.00148439, -0.000759999), abs=1e-8)
    for (subject, idx), (q, t_mm) in _EXTRINSICS.items():
        cam = h36m_cameras(subject)[idx]
        np.testing.assert_allclose(cam.orientation, q, atol=1e-6)
        np.testing.assert_allclose(np.asarray(cam.translation) * 1000, t_mm, atol=0.006)  # stored in metres
    assert H36M_SUBJECTS == ("S1", "S5", "S6", "S7", "S8", "S9", "S11")
    with pytest.raises(KeyError, match="S2"):
        h36m_cameras("S2")


def test_videopose3d_normalised_intrinsics():
    cam = h36m_cameras("S1")[0]
    assert cam.id == "54138969"
    vec = cam.intrinsic_vector
    assert vec.shape == (9,)
    np.testing.assert_allclose(vec[:4], [2.2901, 2.2876, 0.0251, 0.0289], atol=6e-5)
    np.testing.assert_allclose(vec[4:7], cam.radial, rtol=1e-6)


def test_from_dict_videopose3d_keys_and_mm_translation():
    d = {"id": "54138969", "res_w": 1000, "res_h": 1002, "focal_length": [1145.0, 1143.8],
         "center": [512.5, 515.5], "radial_distortion": [0.1, 0.0, 0.0], "tangential_distortion": [0.0, 0.0],
         "orientation": [1.0, 0.0, 0.0, 0.0], "translation": [1000.0, -2000.0, 500.0]}
    cam = Camera.from_dict(d, translation_units="mm")
    assert cam.translation == (1.0, -2.0, 0.5) and cam.focal == (1145.0, 1143.8) and cam.radial[0] == 0.1
    with pytest.raises(KeyError, match="res_w"):
        Camera.from_dict({"res_h": 10})
    assert Camera.from_dict(cam.to_dict()) == cam


def test_projection_errors_and_back_projection():
    cam = h36m_cameras("S1")[1]
    with pytest.raises(ValueError, match="behind the camera"):
        cam.project(np.array([0.0, 0.0, -1.0]))
    with pytest.raises(ValueError, match="tangential_order"):
        cam.project(np.array([0.0, 0.0, 1.0]), tangential_order="opencv")
    pts = np.array([[0.3, -0.2, 4.0], [-0.5, 0.4, 6.0]])
    uv = cam.project(pts, distort=False)
    np.testing.assert_allclose(cam.back_project(uv, pts[:, 2]), pts, atol=1e-12)
    # Distortion moves off-centre points (here barrel: towards the principal point).
    d = cam.project(pts)
    assert np.all(np.linalg.norm(d - cam.center, axis=-1) < np.linalg.norm(uv - cam.center, axis=-1))
