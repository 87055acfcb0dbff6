"""scripts/benchmark_methods.py plans leave-one-source-out rows (nothing is trained here)."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from diffpose_viz.methods import load_config

REPO = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("benchmark_methods", REPO / "scripts" / "benchmark_methods.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_leave_one_source_out_rows(tmp_path):
    bm = _script()
    sources = [{"path": "a.npz", "subjects": ["s1"], "name": "a"}, {"path": "b.npz", "subjects": ["s2"], "name": "b"}]
    cfg = load_config(REPO / "configs" / "smoke.yaml", [f"data.extra_train={json.dumps(sources)}"])
    rows = [r for r in bm.plan(tmp_path, False, ["detector+occlusion"], cfg, loso=True) if r.held_out]
    assert [(r.method, r.variant) for r in rows] == [("lifter", "without source a"), ("diffpose", "without source a"),
                                                     ("lifter", "without source b"), ("diffpose", "without source b")]
    kept = json.loads(next(o for o in rows[0].train_overrides if o.startswith("data.extra_train=")).split("=", 1)[1])
    assert [s["name"] for s in kept] == ["b"] and rows[0].held_out[1] == ["s1"]
    assert any(str(rows[0].run_dir / "best.pt") in o for o in rows[1].train_overrides)  # DiffPose on its own lifter


def test_methods_restricts_the_main_rows_and_keeps_stage1(tmp_path):
    bm = _script()
    cfg = load_config(REPO / "configs" / "smoke.yaml")
    rows = bm.plan(tmp_path, False, ["detector+occlusion"], cfg, methods=["diffpose"])
    assert [(r.method, r.variant) for r in rows] == [("lifter", "main"), ("diffpose", "main")]
    assert any(str(rows[0].run_dir / "best.pt") in o for o in rows[1].train_overrides)
    every = {r.method for r in bm.plan(tmp_path, False, ["detector+occlusion"], cfg)}
    assert {"lifter", "diffpose"} < every and len(every) > 2  # without `methods`: every applicable method


def test_named_sources_only_loso_and_people_sets(tmp_path):
    bm = _script()
    sources = [{"path": "a.npz", "subjects": ["s1"], "name": "a"}, {"path": "b.npz", "subjects": ["s2"], "name": "b"}]
    cfg = load_config(REPO / "configs" / "smoke.yaml", [f"data.extra_train={json.dumps(sources)}"])
    rows = bm.plan(tmp_path, False, ["detector+occlusion"], cfg, loso=["b"], methods=["diffpose"], main_rows=False)
    assert [(r.method, r.variant) for r in rows] == [("lifter", "without source b"), ("diffpose", "without source b")]
    people = bm.parse_people(["HDM05 mm=data/x.npz:mm", "two=y.npz:p1,p2"])
    assert people["HDM05 mm"][1] == ["mm"] and people["two"][1] == ["p1", "p2"]
    row = rows[0]
    row.metrics = {"P1_mm_action_wise": 50.0, "P2_mm_action_wise": 40.0,
                   "uncertainty": {"ood": {"radius_from": "normalised", "mean_radius_mm": 80.0,
                                           "coverage_conditional": {"normalised": {"90": 0.9}}}}}
    row.extra_metrics["HDM05 mm"] = {"P1_mm_action_wise": 75.0, "P2_mm_action_wise": 55.0}
    row.extra_auroc["HDM05 mm"] = 0.7
    table = bm.people_table(rows)
    assert "| lifter | without source b | in-domain test | 50.0 | 40.0 | 1.00 | 90 % (normalised) | 80.0 |" in table
    assert "| HDM05 mm | 75.0 | 55.0 | 1.50 |" in table and table.rstrip().endswith("0.70 |")
