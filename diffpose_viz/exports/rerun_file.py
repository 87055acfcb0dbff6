"""A Rerun recording (`.rrd`) of a sequence, for the Rerun viewer (`pip install 'diffpose-viz[rerun]'`).

Entities, on the `frame` timeline (source frame index; `time` in seconds beside it):
  video              the video frame (JPEG, at most 640 px wide), when there is a video
  input_2d/bones, input_2d/joints   the 2D input (joints coloured by confidence)
  pose/mean, pose/hypotheses, pose/ground_truth   3D line strips (camera frame, metres)
  pose/radius        an ellipsoid per joint with the calibrated radius (when calibrated)
  scores/ood_score, scores/mpjpe_mm, scores/spread_mm   scalars
On the `diffusion_step` timeline as well (when the results recorded trajectories):
  diffusion/state    every hypothesis's h_k at each recorded reverse step of that frame
The recording's properties hold the source metadata (model, checkpoint, fingerprint).
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from diffpose_viz.atomic import atomic_target
from diffpose_viz.figures.sequence import Sequence
from diffpose_viz.figures.video_frames import VideoFrames
from diffpose_viz.skeleton import H36M17

INSTALL_HINT = "the .rrd export needs the Rerun SDK: pip install 'diffpose-viz[rerun]' (or pip install rerun-sdk)"
APPLICATION_ID = "diffpose_viz"
_BONES = np.array(H36M17.bones)


def _rr():
    try:
        import rerun as rr
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    return rr


def _strips(poses: np.ndarray) -> np.ndarray:
    """(..., 17, D) -> (K, 2, D) one two-point strip per bone of every pose."""
    flat = np.asarray(poses).reshape(-1, 17, poses.shape[-1])
    return np.stack([flat[:, _BONES[:, 0]], flat[:, _BONES[:, 1]]], 2).reshape(-1, 2, poses.shape[-1])


def _jpeg(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def write_rrd(seq: Sequence, out: Path, video: VideoFrames | None = None, metadata: dict | None = None) -> int:
    """Write the recording atomically; returns the number of frames logged."""
    rr = _rr()
    rec = rr.RecordingStream(APPLICATION_ID)
    with atomic_target(out) as tmp:
        rec.save(str(tmp))
        if metadata:
            rec.send_property("source", rr.AnyValues(**{k: str(v) for k, v in metadata.items()}))
        conf = np.nan_to_num(seq.confidence, nan=0.0)
        colours = np.stack([np.minimum(1, 2 * (1 - conf)), np.minimum(1, 2 * conf), 0 * conf], -1)
        trajectory, timesteps = seq.trajectory, seq.timesteps
        times = seq.time_s()
        for i in range(len(seq)):
            f = int(seq.frames[i])
            rec.set_time("frame", sequence=f)
            rec.set_time("time", duration=float(times[i]))
            if video is not None and 0 <= f < len(video):
                rec.log("video", rr.EncodedImage(contents=_jpeg(video.frame(f)), media_type="image/jpeg"))
            kp = seq.input_2d[i]
            if video is not None:
                kp = kp * np.array([video.out_width / video.width, video.out_height / video.height])
            rec.log("input_2d/bones", rr.LineStrips2D(_strips(kp), colors=[0, 229, 255]))
            rec.log("input_2d/joints", rr.Points2D(kp, colors=colours[i], radii=3.0,
                                                   labels=list(H36M17.joint_names)))
            rec.log("pose/mean", rr.LineStrips3D(_strips(seq.pred[i]), colors=[31, 119, 180], radii=0.01))
            rec.log("pose/hypotheses", rr.LineStrips3D(_strips(seq.hypotheses[i]), colors=[120, 120, 120],
                                                       radii=0.003))
            if seq.gt is not None:
                rec.log("pose/ground_truth", rr.LineStrips3D(_strips(seq.gt[i]), colors=[44, 160, 44], radii=0.008))
            if seq.radius_mm is not None:
                r = np.where(np.isfinite(seq.radius_mm[i]), seq.radius_mm[i], 0.0) / 1000.0
                rec.log("pose/radius", rr.Ellipsoids3D(centers=seq.pred[i], half_sizes=np.repeat(r[:, None], 3, 1),
                                                       colors=[148, 103, 189, 60]))
            rec.log("scores/spread_mm", rr.Scalars(float(seq.spread_mm[i, 1:].mean())))
            if seq.ood_score is not None and np.isfinite(seq.ood_score[i]):
                rec.log("scores/ood_score", rr.Scalars(float(seq.ood_score[i])))
            if seq.mpjpe_mm is not None:
                rec.log("scores/mpjpe_mm", rr.Scalars(float(seq.mpjpe_mm[i])))
            if trajectory is not None:
                for s in range(trajectory.shape[2]):
                    rec.set_time("diffusion_step", sequence=s)
                    rec.log("diffusion/state", rr.LineStrips3D(_strips(trajectory[i, :, s]), colors=[214, 39, 40],
                                                               radii=0.003),
                            rr.AnyValues(timestep=int(timesteps[s]) if timesteps is not None else s))
                rec.reset_time()
        rec.flush()
        rec.disconnect()
    return len(seq)
