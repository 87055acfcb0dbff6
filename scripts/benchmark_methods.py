#!/usr/bin/env python
"""Train and evaluate DiffPose, every baseline and the official mode on one config, in three 2D-input
settings (simulated detector with occlusion, without occlusion, ground-truth 2D), plus ablations
(GMM vs Gaussian forward, kernels M, DDIM steps K, hypotheses N). Writes a markdown table with the
exact command of every row, the hardware and the wall time.

    python scripts/benchmark_methods.py                                   # configs/bandai_cpu.yaml, ~1 h on 2 cores
    python scripts/benchmark_methods.py --config configs/smoke.yaml --out runs/bench_smoke   # a minute
    python scripts/benchmark_methods.py --dry-run                          # print the plan only
    python scripts/benchmark_methods.py --methods diffpose                 # main rows: lifter + diffpose only
    python scripts/benchmark_methods.py --no-ablations --settings detector+occlusion --leave-one-source-out \
        --calibrate-with data/cache/unseen_views/data_3d_bandai17_val_views.npz \
        --override "data.extra_train=[{path: data/cache/cmu_bvh/data_3d_cmu_bvh.npz, subjects: [cmu131], name: cmu}]"

Real people (docs/benchmarks/people.md): held-out people as extra test sets (`--people LABEL=DATA_3D:PEOPLE`, a
cross-person row per label), leave-one-source-out restricted to named sources, and held-out calibration people:

    python scripts/benchmark_methods.py --config configs/people_cpu.yaml --out runs/people --no-ablations \
        --settings detector+occlusion --methods lifter diffpose --only-loso --leave-one-source-out cmu \
        --people "HDM05 mm=data/cache/hdm05/data_3d_hdm05.npz:mm" \
        --people "ReActIdle 012=data/cache/reactidle/data_3d_reactidle.npz:ri012" \
        --calibrate-with data/cache/hdm05/data_3d_hdm05.npz:bk \
        --calibrate-with data/cache/reactidle/data_3d_reactidle.npz:ri013

Every step is a `diffpose-viz` command run as a subprocess, so the table's commands are exactly what
ran. Finished runs are reused (a run folder with best.pt is not retrained) unless --force.
Results files land in OUT/results/<setting>/<model>.nc, one folder per setting, ready for the dashboard.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from diffpose_viz.config import to_dict
from diffpose_viz.methods import METHODS, applicable, load_config, training_order
from diffpose_viz.entry import run_script

REPO = Path(__file__).resolve().parents[1]

SETTINGS = {
    "detector+occlusion": ["data.input_2d=detector_sim", "data.occlusion=true"],
    "detector, no occlusion": ["data.input_2d=detector_sim", "data.occlusion=false"],
    "GT 2D": ["data.input_2d=gt"],
}
SLUG = {"detector+occlusion": "det_occ", "detector, no occlusion": "det_noocc", "GT 2D": "gt2d"}
#: Generalisation test sets: label -> (data file, subjects or None for the config's test subjects).
Generalisation = dict[str, tuple[Path, "list[str] | None"]]


@dataclass
class Row:
    setting: str
    method: str
    variant: str
    run_dir: Path
    train_overrides: list[str]
    eval_args: list[str] = field(default_factory=list)
    results: Path | None = None
    commands: list[str] = field(default_factory=list)
    train_s: float | None = None
    eval_s: float | None = None
    metrics: dict | None = None
    extra_metrics: dict = field(default_factory=dict)  # 'cross-body' / 'unseen views' -> metrics JSON
    extra_auroc: dict = field(default_factory=dict)  # the same labels -> AUROC of the out-of-domain score
    held_out: tuple[Path, list[str]] | None = None  # leave-one-source-out: the source's file and subjects
    error: str | None = None


def plan(out: Path, ablations: bool, settings: list[str], cfg, loso: bool | list[str] = False,
         methods: list[str] | None = None, main_rows: bool = True) -> list[Row]:
    """The rows for the methods `cfg` can run (methods.applicable), stage 1 of each two-stage method first;
    with `methods`, the main rows of those only (plus the stage 1 a two-stage one needs)."""

    def overrides(method: str, slug: str, setting: str) -> list[str]:
        ov = [f"method={method}", *SETTINGS[setting]]
        if METHODS[method].lifter_checkpoint_key:  # the two-stage methods read their stage 1's checkpoint
            stage1 = out / "runs" / slug / METHODS[method].stage1(cfg) / "best.pt"
            ov.append(f"{METHODS[method].lifter_checkpoint_key}={stage1}")
        return ov

    chosen = applicable(cfg)
    if methods is not None:
        wanted = set(methods) | {METHODS[m].stage1(cfg) for m in methods} - {None}
        chosen = [m for m in chosen if m in wanted]
    rows: list[Row] = []
    for setting in settings if main_rows else []:
        slug = SLUG[setting]
        for method in training_order(chosen):  # dependencies first: the official mode starts from the lifter
            rows.append(Row(setting, method, "main", out / "runs" / slug / method, overrides(method, slug, setting),
                            results=out / "results" / slug / f"{METHODS[method].model_name}.nc"))
    if loso:  # leave one source of data.extra_train out: the lifter and DiffPose trained without it, tested on it
        setting, slug = settings[0], SLUG[settings[0]]
        sources = to_dict(cfg)["data"]["extra_train"]
        for i, src in enumerate(sources):
            keep = json.dumps([x for j, x in enumerate(sources) if j != i])
            name = src.get("name") or Path(src["path"]).stem
            if isinstance(loso, list) and loso and name not in loso:  # only the named sources are left out
                continue
            lifter_dir = out / "runs" / slug / f"lifter_without_{name}"
            for method, run_dir in (("lifter", lifter_dir), ("diffpose", out / "runs" / slug / f"diffpose_without_{name}")):
                ov = [f"method={method}", *SETTINGS[setting], f"data.extra_train={keep}"]
                if METHODS[method].lifter_checkpoint_key:  # stage 2 starts from the lifter trained beside it
                    ov.append(f"{METHODS[method].lifter_checkpoint_key}={lifter_dir / 'best.pt'}")
                rows.append(Row(setting, method, f"without source {name}", run_dir, ov,
                                results=out / "results" / f"{slug}_loso" / f"{method}_without_{name}.nc",
                                held_out=(Path(src["path"]).resolve(), list(src["subjects"]))))
    if not ablations:
        return rows
    setting, slug = settings[0], SLUG[settings[0]]
    main = out / "runs" / slug / "diffpose"
    for m in (1, 3):
        rows.append(Row(setting, "diffpose", f"M={m} kernels", out / "runs" / slug / f"diffpose_M{m}",
                        [*overrides("diffpose", slug, setting), f"init.n_kernels={m}"],
                        results=out / "results" / f"{slug}_ablation" / f"diffpose_M{m}.nc"))
    for n in (1, 10, 20):
        rows.append(Row(setting, "diffpose", f"N={n} hypotheses", main, [], ["--hypotheses", str(n)],
                        results=out / "results" / f"{slug}_ablation" / f"diffpose_N{n}.nc"))
    for k in (1, 2, 10):
        rows.append(Row(setting, "diffpose", f"K={k} DDIM steps", main, [], ["--steps", str(k)],
                        results=out / "results" / f"{slug}_ablation" / f"diffpose_K{k}.nc"))
    return rows


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "diffpose_viz.cli", *args]


def _shown(cmd: list[str]) -> str:
    return "diffpose-viz " + " ".join(shlex.quote(c) for c in cmd[3:])


def run(cmd: list[str], log: Path) -> float:
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with open(log, "a") as f:
        f.write(f"\n$ {_shown(cmd)}\n")
        f.flush()
        proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = log.read_text().splitlines()[-5:]
        raise RuntimeError(f"exit {proc.returncode}: " + " | ".join(tail))
    return time.perf_counter() - t0


def execute(row: Row, config: Path, device: str, extra: list[str], force: bool, record: bool,
            generalisation: Generalisation, calibrate_with: list[str] = ()) -> None:
    ckpt = row.run_dir / "best.pt"
    log = row.run_dir.parent / f"{row.run_dir.name}.log"
    if row.train_overrides:
        cmd = _cli("train", str(config), "--out", str(row.run_dir), "--device", device, "--no-progress", "--force")
        for o in [*extra, *row.train_overrides]:
            cmd += ["--override", o]
        row.commands.append(_shown(cmd))
        if force or not ckpt.exists():
            row.train_s = run(cmd, log)
    cal = [a for path in calibrate_with for a in ("--calibrate-with", str(path))]
    ev = _cli("evaluate", str(ckpt), "--out", str(row.results), "--device", device, "--no-progress", "--force",
              *row.eval_args, *cal)
    if record and row.variant == "main" and METHODS[row.method].has_trajectory:
        ev.append("--record-trajectory")
    row.commands.append(_shown(ev))
    row.eval_s = run(ev, log)
    row.metrics = json.loads(row.results.with_suffix(".metrics.json").read_text())
    if row.variant != "main" and row.held_out is None:
        return
    sets = dict(generalisation)
    if row.held_out is not None:
        sets["held-out source"] = row.held_out
    for label, (data, subjects) in sets.items():  # the same checkpoint on bodies / views / a source never seen
        res = row.results.with_name(f"{row.results.stem}_{label.replace(' ', '_')}.nc")
        ev = _cli("evaluate", str(ckpt), "--out", str(res), "--device", device, "--no-progress", "--force",
                  "--data", str(data),
                  "--max-samples", "3000", *(["--subjects", *subjects] if subjects else []), *cal)
        row.commands.append(_shown(ev))
        run(ev, log)
        row.extra_metrics[label] = json.loads(res.with_suffix(".metrics.json").read_text())
        row.extra_auroc[label] = _auroc(row.results, res)


def _auroc(in_domain: Path, other: Path) -> float | None:
    """AUROC of the out-of-domain score: in-domain test rows against the other set's rows (None without it)."""
    from diffpose_viz.results import load_results
    from diffpose_viz.ood import auroc

    a, b = load_results(in_domain), load_results(other)
    if "ood_score" not in a or "ood_score" not in b:
        return None
    return auroc(a["ood_score"].values, b["ood_score"].values)


