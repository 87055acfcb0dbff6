"""CSV and JSON exports: the documented columns, the values, the source recorded."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from diffpose_viz.exports import export_sequence
from diffpose_viz.exports.tables import JOINTS
from timeline_fixtures import calibrated_sequence


@pytest.fixture
def seq(tmp_path):
    return calibrated_sequence(tmp_path)



def test_csv_has_the_documented_columns(seq, tmp_path):
    out = export_sequence("csv", seq, tmp_path / "a.csv").path
    table = pd.read_csv(out)
    expected = (["frame", "time_s", "subject", "action", "camera"]
                + [f"pred_{j}_{a}_m" for j in JOINTS for a in "xyz"] + [f"spread_{j}_mm" for j in JOINTS]
                + [f"radius_{j}_mm" for j in JOINTS] + ["ood_score", "ood_flag", "mpjpe_mm", "mean_confidence"])
    assert list(table.columns) == expected and len(table) == 12
    np.testing.assert_array_equal(table["frame"], np.arange(12))
    np.testing.assert_allclose(table["pred_left_wrist_y_m"], seq.pred[:, 13, 1], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(table["mpjpe_mm"], seq.mpjpe_mm, rtol=1e-5)
    assert table["ood_flag"].tolist() == seq.ood_flag.astype(int).tolist()


def test_json_records_its_source(seq, tmp_path):
    doc = json.loads(export_sequence("json", seq, tmp_path / "a.json").path.read_text())
    meta = doc["metadata"]
    assert meta["model"] == "diffpose" and meta["checkpoint"] == "runs/x/best.pt"
    assert meta["checkpoint_fingerprint"] == "abc123" and len(meta["source_sha256"]) == 64
    assert len(doc["frames"]) == 12 and doc["joint_names"] == list(JOINTS)
    first = doc["frames"][0]
    assert np.array(first["hypotheses"]).shape == (4, 17, 3) and first["radius_mm"][5] == 35.0
    np.testing.assert_allclose(first["pred"], seq.pred[0], atol=1e-6)
