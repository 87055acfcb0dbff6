"""The dashboard in a real browser: `streamlit run` on 127.0.0.1, driven by Playwright with Debian's chromium.

Screenshots go to tests/_artifacts/ (look at them: the person must stand, plots must not be blank).
Never runs `playwright install`: it uses /usr/bin/chromium and skips when that or playwright is absent.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "tests" / "_artifacts"
CHROMIUM = os.environ.get("DIFFPOSE_VIZ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PAGES = ["", "Trajectory_explorer", "GMM_components", "Failure_cases", "Per_joint_errors", "Model_comparison",
         "Your_own_input"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(results_dir, tmp_path_factory):
    # DIFFPOSE_VIZ_E2E_RESULTS=results/demo runs the browser test (and its screenshots) on real results.
    chosen = os.environ.get("DIFFPOSE_VIZ_E2E_RESULTS") or str(results_dir)
    yield from _dashboard_server(chosen, tmp_path_factory.mktemp("home"))


def _dashboard_server(results: str, home: Path):
    """`streamlit run` of the dashboard on `results`, yielding its URL until the test module ends."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no browser at {CHROMIUM} (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
    port = _free_port()
    # HOME elsewhere: only the project's .streamlit/config.toml applies (not the user's ~/.streamlit)
    env = {**os.environ, "DIFFPOSE_VIZ_RESULTS": results, "PYTHONPATH": str(REPO), "HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "dashboard" / "Overview.py"), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("streamlit did not become healthy within 60 s:\n" + proc.stdout.read().decode()[-3000:])
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        yield ctx.new_page()
        browser.close()


def _open(page, server, name: str) -> None:
    page.goto(f"{server}/{name}", wait_until="domcontentloaded")
    page.wait_for_selector('[data-testid="stApp"]', timeout=30_000)
    page.wait_for_selector("h1", timeout=60_000)  # the page's own title: the script has started drawing
    # wait for the script to finish: the running indicator disappears
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)


def _no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator(
        '[data-testid="stException"]').first.inner_text()


@pytest.mark.parametrize("name", PAGES)
def test_page_renders(page, server, name):
    ARTIFACTS.mkdir(exist_ok=True)
    _open(page, server, name)
    _check_page_drawn(page, name)
    page.screenshot(path=str(ARTIFACTS / f"page_{name or 'home'}.png"))
    if name in ("GMM_components", "Failure_cases"):  # the figure alone, for docs/screenshots
        page.locator('[data-testid="stPlotlyChart"]').first.screenshot(path=str(ARTIFACTS / f"figure_{name}.png"))


def _check_page_drawn(page, name: str) -> None:
    """No exception; the overview's table, the upload box, or (other pages) a plotly chart that drew traces."""
    _no_exception(page)
    if name == "":
        page.wait_for_selector('[data-testid="stDataFrame"]', timeout=30_000)
    if name == "Your_own_input":
        page.wait_for_selector('.st-key-own_file [data-testid="stFileUploader"]', timeout=30_000)
    if name not in ("", "Your_own_input"):
        page.wait_for_selector('[data-testid="stPlotlyChart"] .js-plotly-plot', timeout=60_000)
        # plotly drew something: 3D scenes have a canvas, 2D plots have SVG traces
        page.wait_for_function(
            "() => [...document.querySelectorAll('.js-plotly-plot')].some(g => g._fullData && g._fullData.length)",
            timeout=30_000)
        page.wait_for_timeout(1500)  # let WebGL paint before the screenshot


@pytest.fixture(scope="module")
def imported_results(tiny_data, tmp_path_factory) -> Path:  # noqa: F811
    """Results of checkpoints imported from files in the released layouts (the released DiffPose frame pair:
    `official`, and its GCNpose alone as a lifter), evaluated on the tiny synthetic set."""
    from diffpose_viz.evaluation.evaluate import EvalData, evaluate
    from diffpose_viz.inference import SamplingSetting
    from released.released_files import import_frame_pair

    d = tmp_path_factory.mktemp("imported_e2e")
    official, lifter, _ = import_frame_pair(d, tiny_data)
    folder = d / "results"
    for name, ckpt in (("official", official), ("lifter", lifter)):
        evaluate(ckpt, folder / f"{name}.nc", data=EvalData(max_samples=12), progress=False,
                 sampling=SamplingSetting(record=name == "official"))
    return folder