def hardware(device: str) -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    s = f"{cpu}, {os.cpu_count()} logical CPUs visible, torch {torch.__version__} ({torch.get_num_threads()} threads)"
    if device.startswith("cuda") and torch.cuda.is_available():
        s += f", GPU {torch.cuda.get_device_name()}"
    return s + f", device `{device}`"


def fmt(v, digits: int = 1) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def table(rows: list[Row], config: Path, device: str, wall: float) -> str:
    lines = [f"# Method benchmark on `{config}`", "",
             f"- date: {dt.datetime.now().isoformat(timespec='seconds')}",
             f"- hardware: {hardware(device)}",
             f"- total wall time: {wall / 60:.1f} min (training reused from earlier runs counts as 0)",
             "- P1 = MPJPE, P2 = PA-MPJPE (mm, action-wise mean over action groups of the test subjects); PCK@150 and "
             "AUC over the official 14 joints (%). P-Agg = mean of the N hypotheses (the paper's output), J-Agg = "
             "per-joint hypothesis closest to the 2D input in reprojection. **P-Best and J-Best use the ground truth "
             "(oracle)** and are not test-time results.",
             "- Model selection used the validation sequences of the training subjects only, never the test split.",
             "- Cross-body: bodies never seen in training (other people's motion capture); unseen views: the test "
             "subjects from four new cameras (`scripts/unseen_views.py`). Ratio = their P1 / in-domain P1. Spread r: "
             "Pearson r of per-joint hypothesis spread and error (N > 1). 90 % cal.: coverage of the validation-"
             "calibrated 90 % interval on test (docs/RESULTS_SCHEMA.md); cond.: the score-conditional one that gives "
             "the radius (`radius_from`: normalised or per_component), in-domain / cross-body / unseen views / "
             "held-out source. AUROC: the out-of-domain score, in-domain "
             "test rows against cross-body / unseen-view / held-out-source rows. Leave-one-source-out rows are trained "
             "without one `data.extra_train` source and tested on it (P1 there; ratio to their in-domain P1).",
             "", "| setting | method | variant | P1 | P2 | J-Agg P1 | P-Best P1 (oracle) | J-Best P1 (oracle) | PCK | "
             "AUC | P1 occluded joints | P1 cross-body (ratio) | P2 cross-body | P1 unseen views (ratio) | "
             "P1 held-out source (ratio) | spread r | 90 % cal. | 90 % cond. | AUROC | train s | eval s | commands |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        m = r.metrics or {}
        mh = m.get("multi_hypothesis_P1_mm_action_wise", {})
        cmds = "<br>".join(f"`{c}`" for c in r.commands) or "—"
        if r.error:
            lines.append(f"| {r.setting} | {r.method} | {r.variant} | failed: {r.error[:200]} ||||||||||| {cmds} |")
            continue
        p1 = m.get("P1_mm_action_wise")

        def general(label: str, key: str = "P1_mm_action_wise", ratio: bool = True) -> str:
            g = r.extra_metrics.get(label, {}).get(key)
            if g is None:
                return "—"
            return f"{g:.1f} ({g / p1:.2f}×)" if ratio and p1 else f"{g:.1f}"

        unc = m.get("uncertainty") or {}
        cal = (unc.get("coverage_calibrated") or {}).get("90")
        labels = ("cross-body", "unseen views", "held-out source")

        def cond(metrics: dict) -> str:
            o = (metrics.get("uncertainty") or {}).get("ood") or {}
            v = o.get("coverage_conditional") or {}  # the calibration the results' radius comes from
            v = (v.get(o.get("radius_from", "normalised")) or {}).get("90")
            return "—" if v is None else f"{100 * v:.0f}"

        conds = " / ".join([cond(m), *(cond(r.extra_metrics[k]) for k in labels if k in r.extra_metrics)])
        aurocs = " / ".join(fmt(r.extra_auroc.get(k), 2) for k in labels if k in r.extra_auroc) or "—"
        lines.append(f"| {r.setting} | {r.method} | {r.variant} | {fmt(p1)} | "
                     f"{fmt(m.get('P2_mm_action_wise'))} | {fmt(mh.get('J-Agg'))} | {fmt(mh.get('P-Best (ORACLE)'))} | "
                     f"{fmt(mh.get('J-Best (ORACLE)'))} | {fmt(m.get('PCK150_14joints_pct'))} | "
                     f"{fmt(m.get('AUC_14joints_pct'))} | {fmt(m.get('P1_mm_occluded_joints'))} | "
                     f"{general('cross-body')} | {general('cross-body', 'P2_mm_action_wise', False)} | "
                     f"{general('unseen views')} | {general('held-out source')} | "
                     f"{fmt((unc.get('correlation') or {}).get('pearson'), 2)} | "
                     f"{'—' if cal is None else f'{100 * cal:.0f} %'} | {conds} | {aurocs} | {fmt(r.train_s, 0)} | "
                     f"{fmt(r.eval_s, 0)} | {cmds} |")
    return "\n".join(lines) + "\n"


def people_table(rows: list[Row]) -> str:
    """One line per (model, test set): P1, P2, ratio to the model's in-domain P1, calibrated 90 % coverage (the
    conditional calibration that gives the radius), mean radius, spread-error r and the out-of-domain AUROC."""
    lines = ["| method | variant | test set | P1 | P2 | ratio | 90 % cov. (cond.) | mean radius mm | spread r | "
             "AUROC |", "|---|---|---|---|---|---|---|---|---|---|"]

    def cells(m: dict) -> tuple[str, str, str]:
        o = (m.get("uncertainty") or {}).get("ood") or {}
        cov = ((o.get("coverage_conditional") or {}).get(o.get("radius_from", "normalised")) or {}).get("90")
        r = ((m.get("uncertainty") or {}).get("correlation") or {}).get("pearson")
        return ("—" if cov is None else f"{100 * cov:.0f} % ({o.get('radius_from')})", fmt(o.get("mean_radius_mm")),
                fmt(r, 2))

    for r in rows:
        if r.error or not r.metrics:
            continue
        p1 = r.metrics.get("P1_mm_action_wise")
        sets = [("in-domain test", r.metrics, None),
                *((k, v, r.extra_auroc.get(k)) for k, v in r.extra_metrics.items())]
        for label, m, auc in sets:
            g = m.get("P1_mm_action_wise")
            ratio = "1.00" if m is r.metrics else ("—" if g is None or not p1 else f"{g / p1:.2f}")
            lines.append(f"| {r.method} | {r.variant} | {label} | {fmt(g)} | {fmt(m.get('P2_mm_action_wise'))} | "
                         f"{ratio} | {' | '.join(cells(m))} | {fmt(auc, 2)} |")
    return "\n".join(lines) + "\n"


def parse_people(specs: list[str]) -> Generalisation:
    """`LABEL=DATA_3D:P1,P2` -> {LABEL: (path, [P1, P2])}: held-out people evaluated as a cross-person row."""
    out: Generalisation = {}
    for spec in specs:
        label, eq, rest = spec.partition("=")
        path, colon, people = rest.rpartition(":")
        if not (eq and colon and path and people):
            raise SystemExit(f"--people {spec!r}: expected LABEL=DATA_3D:PERSON[,PERSON...]")
        out[label] = (Path(path).resolve(), people.split(","))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="configs/bandai_cpu.yaml")
    ap.add_argument("--out", default="runs/benchmark")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--override", action="append", default=[], help="applied to every training run")
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--no-ablations", action="store_true")
    ap.add_argument("--methods", nargs="+", default=None, choices=list(METHODS), metavar="METHOD",
                    help="main rows for these methods only (a two-stage method brings its stage 1); default: "
                         "every method the config can run")
    ap.add_argument("--record-trajectory", action="store_true", help="store trajectories of the main diffusion rows")
    ap.add_argument("--force", action="store_true", help="retrain even when a run folder has best.pt")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    ap.add_argument("--cross-body", default="data/cache/cross_body/data_3d_cross_body.npz",
                    help="other people's mocap (python -m diffpose_viz.datasets.cross_body); skipped when missing")
    ap.add_argument("--cross-body-subjects", nargs="+", default=["lafan_a", "lafan_b", "metarig", "cmu01"])
    ap.add_argument("--unseen-views", default="data/cache/unseen_views/data_3d_bandai17_unseen_views.npz",
                    help="the test subjects from new cameras (scripts/unseen_views.py); skipped when missing")
    ap.add_argument("--calibrate-with", action="append", default=[], metavar="DATA_3D",
                    help="passed to every evaluate: validation rows of a held-out domain choose the conditional "
                         "calibration's slope (e.g. data/cache/unseen_views/data_3d_bandai17_val_views.npz)")
    ap.add_argument("--leave-one-source-out", nargs="*", default=None, metavar="SOURCE",
                    help="add lifter and DiffPose rows trained without each data.extra_train source (or only the "
                         "named ones), tested on it")
    ap.add_argument("--only-loso", action="store_true", help="skip the main rows (train only the left-out models)")
    ap.add_argument("--people", action="append", default=[], metavar="LABEL=DATA_3D:PEOPLE",
                    help="held-out people as another test set of every main and left-out model (cross-person rows), "
                         "e.g. 'HDM05 mm=data/cache/hdm05/data_3d_hdm05.npz:mm'; never trained or calibrated on")
    args = ap.parse_args(argv)
    generalisation: Generalisation = {}  # other people's mocap; the test styles from four new cameras
    if Path(args.cross_body).exists():
        generalisation["cross-body"] = (Path(args.cross_body).resolve(), list(args.cross_body_subjects))
    if Path(args.unseen_views).exists():
        generalisation["unseen views"] = (Path(args.unseen_views).resolve(), None)
    generalisation.update(parse_people(args.people))
    config, out = Path(args.config).resolve(), Path(args.out).resolve()
    if not config.exists():
        ap.error(f"--config {config} does not exist")
    cfg = load_config(config, args.override)
    loso = args.leave_one_source_out  # None: off; []: every source; names: those
    if loso is not None and not cfg.data.extra_train:
        ap.error("--leave-one-source-out needs data.extra_train sources (in the config or an --override)")
    rows = plan(out, not args.no_ablations, args.settings, cfg, [] if loso is None else (loso or True),
                args.methods, main_rows=not args.only_loso)
    t0 = time.perf_counter()
    for i, r in enumerate(rows, 1):
        label = f"[{i}/{len(rows)}] {r.setting} / {r.method} / {r.variant}"
        if args.dry_run:
            print(label)
            continue
        print(label, flush=True)
        try:
            execute(r, config, args.device, args.override, args.force, args.record_trajectory, generalisation,
                    args.calibrate_with)
            m = r.metrics
            print(f"    P1 {m['P1_mm_action_wise']:.1f} mm, P2 {m['P2_mm_action_wise']:.1f} mm "
                  f"(train {fmt(r.train_s, 0)} s, eval {fmt(r.eval_s, 0)} s)", flush=True)
        except RuntimeError as err:
            r.error = str(err)
            print(f"    FAILED: {err}", flush=True)
    if args.dry_run:
        return 0
    out.mkdir(parents=True, exist_ok=True)
    md = table(rows, Path(args.config), args.device, time.perf_counter() - t0)
    if args.people or loso is not None:
        md += "\n## Real people: every model on every test set\n\n" + people_table(rows)
    (out / "benchmark.md").write_text(md)
    print(md)
    print(f"wrote {out / 'benchmark.md'}")
    return 1 if any(r.error for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))  # one-line errors, exit 2 (diffpose_viz.entry)
