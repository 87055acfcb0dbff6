#!/usr/bin/env python
"""Train a frame-setting table over several seeds and report mean ± std: phi_ST alone (the lifter), two-stage
DiffPose (GMM forward + H_K), the same with a Gaussian forward, and the official-code mode, every stage-2 row
on its own seed's phi_ST. Test and validation are both evaluated; nothing is chosen on the test split
(best.pt is the trainer's validation pick).

    python scripts/seed_table.py --out runs/r6/paper --seeds 0 1 2 --jobs 2 \
        --override model.hidden=96 --override model.layers=5 \
        --override augmentation.body.enabled=false --override augmentation.view.enabled=false
    python scripts/seed_table.py --config configs/smoke.yaml --out runs/seed_smoke --seeds 0 1   # a minute

Every step is a `diffpose-viz` command run as a subprocess (one intra-op thread each, `--jobs` at once);
finished steps are reused (a run folder with best.pt, a metrics JSON that exists). The table goes to
OUT/table.md with the commands, OUT/table.json with every seed's numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from diffpose_viz.entry import run_script
from diffpose_viz.methods import load_config

REPO = Path(__file__).resolve().parents[1]

#: row -> (method, extra overrides, stage-1 checkpoint key or None)
ROWS = {
    "phi_ST (lifter)": ("lifter", [], None),
    "DiffPose (GMM forward + H_K)": ("diffpose", [], "model.context_checkpoint"),
    "DiffPose, Gaussian forward": ("diffpose", ["diffusion.forward=gaussian"], "model.context_checkpoint"),
    "official-code mode": ("official", [], "official.lifter_checkpoint"),
}
SLUG = {"phi_ST (lifter)": "lifter", "DiffPose (GMM forward + H_K)": "diffpose_gmm",
        "DiffPose, Gaussian forward": "diffpose_gauss", "official-code mode": "official"}


@dataclass
class Step:
    name: str
    cmd: list[str]
    done: Path  # exists once the step has finished
    needs: list[str] = field(default_factory=list)
    log: Path | None = None


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "diffpose_viz.cli", *args]


def _shown(cmd: list[str]) -> str:
    return "diffpose-viz " + " ".join(shlex.quote(c) for c in cmd[3:])


def plan(config: str, out: Path, seeds: list[int], overrides: list[str], rows: list[str]) -> list[Step]:
    steps: list[Step] = []
    for seed in seeds:
        for row in rows:
            method, extra, key = ROWS[row]
            run = out / "runs" / f"{SLUG[row]}_s{seed}"
            ov = [*overrides, f"method={method}", f"train.seed={seed}", *extra]
            needs = []
            if key:
                ov.append(f"{key}={out / 'runs' / f'lifter_s{seed}' / 'best.pt'}")
                needs = [f"train lifter_s{seed}"]
            train = f"train {SLUG[row]}_s{seed}"
            steps.append(Step(train, _cli("train", config, "--out", str(run), "--no-progress",
                                          *[a for o in ov for a in ("--override", o)]),
                              run / "best.pt", needs, run.with_suffix(".log")))
            for split in ("test", "val"):
                res = out / "results" / f"{SLUG[row]}_s{seed}_{split}.nc"
                steps.append(Step(f"eval {split} {SLUG[row]}_s{seed}",
                                  _cli("evaluate", str(run / "best.pt"), "--out", str(res), "--split", split,
                                       "--no-progress"),
                                  res.with_suffix(".metrics.json"), [train], res.with_suffix(".log")))
    return steps


def run_all(steps: list[Step], jobs: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    finished = {s.name for s in steps if s.done.exists()}
    pending = [s for s in steps if s.name not in finished]
    running: dict[str, tuple[subprocess.Popen, float, object]] = {}
    failed: set[str] = set()
    while pending or running:
        for s in list(pending):
            if len(running) >= jobs:
                break
            if any(n in failed for n in s.needs):
                pending.remove(s)
                failed.add(s.name)
                print(f"skip  {s.name}: a step it needs failed", flush=True)
            elif all(n in finished for n in s.needs):
                pending.remove(s)
                s.log.parent.mkdir(parents=True, exist_ok=True)
                fh = open(s.log, "w")
                print(f"start {s.name}: {_shown(s.cmd)}", flush=True)
                running[s.name] = (subprocess.Popen(s.cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=REPO),
                                   time.time(), fh)
        time.sleep(2)
        for name, (proc, t0, fh) in list(running.items()):
            if proc.poll() is None:
                continue
            fh.close()
            del running[name]
            if proc.returncode == 0:
                finished.add(name)
                print(f"done  {name} in {time.time() - t0:.0f} s", flush=True)
            else:
                failed.add(name)
                print(f"FAIL  {name} (rc {proc.returncode}); see its log", flush=True)
        if not running and pending and not any(all(n in finished for n in s.needs) or
                                               any(n in failed for n in s.needs) for s in pending):
            raise SystemExit("seed_table: nothing left can run (a dependency never finished)")


def _metrics(path: Path) -> dict:
    m = json.loads(path.read_text())
    mh = m.get("multi_hypothesis_P1_mm_action_wise") or {}
    unc = m.get("uncertainty") or {}
    cov = (unc.get("coverage_calibrated") or {}).get("90")
    corr = (unc.get("correlation") or {}).get("pearson")
    return {"P1": m["P1_mm_action_wise"], "P2": m["P2_mm_action_wise"],
            "occluded P1": m.get("P1_mm_occluded_joints"), "visible P1": m.get("P1_mm_visible_joints"),
            "J-Best (ORACLE)": mh.get("J-Best (ORACLE)") if m.get("n_hypotheses", 1) > 1 else None,
            "spread mm": unc.get("mean_spread_mm"),
            "90% coverage": None if cov is None else 100 * cov, "spread-error r": corr}


def _ms(values: list) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "—"
    if len(vals) == 1:
        return f"{vals[0]:.1f}"
    return f"{statistics.mean(vals):.1f} ± {statistics.stdev(vals):.1f}"


def table(out: Path, seeds: list[int], rows: list[str], steps: list[Step]) -> str:
    data: dict = {}
    for row in rows:
        for seed in seeds:
            per = {}
            for split in ("test", "val"):
                f = out / "results" / f"{SLUG[row]}_s{seed}_{split}.metrics.json"
                if f.exists():
                    per[split] = _metrics(f)
            data.setdefault(row, {})[seed] = per
    cols = ["val P1", "P1", "P2", "occluded P1", "visible P1", "J-Best (ORACLE)", "spread mm", "90% coverage",
            "spread-error r", "vs phi_ST"]
    lines = ["| row | seeds | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 2)]
    for row in rows:
        got = {s: d for s, d in data[row].items() if "test" in d}
        vals: dict[str, list] = {c: [] for c in cols}
        for s, d in got.items():
            for c in cols[1:-1]:
                vals[c].append(d["test"][c])
            vals["val P1"].append(d.get("val", {}).get("P1"))
            base = data["phi_ST (lifter)"].get(s, {}).get("test") if "phi_ST (lifter)" in data else None
            vals["vs phi_ST"].append(None if not base else d["test"]["P1"] / base["P1"])
        cells = []
        for c in cols:
            if c == "vs phi_ST":
                v = [x for x in vals[c] if x is not None]
                cells.append("—" if not v else (f"{statistics.mean(v):.3f}" + (f" ± {statistics.stdev(v):.3f}"
                                                                               if len(v) > 1 else "")))
            elif c == "spread-error r":
                v = [x for x in vals[c] if x is not None]
                cells.append("—" if not v else f"{statistics.mean(v):.2f}")
            else:
                cells.append(_ms(vals[c]))
        lines.append(f"| {row} | {','.join(str(s) for s in sorted(got))} | " + " | ".join(cells) + " |")
    (out / "table.json").write_text(json.dumps(data, indent=1))
    cmds = "\n".join(_shown(s.cmd) for s in steps)
    return "\n".join(lines) + "\n\nMean ± sample std over seeds; test rows, validation P1 from `--split val`.\n\n" \
        "```bash\n" + cmds + "\n```\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/bandai_cpu.yaml")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    ap.add_argument("--override", action="append", default=[], help="applied to every training run")
    ap.add_argument("--jobs", type=int, default=2, help="steps at once (one thread each)")
    ap.add_argument("--table-only", action="store_true", help="write the table from what has finished")
    a = ap.parse_args(argv)
    if a.jobs < 1:
        ap.error(f"--jobs must be at least 1, got {a.jobs}")
    rows = [r for r in ROWS if r in a.rows]
    if any(ROWS[r][2] for r in rows) and "phi_ST (lifter)" not in rows:
        rows.insert(0, "phi_ST (lifter)")  # the stage-2 rows need their seed's phi_ST
    load_config(a.config, a.override)  # a bad config is one line naming file and key, before anything runs
    steps = plan(a.config, a.out, a.seeds, a.override, rows)
    if not a.table_only:
        run_all(steps, a.jobs)
    text = table(a.out, a.seeds, rows, steps)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    raise SystemExit(run_script(main))  # one-line errors, exit 2 (diffpose_viz.entry)