@pytest.fixture(scope="module")
def imported_server(imported_results, tmp_path_factory):
    yield from _dashboard_server(str(imported_results), tmp_path_factory.mktemp("home_imported"))


@pytest.mark.parametrize("name", [*PAGES, "Uncertainty", "What_if_lab", "Timeline"])
def test_page_renders_an_imported_released_checkpoint(page, imported_server, name):
    """Every page in the browser on the results of an imported released-format checkpoint (issue 29)."""
    _open(page, imported_server, name)
    if name == "GMM_components":  # the released procedure has no H_K: the page says so instead of drawing
        _no_exception(page)
        page.get_by_text("stores the fitted H_K").wait_for(timeout=30_000)
        return
    _check_page_drawn(page, name)


def test_trajectory_slider_and_upright_pose(page, server):
    _open(page, server, "Trajectory_explorer")
    page.wait_for_selector('[data-testid="stPlotlyChart"] .js-plotly-plot', timeout=60_000)
    # The person stands: head above pelvis in plot z, read from the rendered figure.
    head_above = page.evaluate("""() => {
        const gd = document.querySelector('.js-plotly-plot');
        const joints = gd._fullData[4];              // mean x0 estimate, one marker per joint
        return joints.z[10] > joints.z[0] + 0.3;      // head_top vs pelvis
    }""")
    assert head_above
    # Move the Streamlit slider (hypotheses shown) with the keyboard; the figure redraws with fewer poses.
    thumb_value = page.locator('[data-testid="stSlider"] [data-testid="stSliderThumbValue"]').first
    before = int(thumb_value.inner_text().strip())
    assert before > 2, "needs results with at least 3 hypotheses"
    slider = page.locator('[data-testid="stSlider"] input[type="range"]').first
    slider.focus()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    after = before - 2
    page.wait_for_function("() => document.querySelector('[data-testid=\"stSliderThumbValue\"]')"
                           f".innerText.trim() === '{after}'", timeout=10_000)
    # h_k bones of all shown hypotheses are one trace: hypotheses x 16 bones x 3 vertices
    page.wait_for_function("() => document.querySelector('.js-plotly-plot')._fullData[1].x.length === "
                           f"{after * 48}", timeout=30_000)
    _no_exception(page)
    assert page.evaluate("() => document.querySelector('.js-plotly-plot')._fullData.length") == 8
    # Drag plotly's own step slider from step 0 to the last step.
    page.locator(".slider-rail-rect").first.scroll_into_view_if_needed()
    grip = page.locator(".slider-grip-rect").first.bounding_box()
    rail = page.locator(".slider-rail-rect").first.bounding_box()
    page.mouse.move(grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2)
    page.mouse.down()
    page.mouse.move(rail["x"] + rail["width"] - 1, grip["y"] + grip["height"] / 2, steps=8)
    page.mouse.up()
    page.wait_for_timeout(2000)
    active = page.evaluate("() => document.querySelector('.js-plotly-plot')._fullLayout.sliders[0].active")
    assert active > 0
    page.locator('[data-testid="stPlotlyChart"]').first.screenshot(path=str(ARTIFACTS / "trajectory_last_step.png"))


def test_own_input_upload_in_browser(page, server, results_ds, tmp_path):
    import numpy as np
    path = tmp_path / "keypoints.npz"
    np.savez(path, keypoints=results_ds["input_2d"].values[:2])
    _open(page, server, "Your_own_input")
    page.locator('.st-key-own_file [data-testid="stFileUploader"] input[type="file"]').set_input_files(str(path))
    page.wait_for_selector('[data-testid="stPlotlyChart"] .js-plotly-plot', timeout=60_000)
    page.wait_for_timeout(1000)
    _no_exception(page)
    assert "2 frame(s)" in page.locator('[data-testid="stAlertContentSuccess"]').first.inner_text()
    page.screenshot(path=str(ARTIFACTS / "page_Your_own_input_uploaded.png"))


