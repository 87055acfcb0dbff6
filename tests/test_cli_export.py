"""`diffpose-viz export` and `wild --open` through `cli.main`: files written, and every bad input one line
naming the file (results without order, a video of another length, a missing, empty or corrupt video,
an existing output), never a traceback."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from diffpose_viz.cli import build_parser
from test_cli_bad_input import run_cli
from timeline_fixtures import sequence_results, sports2d_demo_clip, wild_run_folder


def test_export_a_wild_run_folder(tmp_path, capsys):
    pytest.importorskip("av")
    run = wild_run_folder(tmp_path / "run", n_frames=24, n_rows=12)
    code, text = run_cli(capsys, "export", "bvh", run, "--out", tmp_path / "take.bvh")
    assert code == 0, text
    assert "clip.mp4: 24 frames, the results cover frames 0-11" in text  # the frame-count note, one line
    assert "12 frames of the mean pose at 24 fps" in text and (tmp_path / "take.bvh").exists()
    code, text = run_cli(capsys, "export", "bvh", run, "--out", tmp_path / "take.bvh")
    assert code == 1 and text.count("\n") == 2 and "take.bvh: already exists" in text and "Traceback" not in text
    code, text = run_cli(capsys, "export", "bvh", run, "--out", tmp_path / "take.bvh", "--force", "--hypothesis", 2)
    assert code == 0 and "hypothesis 2" in text
    code, text = run_cli(capsys, "export", "bvh", run, "--out", tmp_path / "h.bvh", "--hypothesis", 9)
    assert code == 1 and "hypotheses 0..3" in text


def test_export_bad_inputs_are_one_line(tmp_path, capsys):
    pytest.importorskip("av")
    run = wild_run_folder(tmp_path / "run", n_frames=24, n_rows=12)
    (run / "clip.mp4").unlink()  # the video moved away: a note, the export goes on without it
    code, text = run_cli(capsys, "export", "csv", run, "--out", tmp_path / "a.csv")
    assert code == 0 and "clip.mp4: video not found" in text
    assert len(pd.read_csv(tmp_path / "a.csv")) == 12
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00garbage" * 64)
    code, text = run_cli(capsys, "export", "mp4", run, "--out", tmp_path / "b.mp4", "--video", bad)
    assert code == 1 and "bad.mp4" in text and "Traceback" not in text and len(text.strip().splitlines()) == 1
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    code, text = run_cli(capsys, "export", "mp4", run, "--out", tmp_path / "b.mp4", "--video", empty)
    assert code == 1 and "empty.mp4" in text and "empty file" in text
    assert not (tmp_path / "b.mp4").exists()
    code, text = run_cli(capsys, "export", "csv", tmp_path, "--out", tmp_path / "c.csv")
    assert code == 1 and "without results.nc" in text
    code, text = run_cli(capsys, "export", "csv", tmp_path / "none.nc", "--out", tmp_path / "c.csv")
    assert code == 1 and "none.nc: does not exist" in text
    code, text = run_cli(capsys, "export", "csv", run, "--out", tmp_path / "c.csv", "--sequence", "a/b")
    assert code == 1 and "SUBJECT/ACTION/CAMERA" in text


def test_results_without_sequence_order_still_export(results_ds, tmp_path, capsys):
    """The fixture repeats frames within a sequence: named in one line, rows exported in file order."""
    path = tmp_path / "unordered.nc"
    results_ds.to_netcdf(path)
    code, text = run_cli(capsys, "export", "json", path, "--out", tmp_path / "u.json", "--sequence", 0)
    assert code == 0 and "unordered.nc: sequence" in text and "no sequence order" in text


def test_wild_open_is_an_option():
    args = build_parser().parse_args(["wild", "clip.mp4", "--open", "--port", "8600"])
    assert args.open and args.port == 8600
    args = build_parser().parse_args(["dashboard", "--page", "Timeline"])
    assert args.page == "Timeline"


def test_a_sample_run_exports_at_the_given_fps(tmp_path, capsys):
    ds = sequence_results(6, frames=np.arange(6))
    ds.attrs["split"] = "wild"
    ds.to_netcdf(tmp_path / "s.nc")
    code, text = run_cli(capsys, "export", "bvh", tmp_path / "s.nc", "--out", tmp_path / "s.bvh", "--fps", "50")
    assert code == 0 and "at 50 fps" in text
    assert "Frame Time: 0.02000000" in (tmp_path / "s.bvh").read_text()


def test_wild_open_starts_the_dashboard_on_its_timeline(tmp_path, smoke_run):
    """`wild CLIP --checkpoint ... --open`: detection and lifting, then the dashboard on that run's Timeline
    (a real streamlit server; the page itself is checked in a real browser when chromium is there)."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    clip = sports2d_demo_clip(tmp_path / "media")
    repo = Path(__file__).resolve().parents[1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(repo), "HOME": str(tmp_path), "BROWSER": "true"}
    cmd = [sys.executable, "-m", "diffpose_viz.cli", "wild", str(clip), "--checkpoint",
           str(smoke_run[1] / "diffpose" / "best.pt"), "--out", str(tmp_path / "run"), "--max-frames", "6",
           "--hypotheses", "3", "--open", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # its own group: the streamlit child goes down with it
    lines: list[str] = []
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("opening "):
                break
        assert lines and lines[-1].strip() == f"opening http://localhost:{port}/Timeline", "".join(lines)[-2000:]
        assert (tmp_path / "run" / "results.nc").exists()
        chromium = Path(os.environ.get("DIFFPOSE_VIZ_CHROMIUM", "/usr/bin/chromium"))
        if chromium.exists() and __import__("importlib").util.find_spec("playwright"):
            from playwright.sync_api import sync_playwright

            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=str(chromium), headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{port}/Timeline")
                page.wait_for_function("() => { const s = document.querySelector('.st-key-tl_seq input');"
                                       " return s && s.value.startsWith('wild /') }", timeout=90_000)
                assert page.locator("h1").first.inner_text() == "Timeline"
                browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
