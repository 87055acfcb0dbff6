"""Every script in scripts/ that a user runs has the command line's manners (diffpose_viz.entry): bad input is one
line on stderr naming the file, exit code 2, never a traceback. Each script runs in this process (runpy, as
`python scripts/NAME.py ...` would) on a garbage file where it expects data, a config or a results file."""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

from tiny_runs import REPO

SCRIPTS = sorted(p.name for p in (REPO / "scripts").glob("*.py"))


def run_script_in_process(capsys, name: str, *args) -> tuple[int, str]:
    """(exit code, stdout + stderr) of `python scripts/NAME ARGS`."""
    argv = sys.argv
    sys.argv = [str(REPO / "scripts" / name), *map(str, args)]
    try:
        runpy.run_path(str(REPO / "scripts" / name), run_name="__main__")
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        sys.argv = argv
    out = capsys.readouterr()
    return code, out.out + out.err


def _garbage(tmp_path: Path) -> dict[str, Path]:
    files = {"npz": tmp_path / "garbage.npz", "yaml": tmp_path / "garbage.yaml", "nc": tmp_path / "garbage.nc"}
    files["npz"].write_bytes(b"this is not a zip archive")
    files["yaml"].write_text("method: [unclosed\n")
    files["nc"].write_bytes(b"CDF\x01 but truncated")
    return files


#: Per script: its arguments with a bad input (`{npz}`, `{yaml}`, `{nc}`: garbage files; `{tmp}`: a folder).
BAD_INPUT = {
    "ab_train_steps.py": ["--row", "lifter", "--a", "train.lr=-1", "--pairs", "1", "--warmup", "0"],
    "bench_lab.py": ["--results", "{nc}"],
    "bench_timeline.py": ["--work", "{npz}"],
    "benchmark_methods.py": ["--config", "{yaml}", "--out", "{tmp}/bench", "--dry-run"],
    "body_stats.py": ["{npz}"],
    "body_size.py": ["bad=" + "{nc}"],
    "compare_runs.py": ["{tmp}", "{tmp}/other"],
    "detections_to_file.py": ["{yaml}", "--out", "{tmp}/det.npz"],
    "detector_stats.py": ["--bandai", "{npz}"],
    "joint_conventions.py": ["bad=" + "{nc}"],
    "ood_report.py": ["--in-domain", "{nc}"],
    "refit_ood.py": ["--rows", "{npz}"],
    "run_demo.py": ["--config", "{yaml}", "--out", "{tmp}/res", "--runs", "{tmp}/runs"],
    "seed_table.py": ["--config", "{yaml}", "--out", "{tmp}/seeds", "--rows", "phi_ST (lifter)", "--seeds", "0"],
    "swap_bodies.py": ["--bandai", "{npz}", "--out", "{tmp}/swapped"],
    "unseen_views.py": ["--bandai", "{npz}", "--out", "{tmp}/views.npz"],
    "validation_bodies.py": ["--bandai", "{npz}", "--out", "{tmp}/vb.npz"],
    "validation_study.py": ["--config", "{yaml}", "--out", "{tmp}/study", "--only", "lifter"],
    "verify_released.py": ["--data", "{npz}", "--diffpose", "{tmp}"],
}


def test_every_script_has_a_bad_input_case():
    assert set(BAD_INPUT) == set(SCRIPTS), "add the new script's bad input to BAD_INPUT"


@pytest.mark.parametrize("name", SCRIPTS)
def test_bad_input_is_one_line_without_a_traceback(name, tmp_path, capsys, one_thread):
    files = _garbage(tmp_path)
    args = [a.format(tmp=tmp_path, **files) for a in BAD_INPUT[name]]
    code, text = run_script_in_process(capsys, name, *args)
    assert code == 2, f"exit {code}:\n{text}"
    assert "Traceback" not in text, text
    errors = [line for line in text.splitlines() if ": error: " in line]
    assert len(errors) == 1, text
    named = [str(p) for p in files.values()] + ["train.lr"]
    assert any(n in errors[0] for n in named), errors[0]