@pytest.fixture(scope="module")
def synthetic_lab_results(tmp_path_factory) -> Path:
    """A real checkpoint and results file on the tiny synthetic dataset (tests/tiny_runs.py): the lab runs a
    real model, and its screenshot shows no licensed motion capture."""
    from tiny_runs import make_tiny_dataset, tiny_config

    from diffpose_viz.evaluation.evaluate import evaluate
    from diffpose_viz.inference import SamplingSetting
    from diffpose_viz.training.trainer import train

    d = tmp_path_factory.mktemp("lab_synthetic")
    data = make_tiny_dataset(d / "data_3d_tiny.npz")
    run = train(tiny_config(data, method="diffpose_joint", **{"model.hidden": 16, "diffusion.n_hypotheses": 5}),
                d / "run", progress=False)
    evaluate(run.best, d / "lab" / "diffpose.nc", sampling=SamplingSetting(record=True), progress=False, calibrate=False)
    return d / "lab"


def test_lab_hide_joint_in_browser(page, server, synthetic_lab_results):
    """Page 8 on a real (tiny, synthetic) model: hide a joint, re-sample, the page reports a larger spread."""
    ARTIFACTS.mkdir(exist_ok=True)
    _open(page, server, "What_if_lab")
    box = page.locator(".st-key-_results_dir_input input")
    box.fill(str(synthetic_lab_results))
    box.press("Enter")
    page.wait_for_selector(".st-key-lab_hide", timeout=60_000)
    page.locator(".st-key-lab_hide input").click()
    page.keyboard.type("left_wrist")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    metric = page.locator('[data-testid="stMetric"]').filter(has_text="spread of left_wrist")
    metric.wait_for(timeout=60_000)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
    _no_exception(page)
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    delta = metric.locator('[data-testid="stMetricDelta"]').inner_text()
    assert delta.strip().startswith("+"), delta
    page.wait_for_timeout(1500)
    page.screenshot(path=str(ARTIFACTS / "page_What_if_lab.png"), full_page=True)


def test_uncertainty_screenshot(page, server):
    if not (REPO / "dashboard" / "pages" / "7_Uncertainty.py").exists():
        pytest.skip("no page 7_Uncertainty.py")
    ARTIFACTS.mkdir(exist_ok=True)
    _open(page, server, "Uncertainty")
    _no_exception(page)
    page.wait_for_selector('[data-testid="stPlotlyChart"]', timeout=60_000)
    # .streamlit/config.toml (toolbarMode minimal): no "Deploy" button on a local analysis tool
    assert page.locator('[data-testid="stAppDeployButton"]').count() == 0
    assert page.get_by_text("Deploy", exact=True).count() == 0
    page.wait_for_timeout(1500)
    page.screenshot(path=str(ARTIFACTS / "page_Uncertainty.png"))


