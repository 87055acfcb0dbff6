"""The bank of real bodies (datasets/skeleton_bank.py), on a skeletons.json the test writes."""
from __future__ import annotations

import json

import numpy as np
import pytest

from bvh_files import CMU_UNIT_M, cmu_mb_offsets, skeleton_bank
from diffpose_viz.datasets.skeleton_bank import SAME_BODY_M, read_skeleton_bank
from diffpose_viz.errors import DataError
from diffpose_viz.skeleton import H36M17

BONE = {H36M17.joint_names[c]: b for b, (_, c) in enumerate(H36M17.bones)}  # bone index by its child joint


def write(tmp_path, doc, name="skeletons.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path


def test_bone_lengths_follow_the_cmu_rig_and_units(tmp_path):
    bank = read_skeleton_bank(write(tmp_path, skeleton_bank({12: cmu_mb_offsets(thigh=1.2, upper_arm=0.9)})))
    (bones,) = bank.bones_m
    assert bank.people == (12,)
    assert bones[BONE["left_knee"]] == pytest.approx(7.0 * 1.2 * CMU_UNIT_M)  # hip joint -> knee
    assert bones[BONE["right_ankle"]] == pytest.approx(7.5 * CMU_UNIT_M)
    assert bones[BONE["left_elbow"]] == pytest.approx(5.2 * 0.9 * CMU_UNIT_M)
    assert bones[BONE["right_wrist"]] == pytest.approx(3.3 * CMU_UNIT_M)
    assert bones[BONE["right_hip"]] == pytest.approx(1.6 * CMU_UNIT_M)  # pelvis = mid of the hip joints
    assert bones[BONE["thorax"]] == pytest.approx(2.3 * CMU_UNIT_M)  # Spine -> Neck (Neck sits on Spine1)


def test_excluded_people_and_their_duplicates_are_left_out(tmp_path):
    same = cmu_mb_offsets(shin=1.1)
    near = cmu_mb_offsets(shin=1.1 + 0.5 * SAME_BODY_M / (7.5 * CMU_UNIT_M))  # under SAME_BODY_M: one person
    people = {12: cmu_mb_offsets(), 93: same, 103: near, 40: cmu_mb_offsets(thigh=0.9), 41: cmu_mb_offsets(thigh=0.9),
              50: cmu_mb_offsets(thigh=1.05)}
    bank = read_skeleton_bank(write(tmp_path, skeleton_bank(people)), exclude=[93])
    assert bank.people == (12, 40, 50)  # 103 is 93's body; 41 repeats 40 (the lower number stays)
    assert bank.excluded == (93, 103) and bank.repeats == (41,)
    assert bank.bones_m.shape == (3, 16)


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d["subjects"].update({"7": d["subjects"]["12"]}), "CMU subject 07 is reserved"),
    (lambda d: d.update(names=d["names"][:-1]), "key 'names'"),
    (lambda d: d.update(unit_to_metres=2.54), "key 'unit_to_metres'"),
    (lambda d: d["subjects"]["12"].update(offsets=[[0, 0, 0]] * 37), "key 'subjects/12/offsets'.*38 x 3"),
    (lambda d: d["subjects"]["12"].update(offsets=[[float("nan"), 0, 0]] * 38), "key 'subjects/12/offsets'"),
    (lambda d: d["subjects"].update({"twelve": d["subjects"]["12"]}), "key 'subjects/twelve'"),
    (lambda d: d.pop("subjects"), "not a skeletons file"),
])
def test_bad_files_are_refused_naming_the_key(tmp_path, mutate, match):
    doc = skeleton_bank({12: cmu_mb_offsets()})
    mutate(doc)
    path = write(tmp_path, doc)
    with pytest.raises(DataError, match=match) as err:
        read_skeleton_bank(path)
    assert str(path) in str(err.value)


def test_not_json_everyone_excluded_and_missing_file(tmp_path):
    with pytest.raises(DataError, match="not a JSON file"):
        read_skeleton_bank(write(tmp_path, "{names: ", "broken.json"))
    with pytest.raises(DataError, match="every person is excluded"):
        read_skeleton_bank(write(tmp_path, skeleton_bank({12: cmu_mb_offsets()})), exclude=[12])
    with pytest.raises(FileNotFoundError, match=r"missing.json does not exist.*augmentation.body.bank"):
        read_skeleton_bank(tmp_path / "missing.json")


def test_the_shared_bank_when_present():
    """The real file: 96 subjects, 91 distinct per its README (this reader finds more repeats), none reserved."""
    from pathlib import Path
    path = Path("../shared/data/cmu-skeletons/skeletons.json")
    if not path.exists():
        pytest.skip("../shared/data/cmu-skeletons is not on this machine")
    bank = read_skeleton_bank(path, exclude=[55, 63, 87, 93, 104, 131, 135])
    assert min(bank.people) >= 11 and not set(bank.people) & {55, 63, 64, 87, 93, 103, 104, 131, 135}
    leg = bank.bones_m[:, BONE["left_knee"]] + bank.bones_m[:, BONE["left_ankle"]]
    assert 0.7 < np.median(leg) < 0.95  # adults, metres
