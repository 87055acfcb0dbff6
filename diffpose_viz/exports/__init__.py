"""Results that leave the kit: one sequence as MP4 (video with 2D | 3D with hypotheses), BVH, a Rerun
recording, CSV or JSON. `export_sequence` is the one entry point of the CLI (`diffpose-viz export`) and of
the Timeline page's download buttons.

Every file is written atomically; an existing file is replaced only with `force=True`. Where the format
has room for it (MP4 container tags, the .rrd's properties, the JSON's `metadata`) the export records its
source: the results file, its SHA-256, the model, and the checkpoint and fingerprint attributes when the
results carry them. BVH and CSV have no such place.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from diffpose_viz.errors import InputError
from diffpose_viz.figures.sequence import Sequence
from diffpose_viz.figures.video_frames import VideoFrames
from diffpose_viz.outputs import check_output_file
from diffpose_viz.safe_io import file_sha256

FORMATS = ("mp4", "bvh", "rrd", "csv", "json")


@dataclass
class ExportResult:
    path: Path
    summary: str


def check_output(out: str | Path, force: bool, kind: str | None = None) -> Path:
    """The output path through the package's one output check (`outputs.check_output_file`): a folder, another
    suffix than the format's, or an existing file without `force` is refused, naming the path."""
    return check_output_file(out, force=force, label="--out", suffix=f".{kind}" if kind else None)


def source_metadata(seq: Sequence) -> dict:
    """What an export records about where it came from."""
    meta = {"exported_by": "diffpose_viz", **seq.metadata()}
    if seq.source and Path(seq.source).is_file():
        meta["source_sha256"] = file_sha256(seq.source)
    return meta


def export_sequence(kind: str, seq: Sequence, out: str | Path, *, force: bool = False,
                    video: VideoFrames | None = None, hypothesis: int | None = None) -> ExportResult:
    """Write `seq` as `kind` (one of FORMATS) to `out`. `hypothesis`: BVH of that hypothesis instead of
    the mean pose. `video`: the frames under the 2D (MP4, .rrd)."""
    if kind not in FORMATS:
        raise InputError(f"export format {kind!r}: expected one of {', '.join(FORMATS)}")
    out = check_output(out, force, kind)
    meta = source_metadata(seq)
    if kind == "csv":
        from diffpose_viz.exports.tables import write_csv

        n = write_csv(seq, out)
        return ExportResult(out, f"{n} rows")
    if kind == "json":
        from diffpose_viz.exports.tables import write_json

        n = write_json(seq, out, meta)
        return ExportResult(out, f"{n} frames")
    if kind == "bvh":
        from diffpose_viz.atomic import atomic_write_text
        from diffpose_viz.exports.bvh import build_bvh

        if hypothesis is None:
            poses, what = seq.pred, "the mean pose"
        else:
            if not 0 <= hypothesis < seq.n_hypotheses:
                raise InputError(f"--hypothesis {hypothesis}: the results hold hypotheses 0..{seq.n_hypotheses - 1}")
            poses, what = seq.hypotheses[:, hypothesis], f"hypothesis {hypothesis}"
        bvh = build_bvh(poses, seq.frames, seq.fps)
        atomic_write_text(out, bvh.text)
        filled = int(bvh.interpolated.sum())
        return ExportResult(out, f"{len(bvh.frames)} frames of {what} at {seq.fps:g} fps"
                                 + (f" ({filled} interpolated between estimates)" if filled else ""))
    if kind == "mp4":
        from diffpose_viz.exports.render import write_mp4

        n, w, h = write_mp4(seq, out, video, metadata={"comment": _tag(meta)})
        return ExportResult(out, f"{n} frames, {w}x{h} px, {seq.fps:g} fps")
    from diffpose_viz.exports.rerun_file import write_rrd

    n = write_rrd(seq, out, video, metadata=meta)
    return ExportResult(out, f"{n} frames")


def _tag(meta: dict) -> str:
    import json

    return json.dumps(meta, sort_keys=True)
