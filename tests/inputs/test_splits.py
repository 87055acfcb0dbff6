"""data.extra_train: other data_3d files join the training side with their own weight, without touching the
main file's split, and with names that cannot collide."""
from __future__ import annotations

import numpy as np
import pytest

from diffpose_viz.datasets.poses import reweighted
from diffpose_viz.errors import ConfigError
from diffpose_viz.inputs import load_splits
from diffpose_viz.training.trainer import train
from tiny_runs import make_tiny_dataset, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def second_file(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("second") / "data_3d_other.npz", seed=7)


def source(path, **kw):
    return {"data.extra_train": "[" + ", ".join([f"{{path: '{path}', subjects: [syn_a, syn_b]"
                                                 + "".join(f", {k}: {v}" for k, v in kw.items()) + "}"]) + "]"}


def test_extra_source_rows_are_prefixed_weighted_and_leave_the_main_split_alone(tiny_data, second_file):
    base = load_splits(tiny_config(tiny_data).data, 0)
    one = load_splits(tiny_config(tiny_data, **source(second_file)).data, 0)
    two = load_splits(tiny_config(tiny_data, **source(second_file, weight=2)).data, 0)
    main = ~np.char.startswith(one.train.subject.astype(str), "data_3d_other:")
    np.testing.assert_array_equal(one.train.pose3d[main], base.train.pose3d)  # the main file's rows unchanged
    assert set(one.train.subject[~main]) <= {"data_3d_other:syn_a", "data_3d_other:syn_b"}
    assert all(k.startswith("data_3d_other/") for k in set(one.train.camera[~main]))
    extra = int((~main).sum())
    assert extra > 0 and len(two.train) == len(base.train) + 2 * extra
    assert len(one.val) > len(base.val)  # the source gives held-out sequences too
    val_seq = set(one.val.sequence_key) & set(one.train.sequence_key)
    assert not val_seq  # no sequence on both sides


def test_reweighted_keeps_evenly_spaced_rows(tiny_data):
    rows = load_splits(tiny_config(tiny_data).data, 0).train
    half = reweighted(rows, 0.5)
    assert len(half) == round(len(rows) / 2)
    np.testing.assert_array_equal(half.pose3d, rows.pose3d[::2][:len(half)])


def test_a_lifter_trains_on_two_sources(tiny_data, second_file, tmp_path):
    run = train(tiny_config(tiny_data, method="lifter", **source(second_file, weight=0.5),
                            **{"train.max_steps": 3}), tmp_path / "run", progress=False)
    assert run.best.exists()


def test_a_source_can_take_more_frames_per_sequence_than_the_main_file(tiny_data, second_file):
    capped_cfg = {"data.max_frames": 2, "data.validation_fraction": 0.0}
    main = load_splits(tiny_config(tiny_data, **capped_cfg).data, 0).train
    rows = {mf: load_splits(tiny_config(tiny_data, **capped_cfg, **source(second_file, **kw)).data, 0).train for mf, kw in ((2, {}), (5, {"max_frames": 5}))}
    for cap, train in rows.items():
        extra = np.char.startswith(train.subject.astype(str), "data_3d_other:")
        np.testing.assert_array_equal(train.pose3d[~extra], main.pose3d)  # the main file keeps its cap
        key = np.char.add(train.sequence_key[extra], train.camera[extra].astype(str))
        per_take = np.unique(key, return_counts=True)[1]
        assert per_take.max() == cap  # the source's own cap (the tiny takes are longer than 5 frames)
    dense = load_splits(tiny_config(tiny_data, **capped_cfg, **source(second_file, max_frames=1000, frame_stride=1))
                        .data, 0).train
    sparse = load_splits(tiny_config(tiny_data, **capped_cfg, **source(second_file, max_frames=1000, frame_stride=4))
                         .data, 0).train
    frames = {k: np.unique(np.diff(np.unique(t.frame[np.char.startswith(t.subject.astype(str), "data_3d_other:")])))
              for k, t in (("dense", dense), ("sparse", sparse))}
    assert list(frames["dense"]) == [1] and list(frames["sparse"]) == [4]  # the source's own stride


@pytest.mark.parametrize("kw, match", [({"weight": 0}, "weight"), ({"weight": -1}, "weight"),
                                       ({"max_frames": 0}, "max_frames"), ({"max_frames": 2.5}, "max_frames"),
                                       ({"frame_stride": 0}, "frame_stride")])
def test_bad_sources_are_refused(tiny_data, second_file, kw, match):
    with pytest.raises(ConfigError, match=match):
        tiny_config(tiny_data, **source(second_file, **kw))


def test_a_missing_source_file_is_named(tiny_data, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        load_splits(tiny_config(tiny_data, **source(tmp_path / "nowhere.npz")).data, 0)


def test_two_sources_with_one_prefix_are_refused(tiny_data, second_file):
    twice = {"data.extra_train": f"[{{path: '{second_file}', subjects: [syn_a]}}, {{path: '{second_file}', "
                                 "subjects: [syn_b]}]"}
    with pytest.raises(ConfigError, match="distinct `name`"):
        tiny_config(tiny_data, **twice)


def test_augmentation_draws_bodies_from_a_bank_file_and_names_a_missing_one(tiny_data, tmp_path):
    import json

    from bvh_files import cmu_mb_offsets, skeleton_bank
    from diffpose_viz.augmentation import BODY_GROUPS, LIMB_GROUPS, group_lengths
    from diffpose_viz.datasets.skeleton_bank import read_skeleton_bank
    from diffpose_viz.inputs import augment_split
    from diffpose_viz.skeleton import H36M17

    bank_file = tmp_path / "skeletons.json"
    bank_file.write_text(json.dumps(skeleton_bank({12: cmu_mb_offsets(thigh=1.1), 55: cmu_mb_offsets(thigh=0.8)})))
    bank = {"augmentation.body.enabled": "true", "augmentation.body.bank": str(bank_file),
            "augmentation.body.bank_fraction": 1.0, "augmentation.body.bank_exclude": "[55]"}
    cfg = tiny_config(tiny_data, **bank)
    rows = load_splits(cfg.data, 0).train
    out = augment_split(rows, cfg, 0).poses
    limbs = [BODY_GROUPS.index(g) for g in LIMB_GROUPS]
    person = group_lengths(read_skeleton_bank(bank_file, [55]).bones_m)[0, limbs]  # 55 is excluded: only 12 is drawn
    np.testing.assert_allclose(group_lengths(H36M17.bone_lengths(out.pose3d.astype(np.float64)))[:, limbs],
                               np.broadcast_to(person, (len(rows), 4)), rtol=1e-5)
    with pytest.raises(FileNotFoundError, match=r"nowhere.json does not exist.*augmentation.body.bank"):
        missing = {**bank, "augmentation.body.bank": str(tmp_path / "nowhere.json")}
        augment_split(rows, tiny_config(tiny_data, **missing), 0)
