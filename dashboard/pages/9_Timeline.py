"""One sequence over time: the video with the 2D input, the 3D hypotheses with their calibrated radius, strips of
error, spread, out-of-domain score and detector confidence, per-joint traces; A/B against a second results file;
exports. The sequence assembly lives in `diffpose_viz.figures.sequence`, the figures in `figures.timeline`."""
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402
import numpy as np  # noqa: E402

from diffpose_viz.figures import sequence as S  # noqa: E402
from diffpose_viz.figures import timeline as T  # noqa: E402
from diffpose_viz.skeleton import H36M17  # noqa: E402

st = common.st
files = common.results_page("Timeline", "Scrub through one sequence: where the detector put each joint, what the "
                            "model made of it in 3D with all its hypotheses, how sure it is, and where it leaves what "
                            "it was trained on.")
PLAY_INTERVAL_S = 0.25


@st.cache_resource(show_spinner="Opening the sequence…", max_entries=4)
def load_timeline(path: str, mtime: float, sequence: int, video: str, _ds) -> S.TimelineSource:
    """The ordered sequence and its open video; cached per (file, modification time, sequence, video)."""
    return S.open_timeline(_ds, path, sequence, video or None)


@st.cache_data(max_entries=8)
def sequence_ranges(path_a: str, mtime_a: float, seq_i: int, path_b: str, mtime_b: float, _seq, _seq_b):
    return T.sequence_ranges(_seq, _seq_b)


name_a = st.sidebar.selectbox("Results (A)", list(files), key="tl_a")
path_a = files[name_a]
ds_a = common.open_results(path_a)
keys = S.sequence_keys(ds_a)
# the labels themselves are the options: a new results file with other sequences never shows a stale label
seq_labels = [f"{k.label} ({n} frames)" for k, n in keys]
seq_i = seq_labels.index(st.sidebar.selectbox("Sequence", seq_labels, key="tl_seq"))
others = [n for n in files if n != name_a]
name_b = st.sidebar.selectbox("Compare with (B)", ["none", *others], key="tl_b",
                              help="Another results file of the same sequence (e.g. the lifter, another checkpoint).")
video_text = st.sidebar.text_input("Video file", value="", key="tl_video",
                                   help="Default: a `wild` run's own source video (named in its detections.npz).")
try:
    src = load_timeline(str(path_a), path_a.stat().st_mtime, int(seq_i), video_text.strip(), ds_a)
except Exception as exc:  # results that cannot be shown at all: a message, not a traceback
    st.error(f"Could not open sequence {seq_i} of `{path_a.name}`: {exc}")
    st.stop()
seq = src.seq
for note in seq.notes:
    st.warning(note)
if src.video_error:
    st.error(src.video_error)

seq_b, label_b = None, "B"
if name_b != "none":
    ds_b = common.open_results(files[name_b])
    seq_b, line = S.overlay_sequence(seq, ds_b, str(files[name_b]))
    label_b = name_b
    (st.caption if seq_b is not None else st.warning)(f"A/B: {line}")

if st.session_state.get("tl_seen") != (str(path_a), seq_i):  # a new sequence starts at its first frame
    st.session_state["tl_seen"] = (str(path_a), seq_i)
    st.session_state["tl_pos"] = 0
    st.session_state["tl_playing"] = False
last = len(seq) - 1
st.session_state["tl_pos"] = int(min(max(st.session_state.get("tl_pos", 0), 0), last))
worst, worst_by = seq.worst(5)


def step(delta: int) -> None:
    st.session_state["tl_pos"] = int(min(max(st.session_state["tl_pos"] + delta, 0), last))


def jump() -> None:
    choice = st.session_state.get("tl_worst")
    if choice is not None and choice >= 0:
        st.session_state["tl_pos"] = int(choice)


def toggle_play() -> None:
    st.session_state["tl_playing"] = not st.session_state.get("tl_playing", False)


