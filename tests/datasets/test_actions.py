"""Action names: Human3.6M normalisation and generic groups."""
from __future__ import annotations

import pytest

from diffpose_viz.datasets import H36M_ACTIONS, action_group, group_actions, normalize_h36m_action


# ----------------------------------------------------------------------------- actions
def test_h36m_action_normalisation():
    assert len(H36M_ACTIONS) == 15
    assert normalize_h36m_action("TakingPhoto") == "Photo"
    assert normalize_h36m_action("TakingPhoto 1") == "Photo"
    assert normalize_h36m_action("WalkingDog 1") == "WalkDog"
    assert normalize_h36m_action("Walking 1") == "Walking"
    assert normalize_h36m_action("WalkTogether") == "WalkTogether"
    assert normalize_h36m_action("SittingDown 2") == "SittingDown"
    with pytest.raises(KeyError, match="Dancing"):
        normalize_h36m_action("Dancing")


def test_generic_groups():
    assert action_group("walk 003.2") == "walk"
    assert action_group("walk-turn-left 001") == "walk-turn-left"
    groups = group_actions(["walk 001", "run 002", "walk 003.2"])
    assert groups == {"walk": ["walk 001", "walk 003.2"], "run": ["run 002"]}
    assert group_actions(["Walking 1", "Walking", "TakingPhoto"], h36m=True) == {
        "Walking": ["Walking 1", "Walking"], "Photo": ["TakingPhoto"]}
