"""`diffpose-viz`: the command line. It only picks configs, paths and the device; every setting lives in
the YAML config (`--override key=value` is for quick smoke sizes).

    diffpose-viz data demo
    diffpose-viz train configs/demo.yaml --out runs/demo
    diffpose-viz evaluate runs/demo/best.pt --out results/demo/diffpose.nc --record-trajectory
    diffpose-viz sample runs/demo/best.pt --input kp.json --format coco17 --image-size 1920 1080 --out mine.nc
    diffpose-viz bench --device cpu
    diffpose-viz dashboard --results results/demo
    diffpose-viz wild video.mp4 --checkpoint runs/demo/best.pt --out runs/wild [--open]
    diffpose-viz import diffpose-frame gcn_xyz_cpn.pth diffpose_uvxyz_cpn.pth --out runs/diffpose_released
    diffpose-viz export mp4|bvh|rrd|csv|json runs/wild --out take.bvh

Multi-process training: `torchrun --standalone --nproc-per-node 2 -m diffpose_viz.cli train ...`.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

from diffpose_viz.entry import guarded

EXIT_USAGE = 2


class CLIError(Exception):
    """A user-facing error: printed without a traceback."""


def _device_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu",
                   help="cpu (default), cuda or cuda:N; never chosen automatically")


def _sampling_arg(p: argparse.ArgumentParser) -> None:
    from diffpose_viz.diffusion.setting import SETTING_KEYS

    p.add_argument("--sampling", action="append", default=[], metavar="KEY=VALUE", help="change how the model "
                   f"samples, e.g. eta=0.5 or start_t=12 (repeatable; keys: {', '.join(SETTING_KEYS)}; default: "
                   "the checkpoint's own setting)")


def _setting(args, **given):
    """The sampling request of a command: its own options (None: not given), then --sampling key=value."""
    from diffpose_viz.diffusion import SamplingSetting

    return SamplingSetting.from_items(args.sampling, SamplingSetting(**given))


def _check_device(device: str) -> str:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CLIError(f"--device {device}: CUDA is not available on this machine (torch {torch.__version__})")
    if not (device == "cpu" or device.startswith("cuda") or device == "mps"):
        raise CLIError(f"--device must be cpu, cuda or cuda:N, got {device!r}")
    return device


def _check_checkpoint(path: str, label: str) -> None:
    """A checkpoint must be a regular file (a FIFO would hang the reader); a run folder left mid-replacement by
    an interrupted `train --force` is restored first. The message says which of the two is wrong."""
    from diffpose_viz.checkpoint import restore_run_folder
    from diffpose_viz.safe_io import SafeLoadError, check_input_file

    if not Path(path).exists():
        restore_run_folder(Path(path).parent)
    try:
        check_input_file(path, "a checkpoint (.pt) written by `diffpose-viz train`")
    except FileNotFoundError:
        raise CLIError(f"{label} {path}: does not exist") from None
    except SafeLoadError as err:
        raise CLIError(f"{label} {err}") from None


# --------------------------------------------------------------------------- commands


#: `data NAME --from PATH`: the mocap converters beside cmu_bvh, and what PATH is.
MOCAP_CONVERTERS = {
    "hdm05": "a folder, clone or .tar.xz of HDM05 ASF/AMC takes, HDM_<actor>_*_120.amc; actor tr refused",
    "cmu_asf": "a folder, clone or .tar.xz of CMU ASF/AMC takes, SS_TT.amc or named takes; subjects 01-10 refused",
    "reactidle": "a folder, clone or .tar.xz of ReActIdle NNN_acted.bvh / NNN_genuine.bvh",
}


def cmd_data(args) -> int:
    if args.what == "cmu_bvh":  # converts what the user already has; never downloads
        from diffpose_viz.datasets.cmu_bvh import convert_cmu_bvh

        if not args.source:
            raise CLIError("data cmu_bvh: --from PATH is required (a folder or file of CMU SS_TT.bvh takes)")
        convert_cmu_bvh(args.source, args.out_dir or "data/cache/cmu_bvh")
        return 0
    if args.what in MOCAP_CONVERTERS:  # converts what the user already has (folder, clone, archive); never downloads
        if not args.source:
            raise CLIError(f"data {args.what}: --from PATH is required ({MOCAP_CONVERTERS[args.what]})")
        out_dir = args.out_dir or f"data/cache/{args.what}" + ("" if args.joints == "rig" else f"_{args.joints}")
        if args.what == "reactidle":
            from diffpose_viz.datasets.reactidle import convert_reactidle

            convert_reactidle(args.source, out_dir, force=args.force, joints=args.joints)
        else:
            from diffpose_viz.datasets.asf_amc_sources import convert_asf_amc

            convert_asf_amc(args.what, args.source, out_dir, force=args.force, joints=args.joints)
        return 0
    if args.what != "demo":
        raise CLIError(f"unknown dataset {args.what!r}; available: demo, cmu_bvh, {', '.join(MOCAP_CONVERTERS)}")
    from diffpose_viz.datasets.demo import build_demo

    args.out_dir = args.out_dir or "data/demo"

    build_demo(args.out_dir, args.cache_dir, force=args.force)  # logs its own summary
    return 0


def cmd_train(args) -> int:
    from diffpose_viz.distributed import current, shutdown
    from diffpose_viz.methods import load_config
    from diffpose_viz.training.trainer import train

    if args.resume and args.force:
        raise CLIError("--resume and --force contradict each other: continue the run, or replace it")
    cfg = load_config(args.config, args.override)
    device = _check_device(args.device or cfg.device)
    result = train(cfg, args.out, device=device, resume=args.resume, progress=not args.no_progress, force=args.force,
                   allow_leakage=args.allow_leakage, hk_cache=args.hk_cache)

    if current().is_main:
        best = "n/a" if result.best_val_mpjpe_mm is None else f"{result.best_val_mpjpe_mm:.1f} mm"
        print(f"trained {cfg.method} for {result.steps} steps in {result.wall_s:.1f} s; best validation MPJPE "
              f"(EMA) {best}\n  checkpoints: {result.last} (resume), {result.best} (best on validation)")
    shutdown()
    return 0


def cmd_evaluate(args) -> int:
    from diffpose_viz.distributed import current, shutdown
    from diffpose_viz.evaluation.evaluate import EvalData, evaluate
    from diffpose_viz.evaluation.summary import format_summary
    from diffpose_viz.results import metrics_path_for

    from diffpose_viz.outputs import check_output_files

    _check_positive(batch_size=args.batch_size, max_samples=args.max_samples, hypotheses=args.hypotheses,
                    steps=args.steps)
    sampling = _setting(args, n_hypotheses=args.hypotheses, n_steps=args.steps, batch_size=args.batch_size,
                        amp=args.amp, record=args.record_trajectory or None)
    check_output_files([("--out", args.out), ("--out's metrics JSON", metrics_path_for(args.out)),
                        ("--save-calibration-rows", args.save_calibration_rows)], force=args.force,
                       suffixes={"--out": ".nc"})
    _check_checkpoint(args.checkpoint, "checkpoint")

    data = EvalData(split=args.split, data_path=args.data, subjects=tuple(args.subjects) if args.subjects else None,
                    test_2d=args.test_2d, max_samples=args.max_samples, calibrate_with=tuple(args.calibrate_with),
                    save_calibration_rows=args.save_calibration_rows, ood_radius=args.ood_radius,
                    allow_leakage=args.allow_leakage)
    out = evaluate(args.checkpoint, args.out, device=_check_device(args.device), sampling=sampling, data=data,
                   progress=not args.no_progress, overwrite=args.force)
    if current().is_main:
        print(format_summary(out.summary))
        print(f"wrote {out.results_path} and {out.metrics_path} ({out.wall_s:.1f} s)")
    shutdown()
    return 0


def _check_positive(**options) -> None:
    """Integer options that must be >= 1 when given (None = the config's default)."""
    for name, value in options.items():
        if value is not None and value < 1:
            raise CLIError(f"--{name.replace('_', '-')}: expected an integer >= 1, found {value}")


def cmd_sample(args) -> int:
    from diffpose_viz.datasets.keypoints_file import load_keypoints_h36m17
    from diffpose_viz.outputs import check_output_files
    from diffpose_viz.results import write_results
    from diffpose_viz.inference import MIN_VISIBLE_JOINTS, lift_2d, load_model
    from diffpose_viz.inputs import default_camera

    _check_positive(hypotheses=args.hypotheses, steps=args.steps)
    sampling = _setting(args, n_hypotheses=args.hypotheses, n_steps=args.steps, record=args.record_trajectory or None)
    check_output_files([("--out", args.out)], force=args.force)
    if not args.std_px > 0:
        raise CLIError(f"--std-px: expected a 2D spread > 0 pixels, found {args.std_px}")
    w, h = args.image_size
    if w <= 0 or h <= 0:
        raise CLIError(f"--image-size: expected positive width and height in pixels, found {w} {h}")
    if args.focal is not None and not (math.isfinite(args.focal) and args.focal > 0):
        raise CLIError(f"--focal: expected a finite focal length > 0 pixels, found {args.focal}")
    if args.center is not None and not all(map(math.isfinite, args.center)):
        raise CLIError(f"--center: expected finite pixel coordinates CX CY, found {args.center[0]} {args.center[1]}")
    kp17, conf17, fmt = load_keypoints_h36m17(args.input, args.format)
    ood_model = None
    if args.calibration:  # a wrong file is refused before the lift
        from diffpose_viz.evaluation.ood_file import annotate, load_ood_model

        ood_model = load_ood_model(args.calibration, args.checkpoint)
    cam = default_camera(w, h, args.focal, args.center)
    model = load_model(args.checkpoint, _check_device(args.device))
    ds = lift_2d(model, kp17, cam, sampling,
                 confidence=conf17, std_px=args.std_px, dataset=f"{Path(args.input).name} ({fmt})")
    ood_line = None
    if ood_model is not None:
        ds, ood_line = annotate(ds, ood_model)
    ds.attrs["checkpoint_fingerprint"] = model.fingerprint  # which model made it, by content
    write_results(ds, args.out)
    n_missing = int(ds["missing"].values.sum()) if "missing" in ds else 0
    print(f"lifted {len(kp17) - n_missing} of {len(kp17)} frames ({fmt} -> H36M-17) with {ds.sizes['hypothesis']} "
          f"hypotheses; camera f = {cam.focal[0]:.0f} px, centre {cam.center}; wrote {args.out}")
    if ood_line:
        print(ood_line)
    if n_missing:
        print(f"{n_missing} frame(s) without usable 2D (fewer than {MIN_VISIBLE_JOINTS} visible joints or no visible "
              "hip) were not lifted: NaN in the results, flagged in 'missing' / 'missing_reason'")
    return 0


def cmd_bench(args) -> int:
    if args.train:
        from diffpose_viz.training.bench import DEFAULT_ROWS, run_train_bench

        overrides = list(args.override) + ([f"train.amp={args.amp}"] if args.amp != "none" else [])
        run_train_bench(config=args.config, overrides=overrides, rows=args.rows or DEFAULT_ROWS, sizes=args.sizes,
                        device=_check_device(args.device), steps=args.train_steps, warmup=args.warmup,
                        batch_size=args.batch_size, official_code=args.official_code, prep_rows=args.prep_rows,
                        out=args.out)
        return 0
    if args.config or args.override:
        raise CLIError("bench: --config and --override belong to the training benchmark (add --train)")
    from diffpose_viz.bench import parse_tile, parse_workers, run_bench

    run_bench(device=_check_device(args.device), hypotheses=args.hypotheses, steps=args.steps,
              batch_sizes=args.batch_sizes, checkpoint=args.checkpoint, out=args.out, naive_max=args.naive_max,
              tile_frames=parse_tile(args.tile_frames), workers=parse_workers(args.workers), amp=args.amp)
    return 0


def cmd_dashboard(args) -> int:
    return open_dashboard(args.results, port=args.port, headless=args.headless, page=args.page)


def open_dashboard(results: str | None, *, port: int = 8501, headless: bool = False, page: str | None = None) -> int:
    """`streamlit run dashboard/Overview.py` on `results`; with `page` the browser opens on that page
    (e.g. Timeline) instead of the overview. Returns streamlit's exit status."""
    app = Path(__file__).resolve().parents[1] / "dashboard" / "Overview.py"
    if not app.exists():
        raise CLIError(f"dashboard app not found at {app} (run from a source checkout)")
    env = dict(os.environ)
    if results:
        env["DIFFPOSE_VIZ_RESULTS"] = str(Path(results).resolve())
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port),
           "--browser.gatherUsageStats", "false"]
    if headless or page:  # with a page we open the browser ourselves, on that page
        cmd += ["--server.headless", "true"]
    proc = subprocess.Popen(cmd, env=env)
    if page and not headless:
        _open_when_up(f"http://localhost:{port}", page, proc)
    return proc.wait()