playing = bool(st.session_state.get("tl_playing")) and last > 0
st.button("❚❚ pause" if playing else "▶ play", key="tl_play", on_click=toggle_play,
          help=f"Advances one frame every {PLAY_INTERVAL_S} s (the page redraws the video frame, 2D and 3D each time).")
size = (src.video.width, src.video.height) if src.video is not None else seq.image_size()
ranges = sequence_ranges(str(path_a), path_a.stat().st_mtime, int(seq_i), str(files.get(name_b, "")),
                         files[name_b].stat().st_mtime if name_b in files else 0.0, seq, seq_b)


def describe(i: int) -> str:
    parts = [T.frame_label(seq, i)]
    if seq.mpjpe_mm is not None:
        parts.append(f"MPJPE {seq.mpjpe_mm[i]:.0f} mm")
        if seq_b is not None and seq_b.mpjpe_mm is not None and np.isfinite(seq_b.mpjpe_mm[i]):
            parts.append(f"B {seq_b.mpjpe_mm[i]:.0f} mm")
    if seq.n_hypotheses > 1:
        parts.append(f"spread {seq.spread_mm[i, 1:].mean():.0f} mm")
    if seq.ood_score is not None and np.isfinite(seq.ood_score[i]):
        flagged = seq.ood_flag is not None and seq.ood_flag[i]
        parts.append(f"OOD score {seq.ood_score[i]:.2f}" + (" — **outside what this model was trained on**"
                                                            if flagged else ""))
    parts.append(f"{int(seq.occluded[i].sum())} occluded joint(s)")
    return " · ".join(parts)


def session_figure(name: str, key: tuple, build):
    """This session's figure `name` for `key`, built once: while scrubbing only its current-frame line moves."""
    store = st.session_state.setdefault("tl_figures", {})
    if name not in store or store[name][0] != key:
        store[name] = (key, build())
    return store[name][1]


@st.fragment(run_every=PLAY_INTERVAL_S if playing else None)
def views() -> None:
    if playing:
        st.session_state["tl_pos"] = (st.session_state["tl_pos"] + 1) % (last + 1)
    c0, c1, c2, c3 = st.columns([1, 1, 6, 3])
    c0.button("◀ step", key="tl_prev", on_click=step, args=(-1,), disabled=last == 0)
    c1.button("step ▶", key="tl_next", on_click=step, args=(1,), disabled=last == 0)
    if last > 0:
        c2.slider("Frame (row of the sequence)", 0, last, key="tl_pos")
    c3.selectbox(f"Jump to a worst frame (by {worst_by})", [-1, *[int(w) for w in worst]], key="tl_worst",
                 on_change=jump, format_func=lambda w: "—" if w < 0 else T.frame_label(seq, w))
    i = int(st.session_state["tl_pos"])
    st.markdown(describe(i))
    left, right = st.columns(2)
    f = int(seq.frames[i])
    image = src.video.frame(f) if src.video is not None and src.in_video[i] else None
    note = None if src.video is not None else "no video: the 2D on a blank canvas"
    with left:
        common.plot(T.frame_2d_figure(seq.input_2d[i], seq.confidence[i], seq.occluded[i], size[0], size[1],
                                      image=image, title=f"2D input, {T.frame_label(seq, i)}", note=note), key="tl_2d")
    with right:
        has_b = seq_b is not None
        common.plot(T.pose_3d_figure(
            seq.pred[i], seq.hypotheses[i], seq.radius_mm[i] if seq.radius_mm is not None else None,
            seq.gt[i] if seq.gt is not None else None, ranges,
            pred_b=seq_b.pred[i] if has_b else None, hypotheses_b=seq_b.hypotheses[i] if has_b else None,
            label_a=name_a, label_b=label_b, radius_level=seq.radius_level,
            camera=T.orbit_camera(st.session_state.get("tl_azimuth", T.DEFAULT_VIEW[0]),
                                  st.session_state.get("tl_elevation", T.DEFAULT_VIEW[1]))), key="tl_3d")
        v1, v2 = st.columns(2)  # the view lives here, not in the chart: Streamlit redraws the chart at every step
        v1.slider("3D view: azimuth (°)", -180, 180, int(T.DEFAULT_VIEW[0]), step=5, key="tl_azimuth")
        v2.slider("elevation (°)", -10, 80, int(T.DEFAULT_VIEW[1]), step=5, key="tl_elevation")
    shown = (str(path_a), path_a.stat().st_mtime, seq_i, name_b)
    strips = session_figure("strips", shown, lambda: T.strips_figure(seq, i, seq_b, name_a, label_b))
    common.plot(T.set_current_frame(strips, f), key="tl_strips")
    joint = st.selectbox("Joint for the x/y/z traces", H36M17.joint_names, index=H36M17.index("left_wrist"),
                         key="tl_joint")
    traces = session_figure("traces", (*shown, joint), lambda: T.joint_traces_figure(seq, joint, i, seq_b, name_a,
                                                                                     label_b))
    common.plot(T.set_current_frame(traces, f), key="tl_traces")


