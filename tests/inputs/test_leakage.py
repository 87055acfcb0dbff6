"""Leakage guards (`diffpose_viz.inputs.leakage`): rows and files compared by content, not by name."""
from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from diffpose_viz.errors import LeakageError
from diffpose_viz.inputs import load_splits, load_test_poses
from diffpose_viz.inputs.leakage import check_training_sources, same_file, shared_rows
from tiny_runs import tiny_config


def test_shared_rows_finds_test_rows_under_another_name(tiny_data):
    data = tiny_config(tiny_data).data
    test = load_test_poses(data)
    renamed = replace(test, subject=test.subject.astype(object) + "_renamed")
    assert shared_rows(renamed, test) == {"syn_t_renamed": len(test)}
    assert shared_rows(load_splits(data, 0).train, test) == {}  # real data: no false alarm


def test_same_file_by_content(tiny_data, tmp_path):
    copy = tmp_path / "copy.npz"
    shutil.copy(tiny_data, copy)
    assert same_file(copy, tiny_data) and same_file(tiny_data, tiny_data)
    other = tmp_path / "other.npz"
    other.write_bytes(copy.read_bytes()[:-1] + b"x")
    assert not same_file(other, tiny_data)


def test_training_sources(tiny_data, caplog):
    data = tiny_config(tiny_data).data
    splits = load_splits(data, 0)
    check_training_sources(data, splits.train)  # the shipped split: fine
    test = load_test_poses(data)
    from diffpose_viz.datasets.poses import join_pose_sets

    with pytest.raises(LeakageError, match="syn_t .*--allow-leakage"):
        check_training_sources(data, join_pose_sets([splits.train, test]))
    check_training_sources(data, join_pose_sets([splits.train, test]), allow=True)
    assert "allowed by --allow-leakage" in caplog.text
