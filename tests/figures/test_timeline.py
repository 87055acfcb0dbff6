"""The Timeline's figures: what is inside them (the frame's 2D and image, hypotheses, radius, B, strips,
the current-frame marker) and that they keep the user's view (uirevision)."""
from __future__ import annotations

import numpy as np

from diffpose_viz.figures import sequence as S
from diffpose_viz.figures import timeline as T
from diffpose_viz.figures.skeleton3d import to_plot_axes
from timeline_fixtures import sequence_results


def _seq(**kw):
    ds = sequence_results(12, **kw)
    ds["radius"] = (("sample", "joint"), np.full((12, 17), 40.0, np.float32), {"units": "mm", "level": 0.9})
    ds["ood_score"] = (("sample",), np.linspace(0, 3, 12).astype(np.float32))
    ds["ood_flag"] = (("sample",), (np.linspace(0, 3, 12) > 2).astype(np.int8))
    ds.attrs["ood_threshold"] = 2.0
    return S.select_sequence(ds, 0)


def test_2d_figure_marks_occluded_and_low_confidence_joints():
    conf = np.linspace(0, 1, 17)
    occ = np.zeros(17, bool)
    occ[3] = True
    kp = np.random.default_rng(0).uniform(10, 100, (17, 2))
    fig = T.frame_2d_figure(kp, conf, occ, 160, 120, image=np.zeros((60, 80, 3), np.uint8), title="t")
    joints = fig.data[1]
    np.testing.assert_allclose(joints.x, kp[:, 0])
    assert joints.marker.symbol[3] == "circle-open" and joints.marker.symbol[0] == "x"
    assert joints.marker.symbol[16] == "circle"
    assert fig.layout.images[0].source.startswith("data:image/jpeg;base64,")
    assert list(fig.layout.yaxis.range) == [120, 0] and fig.layout.uirevision == "timeline2d"
    blank = T.frame_2d_figure(kp, conf, occ, 160, 120, note="no video")
    assert len(blank.layout.images) == 0 and "no video" in blank.layout.title.text


def test_3d_figure_holds_hypotheses_radius_and_b():
    seq = _seq()
    b = S.select_sequence(sequence_results(12, model="lifter", seed=5), 0)
    ranges = T.sequence_ranges(seq, b)
    fig = T.pose_3d_figure(seq.pred[4], seq.hypotheses[4], seq.radius_mm[4], seq.gt[4], ranges,
                           pred_b=b.pred[4], hypotheses_b=b.hypotheses[4], radius_level=0.9)
    names = [t.name for t in fig.data]
    assert names == ["A hypotheses (4)", "ground truth", "A mean (A)", "A joints", "A radius at 90%",
                     "B hypotheses (4)", "B mean (B)"]
    joints = fig.data[3]
    np.testing.assert_allclose(np.c_[joints.x, joints.y, joints.z], to_plot_axes(seq.pred[4]), atol=1e-6)
    ring = np.c_[fig.data[4].x, fig.data[4].y, fig.data[4].z].astype(float)
    ring = ring[np.isfinite(ring).all(1)]
    centres = to_plot_axes(seq.pred[4])[1:]  # the pelvis (radius 40 too) ring sits around the origin
    dist = np.linalg.norm(ring[:, None] - to_plot_axes(seq.pred[4])[None], axis=-1).min(1)
    np.testing.assert_allclose(dist.max(), 0.040, rtol=1e-3)  # every ring vertex 40 mm from a joint
    assert len(centres) == 16
    assert fig.layout.uirevision == "timeline3d" and list(fig.layout.scene.xaxis.range) == ranges[0]
    # every frame's poses fit the fixed axes: the person never leaves the box while scrubbing
    for axis, (lo, hi) in enumerate(ranges):
        p = to_plot_axes(seq.hypotheses)[..., axis]
        assert lo < p.min() and p.max() < hi


def test_strips_and_traces_follow_the_frame():
    seq = _seq()
    fig = T.strips_figure(seq, 7)
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["MPJPE (mm)", "hypothesis spread (mm)", "out-of-domain score", "detector confidence"]
    flagged = next(t for t in fig.data if t.name == "flagged: outside training")
    np.testing.assert_array_equal(flagged.x, seq.frames[seq.ood_flag])
    assert fig.layout.shapes[-1].x0 == seq.frames[7]
    traces = T.joint_traces_figure(seq, "left_wrist", 7)
    mean_x = next(t for t in traces.data if t.name == "A mean (A)")
    np.testing.assert_allclose(mean_x.y, seq.pred[:, 13, 0] * 1000, rtol=1e-6)
    assert traces.layout.shapes[-1].x0 == seq.frames[7]
    T.set_current_frame(traces, 3)
    assert len(traces.layout.shapes) == 3  # one line per subplot, all moved
    assert all(shape.x0 == shape.x1 == 3 for shape in traces.layout.shapes)


def test_notebook_figure_has_one_frame_per_kept_row():
    seq = _seq()
    fig = T.timeline_figure(seq, max_frames=5)
    assert len(fig.frames) == 5 and [f.name for f in fig.frames][0] == "0"
    assert len(fig.layout.sliders[0].steps) == 5
    last = fig.frames[-1].data[1]
    v = np.c_[last.x, last.y, last.z].astype(float)
    np.testing.assert_allclose(v[0], to_plot_axes(seq.pred[-1])[0], atol=1e-6)  # bone 0 starts at the pelvis


def test_orbit_camera_is_the_default_view_and_is_applied():
    cam = T.orbit_camera(*T.DEFAULT_VIEW)
    eye = np.array([cam["eye"][k] for k in "xyz"])
    assert np.isclose(np.linalg.norm(eye), T.DEFAULT_VIEW[2]) and eye[1] < 0 < eye[2]  # in front, a little above
    side = T.orbit_camera(0, 0, 2.0)["eye"]
    assert np.allclose([side["x"], side["y"], side["z"]], [2, 0, 0])
    seq = _seq()
    fig = T.pose_3d_figure(seq.pred[0], camera=T.orbit_camera(0, 0, 2.0))
    assert fig.layout.scene.camera.eye.x == 2.0