views()
with st.expander("Scrub the 3D in the browser (instant, the camera stays where you turn it)"):
    st.caption("The whole sequence in one figure (at most 120 evenly spaced frames): its own slider and ▶ run in "
               "the browser, without the video and the strips.")
    whole = session_figure("browser", (str(path_a), path_a.stat().st_mtime, seq_i), lambda: T.timeline_figure(seq))
    common.plot(whole, key="tl_browser")
if seq.radius_mm is None:
    st.caption("No calibrated radius in these results: `evaluate` writes one; `sample`/`wild` with "
               "`--calibration <metrics.json>`.")

st.subheader("Export this sequence")
FORMAT_HELP = {"mp4": "MP4: video with 2D | 3D with hypotheses", "bvh": "BVH: joint rotations (mean pose)",
               "rrd": "Rerun recording (.rrd)", "csv": "CSV: poses, radius, scores per frame",
               "json": "JSON: poses, hypotheses, radius, scores per frame"}
e1, e2, e3 = st.columns([2, 3, 2])
kind = e1.selectbox("Format", list(FORMAT_HELP), format_func=FORMAT_HELP.get, key="tl_fmt")
save_to = e2.text_input("…or save on this machine (path)", value="", key="tl_save_to",
                        help="Left empty: prepare a download. An existing file is kept unless you tick overwrite.")
overwrite = e3.checkbox("overwrite if it exists", key="tl_overwrite")
if st.button("Prepare export", key="tl_export"):
    from diffpose_viz.exports import export_sequence

    if save_to.strip():
        target = common.resolve(save_to.strip())
    else:
        target = Path(tempfile.mkdtemp(prefix="diffpose_timeline_")) / f"{Path(path_a).stem}_{seq_i}.{kind}"
    with st.spinner(f"writing {kind}…"):
        try:
            done = export_sequence(kind, seq, target, force=overwrite or not save_to.strip(),
                                   video=src.video if kind in ("mp4", "rrd") else None)
        except Exception as exc:  # an existing file, a missing optional package: a message, not a traceback
            st.error(f"Export failed: {exc}")
        else:
            st.session_state["tl_export_done"] = (str(done.path), done.summary, bool(save_to.strip()), kind)
if "tl_export_done" in st.session_state:
    path, summary, saved, done_kind = st.session_state["tl_export_done"]
    if Path(path).exists() and done_kind == kind:  # a file of the format now chosen
        if saved:
            st.success(f"wrote `{path}` ({summary})")
        else:
            st.download_button(f"Download {Path(path).name} ({summary})", Path(path).read_bytes(),
                               file_name=Path(path).name, key="tl_download")
st.caption(f"Command line: `diffpose-viz export {kind} {path_a} --sequence {seq_i} --out FILE`. BVH: H36M-17 "
           "rotations with the person's median bone lengths; it reproduces the bone-length-normalised prediction "
           "(docs/EXPORTS.md).")
