"""Time one scrub step of the Timeline on a 60 s, 30 fps video (1800 frames), steps and jumps.

    OMP_NUM_THREADS=1 python scripts/bench_timeline.py [--seconds 60 --fps 30 --size 1280 720 --hypotheses 10]

It writes (once, into --work) a synthetic H.264 clip of that length (moving gradient, PyAV/libx264) and a
`wild`-style run of the same length (results.nc with N hypotheses, radius and out-of-domain score for every
frame, detections.npz naming the clip; a standing body swaying, hypotheses scattered around it: timing input,
not model output). Then it measures, per scrub step:
  figures: the video frame (decode + scale to 640 px), the 2D and 3D figures, the strips and joint traces
           (built once per sequence, their current-frame line moved), and the JSON of all four (what the page
           sends to the browser), for a step to the next frame and for a jump to a random frame (a seek to
           the keyframe before it);
  page:    the whole Timeline page rerun after clicking "step ▶" (streamlit AppTest, in-process: the server's
           work for one step; the browser's drawing is not included).
Medians and 90th percentiles in milliseconds.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import plotly.io as pio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from diffpose_viz.entry import run_script  # noqa: E402
from diffpose_viz.errors import InputError  # noqa: E402
from diffpose_viz.figures import sequence as S  # noqa: E402
from diffpose_viz.figures import timeline as T  # noqa: E402
from diffpose_viz.results import (  # noqa: E402
    Estimates,
    Inputs2D,
    Provenance,
    Samples,
    build_results,
    load_results,
    write_results,
)
from diffpose_viz.skeleton import H36M17  # noqa: E402

BODY = np.array([  # camera frame (x right, y down, z forward), metres, pelvis at 0
    [0, 0, 0], [-0.13, 0, 0], [-0.14, 0.45, 0.03], [-0.14, 0.88, 0], [0.13, 0, 0], [0.14, 0.45, 0.03],
    [0.14, 0.88, 0], [0, -0.23, 0], [0, -0.48, 0], [0, -0.58, -0.06], [0, -0.72, 0], [0.18, -0.45, 0],
    [0.22, -0.18, -0.02], [0.24, 0.06, -0.08], [-0.18, -0.45, 0], [-0.22, -0.18, -0.02], [-0.24, 0.06, -0.08]])


def write_clip(path: Path, n: int, fps: int, size: tuple[int, int]) -> None:
    import av

    w, h = size
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "28"}  # default GOP (250): jumps seek like real clips
        for i in range(n):
            frame = np.broadcast_to(((x + 4 * i) % 256).astype(np.uint8), (h, w, 3))
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_run(folder: Path, n: int, hypotheses: int, size: tuple[int, int]) -> Path:
    (folder / "results.nc").unlink(missing_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(n)[:, None, None]
    pred = np.repeat(BODY[None], n, 0) + 0.05 * np.sin(t / 15.0 + np.arange(17)[None, :, None])
    pred[:, 0] = 0
    hyps = pred[:, None] + rng.normal(0, 0.03, (n, hypotheses, 17, 3))
    hyps[:, :, 0] = 0
    pred = hyps.mean(1)
    kp = size[0] / 2 + pred[..., :2] * 400 + np.array([0, size[1] / 8])
    conf = rng.uniform(0.3, 1, (n, 17))
    ds = build_results(Inputs2D(kp, conf, conf < 0.5), Estimates(hyps, pred, pred),
                       Samples(["wild"] * n, ["clip.mp4"] * n, ["wild"] * n, np.arange(n)),
                       Provenance("benchmark input", {}, {}, "wild", "wild"))
    ds["radius"] = (("sample", "joint"), rng.uniform(20, 80, (n, 17)).astype(np.float32), {"units": "mm",
                                                                                          "level": 0.9})
    ds["ood_score"] = (("sample",), rng.normal(0, 1, n).astype(np.float32), {"units": "1"})
    ds["ood_flag"] = (("sample",), (ds["ood_score"].values > 2).astype(np.int8), {"units": "1"})
    ds.attrs["ood_threshold"] = 2.0
    write_results(ds, folder / "results.nc")
    np.savez(folder / "detections.npz", source=np.array(str(folder / "clip.mp4")))
    return folder / "results.nc"


def figures_for(src: S.TimelineSource, i: int, ranges, size, kept: list) -> int:
    """What the page does per step: the frame, the 2D and 3D figures rebuilt, the strips and traces (built
    once per sequence) with their current-frame line moved, all serialised."""
    seq = src.seq
    image = src.video.frame(int(seq.frames[i])) if src.video is not None else None
    figs = [T.frame_2d_figure(seq.input_2d[i], seq.confidence[i], seq.occluded[i], *size, image=image),
            T.pose_3d_figure(seq.pred[i], seq.hypotheses[i], seq.radius_mm[i], None, ranges),
            *(T.set_current_frame(f, int(seq.frames[i])) for f in kept)]
    return sum(len(pio.to_json(f, validate=False)) for f in figs)  # as st.plotly_chart serialises


def summary(name: str, times_s: list[float]) -> str:
    ms = sorted(1000 * t for t in times_s)
    p90 = ms[min(len(ms) - 1, int(round(0.9 * (len(ms) - 1))))]
    return f"{name:34s} median {statistics.median(ms):7.1f} ms   p90 {p90:7.1f} ms   (n={len(ms)})"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--size", type=int, nargs=2, default=[1280, 720], metavar=("W", "H"))
    ap.add_argument("--hypotheses", type=int, default=10)
    ap.add_argument("--steps", type=int, default=30, help="timed steps (and as many jumps)")
    ap.add_argument("--page-steps", type=int, default=10, help="timed page reruns (AppTest)")
    ap.add_argument("--work", default="data/cache/bench_timeline")
    args = ap.parse_args(argv)
    for key, value in (("--seconds", args.seconds), ("--fps", args.fps), ("--size", min(args.size)),
                       ("--hypotheses", args.hypotheses), ("--steps", args.steps), ("--page-steps", args.page_steps)):
        if not value > 0:
            raise InputError(f"{key}: expected a positive number, found {value}")
    n = int(round(args.seconds * args.fps))
    work = REPO / args.work if not Path(args.work).is_absolute() else Path(args.work)
    if work.exists() and not work.is_dir():
        raise InputError(f"--work {work}: is a file, expected a folder")
    work.mkdir(parents=True, exist_ok=True)
    size = tuple(args.size)
    stamp = work / f"clip_{n}_{args.fps}_{size[0]}x{size[1]}.json"
    if not stamp.exists():  # the clip takes a minute to encode: made once per size
        t0 = time.perf_counter()
        write_clip(work / "clip.mp4", n, args.fps, size)
        stamp.write_text(json.dumps({"frames": n}))
        print(f"wrote the {n}-frame clip in {time.perf_counter() - t0:.0f} s")
    write_run(work, n, args.hypotheses, size)
    t0 = time.perf_counter()
    ds = load_results(work / "results.nc")
    src = S.open_timeline(ds, work / "results.nc")
    ranges = T.sequence_ranges(src.seq)
    print(f"{n} frames at {args.fps} fps, {size[0]}x{size[1]}, {args.hypotheses} hypotheses; opening the sequence "
          f"and its video: {1000 * (time.perf_counter() - t0):.0f} ms; cpu threads {os.environ.get('OMP_NUM_THREADS')}")
    t0 = time.perf_counter()
    kept = [T.strips_figure(src.seq, 0), T.joint_traces_figure(src.seq, "left_wrist", 0)]
    print(f"strips and joint traces, built once per sequence: {1000 * (time.perf_counter() - t0):.0f} ms")
    figures_for(src, 0, ranges, size, kept)  # warm-up
    steps, jumps = [], []
    for i in range(1, args.steps + 1):
        t0 = time.perf_counter()
        figures_for(src, i, ranges, size, kept)
        steps.append(time.perf_counter() - t0)
    rng = np.random.default_rng(1)
    for i in rng.integers(0, n, args.steps):
        t0 = time.perf_counter()
        nbytes = figures_for(src, int(i), ranges, size, kept)
        jumps.append(time.perf_counter() - t0)
    print(summary("figures, step to the next frame", steps))
    print(summary("figures, jump to a random frame", jumps))
    print(f"{'':34s} {nbytes / 1e3:.0f} kB of figure JSON per step")

    from streamlit.testing.v1 import AppTest

    os.environ["DIFFPOSE_VIZ_RESULTS"] = str(work)
    at = AppTest.from_file(str(REPO / "dashboard" / "pages" / "9_Timeline.py"), default_timeout=600).run()
    if at.exception:
        raise SystemExit(f"the page failed: {[e.value for e in at.exception]}")
    page = []
    for _ in range(args.page_steps):
        t0 = time.perf_counter()
        at.button(key="tl_next").click().run()
        page.append(time.perf_counter() - t0)
    assert at.session_state["tl_pos"] == args.page_steps and not at.exception
    print(summary("page rerun after 'step ▶' (AppTest)", page))


if __name__ == "__main__":
    raise SystemExit(run_script(main))  # one-line errors, exit 2 (diffpose_viz.entry)