def _open_when_up(url: str, page: str, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    import time
    import urllib.request
    import webbrowser

    deadline = time.time() + timeout_s
    while time.time() < deadline and proc.poll() is None:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                print(f"opening {url}/{page}")
                webbrowser.open(f"{url}/{page}")
                return
        except OSError:
            time.sleep(0.5)
    print(f"the dashboard did not answer within {timeout_s:.0f} s; open {url}/{page} yourself", file=sys.stderr)


def cmd_wild(args) -> int:
    from diffpose_viz.atomic import check_writable, replacing_dir

    try:
        import diffpose_viz.wild as wild
    except ImportError as err:
        raise CLIError(f"the in-the-wild module is not available ({err}); install the 'detector' extra "
                       "(pip install -e .[detector]) or use `diffpose-viz sample` with your own 2D keypoints")
    if not hasattr(wild, "run_wild"):
        raise CLIError("diffpose_viz.wild has no run_wild(); this checkout's in-the-wild module is incomplete")
    if args.stride < 1:
        raise CLIError(f"--stride: expected an integer >= 1, found {args.stride}")
    if args.max_frames is not None and args.max_frames < 1:
        raise CLIError(f"--max-frames: expected an integer >= 1, found {args.max_frames}")
    if args.hypotheses < 1:
        raise CLIError(f"--hypotheses: expected an integer >= 1, found {args.hypotheses}")
    sampling = _setting(args, n_hypotheses=args.hypotheses)
    if not Path(args.input).exists():
        raise CLIError(f"{args.input}: does not exist (expected a video, an image or a folder of images)")
    if not (Path(args.input).is_dir() or Path(args.input).is_file()):  # a FIFO or device would block the reader
        raise CLIError(f"{args.input}: not a regular file or folder (expected a video, an image or a folder of images)")
    earlier = [p.name for p in sorted(Path(args.out).glob("*")) if p.name in WILD_OUTPUTS or
               p.name.startswith("overlay")] if Path(args.out).is_dir() else []
    if earlier and not args.force:
        raise CLIError(f"--out {args.out}: holds an earlier run ({', '.join(earlier)}); choose another --out, or "
                       "replace it with --force")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise CLIError(f"--out {args.out}: exists and is not a folder")
    check_writable(Path(args.out) / "detections.npz")
    if args.checkpoint is not None:
        _check_checkpoint(args.checkpoint, "--checkpoint")
    if args.calibration is not None:  # refuse a wrong file before the (slow) detection
        if args.checkpoint is None:
            raise CLIError("--calibration needs --checkpoint (it scores the 3D lift)")
        from diffpose_viz.evaluation.ood_file import load_ood_model

        load_ood_model(args.calibration, args.checkpoint)
    from diffpose_viz.wild import mediapipe_detector

    if not mediapipe_detector.mediapipe_available():
        raise CLIError(f"{args.input}: detecting 2D keypoints needs MediaPipe (with the solutions.pose API), which "
                       "is not installed or does not import: pip install -e .[detector]; or lift your own 2D keypoints "
                       "with `diffpose-viz sample`")
    run = lambda out: wild.run_wild(args.input, args.checkpoint, out, sampling=sampling,  # noqa: E731
                                    device=_check_device(args.device), max_frames=args.max_frames, stride=args.stride,
                                    calibration=args.calibration)
    if earlier:  # --force: the new outputs are made beside the earlier ones and swapped in only when complete
        with replacing_dir(args.out, drop=tuple(earlier)) as staging:  # no earlier output survives the swap
            res = run(staging)
    else:
        res = run(args.out)
    names = [res.detections_path.name] + ([res.results_path.name] if res.results_path else [])
    note = f" ({res.lift_note})" if res.lift_note else ""
    print("wrote " + ", ".join(str(Path(args.out) / n) for n in names) + note)
    if args.open:
        if res.results_path is None:
            raise CLIError("--open: no 3D results to show (give --checkpoint, and a video with a person in it)")
        return open_dashboard(args.out, port=args.port, page="Timeline")
    return 0


def _results_of(path: str) -> Path:
    """A results file, or the results.nc of a `wild` run folder."""
    p = Path(path)
    if p.is_dir():
        if not (p / "results.nc").exists():
            raise CLIError(f"{p}: a folder without results.nc (give a results file, or a `wild` run with --checkpoint)")
        p = p / "results.nc"
    return p


def _pick_sequence(ds, choice: str | None):
    """--sequence: an index into the results' sequences or 'subject/action/camera'; default the first."""
    from diffpose_viz.figures.sequence import SequenceKey, sequence_keys

    keys = sequence_keys(ds)
    if choice is None:
        if len(keys) > 1:
            print(f"{len(keys)} sequences; exporting the first ({keys[0][0].label}); choose with --sequence N "
                  "or SUBJECT/ACTION/CAMERA")
        return 0
    if choice.isdigit():
        return int(choice)
    parts = choice.split("/")
    if len(parts) != 3:
        raise CLIError(f"--sequence {choice!r}: expected an index 0..{len(keys) - 1} or SUBJECT/ACTION/CAMERA")
    return SequenceKey(*parts)


def cmd_export(args) -> int:
    from diffpose_viz.exports import export_sequence
    from diffpose_viz.figures.sequence import open_timeline
    from diffpose_viz.results import load_results

    results = _results_of(args.results)
    if not results.exists():
        raise CLIError(f"{results}: does not exist (expected a results file or a `wild` run folder)")
    if args.video is not None and not Path(args.video).is_file():
        raise CLIError(f"--video {args.video}: does not exist or is not a file")
    ds = load_results(results)
    src = open_timeline(ds, results, _pick_sequence(ds, args.sequence), args.video)
    if src.video_error:
        raise CLIError(src.video_error.split(";")[0])
    if src.video is None and args.fps is not None:
        src.seq.fps = args.fps
    for note in src.seq.notes:
        print(note)
    out = export_sequence(args.format, src.seq, args.out, force=args.force,
                          video=src.video if args.format in ("mp4", "rrd") else None, hypothesis=args.hypothesis)
    print(f"wrote {out.path} ({args.format}: {out.summary}; sequence {src.seq.label}, model {src.seq.model})")
    return 0


def cmd_import(args) -> int:
    from diffpose_viz.released import import_released
    from diffpose_viz.run_lock import run_lock

    _check_positive(frames=args.frames, heads=args.heads)
    for f in args.files:
        if not Path(f).exists():
            raise CLIError(f"{f}: does not exist")
    data = {k: v for k, v in (("path", args.data), ("train_2d", args.train_2d), ("test_2d", args.test_2d)) if v}
    with run_lock(args.out, what="import or train"):  # one writer per run folder, as `train`
        written = import_released(args.kind, args.files, args.out, force=args.force, frames=args.frames,
                                  heads=args.heads, input_layout=args.input, protocol=args.protocol, data=data)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


#: What `wild` writes into its --out folder (besides overlay.mp4 / overlay*.png).
WILD_OUTPUTS = ("detections.npz", "results.nc")


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="diffpose-viz", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    ap.add_argument("--debug", action="store_true", help="show the Python traceback of an error (for bug reports)")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("data", help="build datasets (data demo: the embedded demo mocap)")
    p.add_argument("what", choices=["demo", "cmu_bvh", *MOCAP_CONVERTERS])
    p.add_argument("--out-dir", default=None, help="default data/demo (demo), data/cache/<what> (the converters; "
                   "data/cache/<what>_harmonised with --joints harmonised)")
    p.add_argument("--from", dest="source", default=None, metavar="PATH",
                   help="cmu_bvh: a folder or file of CMU takes you already have (SS_TT.bvh; subjects 01-10 "
                   "refused); " + "; ".join(f"{k}: {v}" for k, v in MOCAP_CONVERTERS.items()))
    from diffpose_viz.mocap.conventions import JOINT_CONVENTIONS

    p.add_argument("--joints", choices=JOINT_CONVENTIONS, default="rig", help=f"{', '.join(MOCAP_CONVERTERS)}: "
                   "the rig's joint centres, or harmonised (each person's shoulder and hip spacing set to bandai17's "
                   "proportion of their leg; docs/AUGMENTATION.md)")
    p.add_argument("--cache-dir", default="data/cache")
    p.add_argument("--force", action="store_true", help="rebuild even if a valid file exists (converters: replace "
                   "an earlier conversion, refused without it)")
    _device_arg(p)
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("train", help="train a method from a YAML config")
    p.add_argument("config", help="YAML config, e.g. configs/demo.yaml")
    p.add_argument("--out", required=True, help="run folder: config.yaml, last.pt, best.pt, train_log.jsonl")
    p.add_argument("--resume", action="store_true", help="continue bit-for-bit from OUT/last.pt")
    p.add_argument("--force", action="store_true", help="replace an earlier run in OUT (refused without it)")
    p.add_argument("--hk-cache", default=None, metavar="DIR",
                   help="a folder for the fitted H_K that runs on the same rows share (default: OUT/cache); a "
                        "file is reused only when the H_K settings, depth prior and rows match")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="change one config value, e.g. train.epochs=1 (repeatable; for smoke sizes)")
    p.add_argument("--no-progress", action="store_true", help="no progress display (a bar on a terminal, a periodic line otherwise)")
    p.add_argument("--device", default=None,
                   help="cpu, cuda or cuda:N (default: the config's `device`, cpu in every shipped CPU config)")
    p.add_argument("--allow-leakage", action="store_true", help="train even though a training source holds test "
                   "rows of this run (refused without it; docs/SECURITY.md)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="run a checkpoint on its test split -> results .nc + .metrics.json")
    p.add_argument("checkpoint")
    p.add_argument("--out", required=True, help="results file (.nc); metrics go to the same name .metrics.json")
    p.add_argument("--hypotheses", type=int, default=None, help="N (default: the config's)")
    p.add_argument("--steps", type=int, default=None, help="K DDIM steps (default: the config's)")
    p.add_argument("--record-trajectory", action="store_true", help="store every reverse-diffusion state")
    p.add_argument("--batch-size", type=int, default=None, help="frames per batch (default: the setting's, 256)")
    p.add_argument("--max-samples", type=int, default=None, help="evenly thin the test rows to this many")
    p.add_argument("--data", default=None, help="use this data file instead of the config's data.path")
    p.add_argument("--subjects", nargs="+", default=None, help="evaluate these subjects (of --data, or of the "
                   "config's file) instead of the config's test subjects")
    p.add_argument("--test-2d", default=None, metavar="FILE", help="the test rows' 2D from this VideoPose3D "
                   "data_2d or DiffPose GMM file (matched by subject, action, camera and frame)")
    p.add_argument("--split", choices=["test", "val"], default="test", help="val: the held-out validation "
                   "sequences of the training subjects (where settings are compared; never the test split)")
    _sampling_arg(p)
    p.add_argument("--calibrate-with", action="append", default=[], metavar="DATA_3D[:PEOPLE]", help="another data "
                   "file whose validation rows of the training subjects join the error-bar calibration (e.g. the "
                   "held-out validation views), or with :PEOPLE (e.g. data/cache/hdm05/data_3d_hdm05.npz:bk) all rows "
                   "of those held-out people, a real shift no training source contains; never a test set")
    p.add_argument("--save-calibration-rows", default=None, metavar="NPZ", help="also write the calibration's "
                   "validation rows (inputs, hypotheses, ground truth, domain) here, for scripts/refit_ood.py")
    p.add_argument("--ood-radius", choices=["auto", "normalised", "per_component"], default="auto",
                   help="which score-conditional calibration gives the results' radius: normalised (one slope on the "
                   "mean score), per_component (one weight per score component), auto (per_component when, with "
                   "--calibrate-with, it covers the held-out validation halves with a smaller radius)")
    p.add_argument("--amp", choices=["none", "bf16"], default=None, help="bf16: run the networks under autocast "
                   "in bfloat16 (GPU, or a CPU with bf16 instructions); the DDIM state stays float32 (default: the "
                   "setting's, none)")
    p.add_argument("--force", action="store_true", help="replace an existing results file and its metrics "
                   "(refused without it)")
    p.add_argument("--allow-leakage", action="store_true", help="use a --calibrate-with file even though it is the "
                   "training data or shares its rows (refused without it; docs/SECURITY.md)")
    p.add_argument("--no-progress", action="store_true")
    _device_arg(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("sample", help="lift your own 2D keypoints to 3D hypotheses",
                       description="Reads 2D keypoints in pixels: .npz (array 'keypoints' (F,J,2|3), optional "
                       "'confidence', 'format'), .json ({'keypoints': F x J x [x,y(,score)], 'format': ...}) or "
                       ".csv (one frame per row: x0,y0[,s0],x1,y1,...). Camera: a pinhole with focal length "
                       "1.2 x the larger image side and the principal point at the image centre, unless "
                       "--focal/--center are given; depth is estimated from the 2D scale.")
    p.add_argument("checkpoint")
    p.add_argument("--input", required=True)
    p.add_argument("--format", default="auto", choices=["auto", "coco17", "h36m17", "blazepose33"],
                   help="keypoint layout (auto only works for 33-joint BlazePose or files that declare it)")
    p.add_argument("--image-size", type=int, nargs=2, required=True, metavar=("W", "H"))
    p.add_argument("--focal", type=float, default=None, help="focal length in pixels")
    p.add_argument("--center", type=float, nargs=2, default=None, metavar=("CX", "CY"))
    p.add_argument("--std-px", type=float, default=5.0, help="2D uncertainty assumed for H_K (pixels)")
    p.add_argument("--hypotheses", type=int, default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--record-trajectory", action="store_true")
    _sampling_arg(p)
    p.add_argument("--out", required=True)
    p.add_argument("--force", action="store_true", help="replace an existing results file (refused without it)")
    p.add_argument("--calibration", default=None, metavar="METRICS_JSON", help="the metrics JSON of `evaluate` on "
                   "this checkpoint: adds the out-of-domain score, flag and calibrated per-joint radius")
    _device_arg(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("bench", help="sampler throughput: batched vs naive loop, memory, FLOP rate")
    p.add_argument("--hypotheses", type=int, nargs="+", default=[1, 5, 10])
    p.add_argument("--steps", type=int, nargs="+", default=[1, 5, 10])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    p.add_argument("--checkpoint", default=None, help="benchmark this model (default: the DiffPose network at "
                   "its default size, untrained)")
    p.add_argument("--naive-max", type=int, default=8, help="frames timed in the naive loop (it is slow)")
    p.add_argument("--tile-frames", default="auto", help="frames per tile of the reverse loop: 'auto' (CPU: about "
                   "128 states per tile; GPU: one tile), 'none' (one tile) or a number")
    p.add_argument("--workers", default="auto", help="CPU: tiles run this many at a time on threads ('auto': "
                   "torch's thread count)")
    p.add_argument("--amp", choices=["none", "bf16"], default="none", help="bf16: networks under autocast")
    p.add_argument("--out", default=None, help="also write the table as JSON")
    g = p.add_argument_group("training benchmark (--train)")
    g.add_argument("--train", action="store_true", help="time training steps instead of the sampler "
                   "(docs/BENCHMARKS.md, 'Training throughput')")
    g.add_argument("--config", default=None, help="train on this config's data and network (default: synthetic rows, "
                   "the CPU configs' 64 x 3 network)")
    g.add_argument("--override", action="append", default=[], help="key=value on the config (e.g. train.amp=bf16, "
                   "train.threads=2, train.compile=true)")
    g.add_argument("--rows", nargs="+", default=None, help="lifter, diffpose, official, video_lifter_T<T> (default: "
                   "all three frame rows and the video lifter at T = 9, 27, 81)")
    g.add_argument("--sizes", nargs="+", default=["cpu"], choices=["cpu", "paper"])
    g.add_argument("--train-steps", type=int, default=5, help="timed steps per row (medians are reported)")
    g.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    g.add_argument("--batch-size", type=int, default=None, help="instead of the row's batch")
    g.add_argument("--prep-rows", type=int, default=20000, help="with --config: training rows the data preparation "
                   "is timed on (evenly thinned)")
    g.add_argument("--official-code", default=None, help="a checkout of the released DiffPose code "
                   "(github.com/GONGJIA0208/Diffpose): its GCNdiff and GCNpose training steps side by side")
    _device_arg(p)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("dashboard", help="open the Streamlit dashboard (streamlit run dashboard/Overview.py)")
    p.add_argument("--results", default=None, help="folder of results .nc files (default $DIFFPOSE_VIZ_RESULTS "
                   "or results/demo)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--headless", action="store_true")
    p.add_argument("--page", default=None, help="open the browser on this page, e.g. Timeline")
    _device_arg(p)
    p.set_defaults(func=cmd_dashboard)

    p = sub.add_parser("wild", help="your own video/image: 2D detector (MediaPipe) -> 3D hypotheses")
    p.add_argument("input", help="video, image or folder of images")
    p.add_argument("--checkpoint", default=None, help="lift to 3D with this checkpoint (else 2D only)")
    p.add_argument("--out", default="runs/wild")
    p.add_argument("--hypotheses", type=int, default=10)
    _sampling_arg(p)
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--stride", type=int, default=1)
    p.add_argument("--force", action="store_true", help="replace the outputs of an earlier run in OUT (refused "
                   "without it)")
    p.add_argument("--calibration", default=None, metavar="METRICS_JSON", help="the metrics JSON of `evaluate` on "
                   "this checkpoint: adds the out-of-domain score, flag and calibrated per-joint radius")
    p.add_argument("--open", action="store_true", help="then open the dashboard on this run's Timeline")
    p.add_argument("--port", type=int, default=8501, help="the dashboard's port (with --open)")
    _device_arg(p)
    p.set_defaults(func=cmd_wild)

    from diffpose_viz.released import KINDS, PROTOCOLS

    p = sub.add_parser("import", help="a released network's file(s) -> a kit checkpoint (docs/RELEASED_MODELS.md)",
                       description="diffpose-frame: gcn_xyz_*.pth [+ diffpose_uvxyz_*.pth]; diffpose-video: "
                       "mixste_cpn_243f.bin + diffpose_video_uvxyz_cpn.pth; mixste: a MixSTE2 .bin; videopose3d: "
                       "a TemporalModel .bin. Writes OUT/best.pt (and OUT/lifter/best.pt for the pairs).")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--out", required=True, help="run folder to write, e.g. runs/diffpose_released")
    p.add_argument("--force", action="store_true", help="replace an existing OUT (refused without it)")
    p.add_argument("--frames", type=int, default=None, help="the receptive field you expect (checked against the file)")
    p.add_argument("--heads", type=int, default=None, help="attention heads (not stored in the files; default the "
                   "released 4 for GCNpose/GCNdiff, 8 for MixSTE2; with diffpose-video it sets MixSTE2's)")
    p.add_argument("--input", choices=["h36m", "coco"], default="h36m", help="videopose3d: the 2D layout the file "
                   "was trained on (h36m: pretrained_h36m_cpn.bin; coco: pretrained_h36m_detectron_coco.bin)")
    p.add_argument("--protocol", choices=list(PROTOCOLS), default="cpn", help="diffpose-frame/-video: the 2D the "
                   "diffusion model was trained for; sets the released test steps of that config (frame cpn: 2 steps "
                   "from t = 24, gt: 2 from 12; video cpn: 1 from 6, gt: 2 from 12) and the default test 2D file")
    p.add_argument("--data", default=None, metavar="DATA_3D", help="the runs' data.path (default "
                   "../data/h36m/data_3d_h36m.npz, as configs/h36m_*.yaml): the Human3.6M file evaluate reads")
    p.add_argument("--train-2d", default=None, metavar="FILE", help="data.train_2d (the 2D of the calibration rows)")
    p.add_argument("--test-2d", default=None, metavar="FILE", help="data.test_2d (default: the CPN file; GT with "
                   "--protocol gt; Detectron COCO with --input coco)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("export", help="one sequence of a results file as MP4, BVH, Rerun .rrd, CSV or JSON",
                       description="MP4: video with the 2D input | 3D with the hypotheses, side by side. BVH: joint "
                       "rotations on an H36M-17 skeleton with the person's median bone lengths (docs/EXPORTS.md). "
                       "rrd: a Rerun recording (needs the 'rerun' extra). CSV/JSON: 3D poses, radius and scores "
                       "per frame.")
    p.add_argument("format", choices=["mp4", "bvh", "rrd", "csv", "json"])
    p.add_argument("results", help="a results .nc file, or a `wild` run folder (its results.nc and video)")
    p.add_argument("--out", required=True, help="the file to write")
    p.add_argument("--sequence", default=None, help="which sequence: an index, or SUBJECT/ACTION/CAMERA "
                   "(default: the first)")
    p.add_argument("--video", default=None, help="the video under the 2D (default: a wild run's own source video)")
    p.add_argument("--hypothesis", type=int, default=None, help="BVH: this hypothesis instead of the mean pose")
    p.add_argument("--fps", type=float, default=None, help="frame rate when there is no video (default 30)")
    p.add_argument("--force", action="store_true", help="replace an existing file (refused without it)")
    p.set_defaults(func=cmd_export)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    debug = args.debug or bool(os.environ.get("DIFFPOSE_VIZ_DEBUG"))
    # Foreseeable errors (bad files, options, data, a full disk, a missing optional package) are one line, exit 1;
    # a real bug in our code is anything else and keeps its traceback, as does every error under --debug.
    return guarded(lambda: args.func(args), f"diffpose-viz {args.command}", code=1, debug=debug, extra=(CLIError,))


if __name__ == "__main__":
    raise SystemExit(main())