def _plots(page) -> list:
    """The Timeline's plotly charts as JSON-able summaries: 2D joints x, the 2D image, 3D trace names and A's mean."""
    return page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(g => ({
        names: (g._fullData || []).map(t => t.name),
        x: JSON.stringify(((g._fullData || [])[1] || {}).x || null),
        mean: JSON.stringify(((g._fullData || []).find(t => (t.name || '').startsWith('A mean')) || {}).x || null),
        image: ((g._fullLayout || {}).images || []).map(i => i.source.length + ':' + i.source.slice(-40)).join()}))""")


def _choose(page, key: str, option: str) -> None:
    """Pick `option` in the selectbox with widget key `key` (a combobox: click its input, then the option)."""
    page.locator(f".st-key-{key} input").click()
    page.get_by_role("option", name=option).click()


def _timeline_on(page, server, folder: Path, sequence_text: str, drawn_js: str) -> None:
    """The Timeline on results folder `folder`, waiting until its sequence (`sequence_text`) is selected and
    `drawn_js` (a predicate on the charts `g`) says its figures are the ones on screen."""
    _open(page, server, "Timeline")
    box = page.locator(".st-key-_results_dir_input input")
    box.fill(str(folder))
    box.press("Enter")
    page.wait_for_function("(t) => { const s = document.querySelector('.st-key-tl_seq input');"
                           " return s && s.value.includes(t) }", arg=sequence_text, timeout=60_000)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 4 && "
                           "[...document.querySelectorAll('.js-plotly-plot')].every(g => g._fullData)", timeout=60_000)
    page.wait_for_function(f"() => {{ const g = [...document.querySelectorAll('.js-plotly-plot')];"
                           f" return {drawn_js} }}",
                           timeout=60_000)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
    _no_exception(page)


def _step_and_check(page, before: list, image_changes: bool) -> list:
    """Click 'step ▶'; the 2D joints, the 3D mean (and the video frame) change together."""
    page.locator(".st-key-tl_next button").click()
    page.wait_for_function("(b) => { const g = document.querySelectorAll('.js-plotly-plot')[0];"
                           " return g && g._fullData && JSON.stringify(g._fullData[1].x) !== b }", arg=before[0]["x"],
                           timeout=30_000)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
    after = _plots(page)
    assert after[0]["x"] != before[0]["x"] and after[1]["mean"] != before[1]["mean"]
    if image_changes:
        assert after[0]["image"] and after[0]["image"] != before[0]["image"]
    _no_exception(page)
    return after


def _download(page, kind_label: str | None, ext: str, tmp_path: Path) -> Path:
    if kind_label:
        _choose(page, "tl_fmt", kind_label)
        page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
    page.locator(".st-key-tl_export button").click()
    button = page.locator(".st-key-tl_download button").filter(has_text=f".{ext}")
    button.wait_for(timeout=120_000)
    with page.expect_download(timeout=60_000) as info:
        button.click()
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    return target


def test_timeline_on_a_test_sequence(page, server, smoke_run, tmp_path):
    """Issue 30 on real (smoke) results: scrub, A/B against the one-stage model, two export buttons."""
    results = os.environ.get("DIFFPOSE_VIZ_E2E_RESULTS") or str(smoke_run[0])
    if not (Path(results) / "diffpose.nc").exists() or not (Path(results) / "diffpose_joint.nc").exists():
        pytest.skip(f"{results} lacks diffpose.nc / diffpose_joint.nc")
    _timeline_on(page, server, Path(results), "lafan_b",  # the strips of smoke results include the OOD score
                 "g.length >= 3 && (g[2]._fullLayout.annotations || []).some(a => a.text === 'out-of-domain score')")
    before = _plots(page)
    assert any(n.startswith("A hypotheses") for n in before[1]["names"])
    after = _step_and_check(page, before, image_changes=False)
    assert "frame" in page.locator('[data-testid="stMarkdown"]').filter(has_text="(").first.inner_text()
    _choose(page, "tl_b", "diffpose_joint")
    page.wait_for_function("() => { const g = document.querySelectorAll('.js-plotly-plot')[1];"
                           " return g && (g._fullData || []).some(t => (t.name || '').startsWith('B mean')) }",
                           timeout=60_000)
    names = _plots(page)[1]["names"]
    assert any(n.startswith("A mean") for n in names) and "B mean (diffpose_joint)" in names
    _no_exception(page)
    mp4 = _download(page, None, "mp4", tmp_path)
    assert mp4.suffix == ".mp4" and mp4.stat().st_size > 1000
    csv = _download(page, "CSV: poses, radius, scores per frame", "csv", tmp_path)
    assert csv.read_text().startswith("frame,time_s,subject")
    _no_exception(page)
    assert after


@pytest.fixture(scope="module")
def wild_timeline_run(synthetic_lab_results) -> Path:
    """`wild` on the sports2d demo clip (BSD-3) lifted by the synthetic checkpoint: a picture with no licensed
    motion capture in it."""
    pytest.importorskip("av")
    from diffpose_viz.wild.run import run_wild
    from timeline_fixtures import sports2d_demo_clip

    clip = sports2d_demo_clip(ARTIFACTS / "media_timeline")
    out = synthetic_lab_results.parent / "wild"
    res = run_wild(clip, synthetic_lab_results.parent / "run" / "best.pt", out, n_hypotheses=5, max_frames=30,
                   progress=False, overlay=False)
    assert res.results_path is not None
    return out


def test_timeline_on_the_demo_video(page, server, wild_timeline_run):
    """The sports2d clip's `wild` run: the video frame under the 2D, scrubbed together with the 3D."""
    ARTIFACTS.mkdir(exist_ok=True)
    _timeline_on(page, server, wild_timeline_run, "wild /", "g.length && (g[0]._fullLayout.images || []).length > 0")
    before = _plots(page)
    assert before[0]["image"], "the video frame is drawn under the 2D"
    # turn the 3D view (the page's view slider: Streamlit redraws a chart whose data change, so the view is kept
    # by the page, not by plotly); scrubbing keeps it
    from diffpose_viz.figures.timeline import DEFAULT_VIEW, orbit_camera

    page.locator('.st-key-tl_azimuth input[type="range"]').focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expected = orbit_camera(DEFAULT_VIEW[0] + 10, DEFAULT_VIEW[1])["eye"]
    # the 3D chart's camera once it is drawn (Streamlit replaces the chart on a rerun: wait, don't throw)
    eye_js = ("() => { const g = document.querySelectorAll('.js-plotly-plot')[1];"
              " const c = g && g._fullLayout && g._fullLayout.scene && g._fullLayout.scene.camera;"
              " return c ? c.eye : null }")
    # while Streamlit redraws, the chart at index 1 may not have its 3D scene yet: wait, don't throw
    page.wait_for_function(f"() => {{ const g = document.querySelectorAll('.js-plotly-plot')[1];"
                           f" return !!(g && g._fullLayout && g._fullLayout.scene && g._fullLayout.scene.camera"
                           f" && Math.abs(g._fullLayout.scene.camera.eye.x - {expected['x']}) < 1e-6) }}",
                           timeout=30_000)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
    before = _plots(page)
    _step_and_check(page, before, image_changes=True)
    kept = page.wait_for_function(eye_js, timeout=30_000).json_value()
    assert all(abs(kept[k] - expected[k]) < 1e-6 for k in "xyz"), (expected, kept)
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    page.wait_for_timeout(1500)  # let WebGL paint before the screenshot
    page.screenshot(path=str(ARTIFACTS / "page_Timeline.png"))


def test_screenshots_are_kept_for_docs():
    """With DIFFPOSE_VIZ_UPDATE_SCREENSHOTS=1, copy the best views to docs/screenshots (small PNGs)."""
    wanted = {"trajectory_last_step.png": "trajectory.png", "figure_GMM_components.png": "gmm.png",
              "page_Model_comparison.png": "model_comparison.png"}
    optional = {"page_What_if_lab.png": "lab.png", "page_Uncertainty.png": "uncertainty.png",
                "page_Timeline.png": "timeline.png"}
    if not all((ARTIFACTS / k).exists() for k in wanted):
        pytest.skip("browser screenshots not produced in this run")
    if os.environ.get("DIFFPOSE_VIZ_UPDATE_SCREENSHOTS") == "1":
        for src, dst in wanted.items():
            shutil.copy(ARTIFACTS / src, REPO / "docs" / "screenshots" / dst)
        for src, dst in optional.items():
            if (ARTIFACTS / src).exists():
                shutil.copy(ARTIFACTS / src, REPO / "docs" / "screenshots" / dst)
    for src in wanted:
        assert (ARTIFACTS / src).stat().st_size > 20_000  # a blank page compresses to a few kB
