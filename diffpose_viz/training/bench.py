"""`diffpose-viz bench --train`: how fast the trainer trains, and how far below the machine it runs.

Per row (a method and network size) it times real training steps (the trainer's own `make_batch` and
`apply_update`, the method's own loss) split into batching (gathering targets, windows and H_K for the rows),
forward (network and loss, forward diffusion included), backward and optimiser (clip, Adam, EMA), and counts
the FLOPs of one forward + backward with `torch.utils.flop_counter` (matrix products and attention only: a
lower bound), against the float32 and bf16 matrix-product rates it measures on this device. With a config
it also times the once-per-run data preparation (2D simulation, augmentation, depth prior, H_K fitting) on
that config's training rows; without one the rows are synthetic (timing does not depend on the values).

Rows: `lifter` (frame GraFormer lifter), `diffpose` (two-stage stage 2: frozen phi_ST stand-in + denoiser,
GMM forward from H_K), `video_lifter_T<T>` (the temporal lifter `model.video_lifter.kind` names: MixSTE-style by default, `--override
model.video_lifter.kind=tcn` for the TCN, whose receptive field is then T), `diffpose_T<T>` (stage 2 on a
temporal phi_ST), `official` (the official-code mode), and with `official_code` (a checkout of the released DiffPose code, imported from where the user
points, never copied) `official_code_gcndiff` / `official_code_gcnpose`: the released networks trained with
their own loss at their own batch and size.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import logging
import statistics
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from diffpose_viz import inputs
from diffpose_viz.config import ExperimentConfig
from diffpose_viz.initialization.pose_init import PoseGMM
from diffpose_viz.methods import METHODS, get_method
from diffpose_viz.models.dropout import use_dropout_mask
from diffpose_viz.training import perf
from diffpose_viz.training.ema import EMA
from diffpose_viz.training.trainer import apply_update, make_batch

log = logging.getLogger(__name__)

FRAME_ROWS = ("lifter", "diffpose", "official")
VIDEO_FRAMES = (9, 27, 81)
DEFAULT_ROWS = FRAME_ROWS + tuple(f"video_lifter_T{t}" for t in VIDEO_FRAMES)
SIZES = ("cpu", "paper")
#: The paper's sizes: GraFormer / the released GCNdiff (96 wide, 5 layers, dropout 0.25, batch 1024) and
#: MixSTE (512 wide, depth 8, 8 heads). The paper's MixSTE batch does not fit a CPU step in seconds; the
#: paper-size video rows use PAPER_VIDEO_BATCH windows unless a batch is given (the table says which).
PAPER_FRAME = dict(hidden=96, layers=5, heads=4, dropout=0.25, batch=1024)
PAPER_VIDEO = dict(hidden=512, layers=8, heads=8, dropout=0.0, batch=None)
PAPER_VIDEO_BATCH = 32
#: CPU size when no config is given: the bandai CPU configs' network.
CPU_DEFAULT = dict(hidden=64, layers=3, heads=4, dropout=0.1, batch=256)


@dataclass
class TrainBenchRow:
    row: str
    size: str
    method: str
    frames: int  # window length (1: frame input)
    hidden: int
    layers: int
    params: int
    batch_size: int
    amp: str
    threads: int
    compiled: bool
    steps: int
    samples_per_s: float  # training rows (windows) per second, median step
    frames_supervised_per_s: float  # target frames in the loss per second (T per window with the seq2seq loss)
    step_ms: float
    batch_ms: float
    forward_ms: float
    backward_ms: float
    optimizer_ms: float
    flops_per_step: float  # forward + backward, counted
    achieved_gflops: float  # over forward + backward time
    pct_fp32_peak: float
    pct_bf16_peak: float
    context_cache_s: float = 0.0  # once per run: the frozen phi_ST's f_ST of every row (two-stage diffpose)


@dataclass
class BenchReport:
    device: str
    device_name: str
    threads: int
    matmul_peak_fp32_gflops: float
    matmul_peak_bf16_gflops: float | None
    data: str
    data_prep: dict = field(default_factory=dict)
    rows: list[TrainBenchRow] = field(default_factory=list)
    not_run: dict = field(default_factory=dict)  # row -> why


# --------------------------------------------------------------------------- machine


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak_gflops(device: torch.device, n: int | None = None, repeats: int = 10,
                       dtype: torch.dtype = torch.float32) -> float:
    """Measured matrix-product rate (GFLOP/s) on a large square product in `dtype`: the device's practical peak."""
    n = n or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def count_flops(fn) -> float:
    """FLOPs one call of fn executes (matrix products and attention, torch.utils.flop_counter; elementwise
    work is not counted, so a rate from it is a lower bound)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        fn()
    return float(fc.get_total_flops())


def device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    import platform

    return f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} torch threads)"


# --------------------------------------------------------------------------- rows


def parse_row(row: str) -> tuple[str, int | None]:
    """'lifter' -> ('lifter', None); 'video_lifter_T27' / 'diffpose_T9' -> (method, window length)."""
    name, sep, t = row.rpartition("_T")
    if sep and t.isdigit() and name in METHODS and METHODS[name].trainable:
        video = ExperimentConfig()
        video.model.context, video.model.frames = "video", int(t)
        if inputs.window_length(video, METHODS[name]) is not None:  # a method whose network reads windows
            return name, int(t)
    if row in FRAME_ROWS:
        return row, None
    raise ValueError(f"bench --rows: unknown row {row!r}; expected {', '.join(FRAME_ROWS)}, video_lifter_T<T>, "
                     "diffpose_T<T> or official_T<T> (T odd: video windows)")


def row_config(base: ExperimentConfig, row: str, size: str, batch_size: int | None, given: bool) -> ExperimentConfig:
    """The config of one benchmark row: the base config (or the CPU default network) with the row's method,
    context and window length, at the CPU or the paper size."""
    cfg = copy.deepcopy(base)
    m = cfg.model
    name, frames = parse_row(row)
    video = frames is not None
    cfg.method = name
    m.context = "video" if video else "frame"
    if video:
        m.frames = frames
    if size == "paper":
        spec = PAPER_VIDEO if video else PAPER_FRAME
        m.hidden, m.layers, m.heads, m.dropout = spec["hidden"], spec["layers"], spec["heads"], spec["dropout"]
        cfg.train.batch_size = spec["batch"] or PAPER_VIDEO_BATCH
    elif not given:
        m.hidden, m.layers, m.heads, m.dropout = (CPU_DEFAULT[k] for k in ("hidden", "layers", "heads", "dropout"))
        cfg.train.batch_size = CPU_DEFAULT["batch"]
    if batch_size is not None:
        cfg.train.batch_size = int(batch_size)
    cfg.model.context_checkpoint = cfg.official.lifter_checkpoint = None  # stand-in encoders: speed only
    return cfg


def synthetic_split(n: int, frames: int, need_hk: bool, kernels: int, device: torch.device,
                    seq_len: int = 100, seed: int = 0) -> inputs.Feed:
    """n random rows in sequences of seq_len frames (windows edge-padded within them), H_K-shaped mixtures."""
    g = torch.Generator().manual_seed(seed)
    pose3d = 0.3 * torch.randn(n, 17, 3, generator=g)
    pose3d = pose3d - pose3d[:, :1]
    cond = torch.cat([torch.rand(n, 17, 2, generator=g) * 2 - 1, torch.ones(n, 17, 1)], -1)
    windows = None
    if frames > 1:
        seq = np.arange(n) // seq_len
        windows = torch.as_tensor(inputs.sequence_windows(seq, np.arange(n), frames), device=device)
    gmm = None
    if need_hk:
        w = torch.softmax(torch.randn(n, 17, kernels, generator=g), -1)
        mu = pose3d[:, :, None] + 0.05 * torch.randn(n, 17, kernels, 3, generator=g)
        gmm = PoseGMM(w.to(device), mu.to(device), torch.full((n, 17, kernels, 3), 0.01, device=device))
    return _training_feed(cond.to(device), windows, device, pose3d=pose3d.to(device), gmm=gmm)


def _training_feed(cond: torch.Tensor, windows: torch.Tensor | None, device: torch.device, **rows) -> inputs.Feed:
    """A training feed of given tensors (what `make_batch` and the step read; no 2D input or camera behind it)."""
    return inputs.Feed(None, None, "train", rows.pop("det", None), None, None, cond, windows, device, **rows)


def _timed(times: dict, key: str, fn, device: torch.device):
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    times[key] = times.get(key, 0.0) + time.perf_counter() - t0
    return out


class PhaseTimes:
    """Seconds per phase, added up: the hook `inputs.build_feed` and `Feed.with_hk` time their phases with."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, phase: str):
        sync(self.device)
        t0 = time.perf_counter()
        yield
        sync(self.device)
        key = f"{phase}_s"
        self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - t0


def prepare_real(cfg: ExperimentConfig, device: torch.device, max_rows: int | None) -> tuple[inputs.Feed, dict]:
    """The trainer's data preparation of the training split (the same calls; the feed's own phases timed by its
    hook): loading and splitting, augmentation, depth prior, then the feed's 2D simulation (or file input), screen
    normalisation and H_K fitting. `max_rows` evenly thins the training rows first (H_K on 167k rows takes
    minutes). H_K's z comes from the depth prior (the jointly trained DiffPose's feed)."""
    method = get_method("diffpose_joint")
    cfg = dataclasses.replace(cfg, method=method.name)
    timer = PhaseTimes(device)
    with timer("load_and_split"):
        splits = inputs.load_splits(cfg.data, cfg.train.seed)
    train = splits.train.thin(max_rows)
    augmented = None
    if inputs.augmentation_on(cfg):
        with timer("augmentation"):
            augmented = inputs.augment_split(train, cfg, cfg.train.seed)
    with timer("depth_prior"):
        prior = inputs.fit_prior(train if augmented is None else augmented.poses, cfg.init)
    feed = inputs.build_feed(train, cfg, "train", method, device=device, error_model=inputs.fit_error_model(
        splits.train, cfg), augmented=augmented, targets=True, timer=timer).with_hk(prior, timer=timer)
    times = timer.seconds
    n = len(feed)
    report = {"rows": n, "training_rows_in_config": len(splits.train), **times}
    report.update({k.replace("_s", "_ms_per_row"): 1000 * v / max(n, 1) for k, v in times.items()
                   if k != "load_and_split_s"})
    report["note"] = ("once per run (the trainer prepares every training row before the first step and keeps it on "
                      "the device); H_K is cached in the run folder and reused on resume. Per step only the batching "
                      "column remains. Methods without H_K skip hk_fit.")
    return feed, report


def _median_ms(values: list[float]) -> float:
    return 1000 * statistics.median(values) if values else float("nan")


def time_steps(method, cfg: ExperimentConfig, data: inputs.Feed, device: torch.device, steps: int, warmup: int,
               amp: str, compile_net: bool, peaks: tuple[float, float | None], row: str, size: str) -> TrainBenchRow:
    """Train `warmup + steps` real steps on `data` and time each phase; FLOPs from one more step."""
    torch.manual_seed(cfg.train.seed)
    net = use_dropout_mask(method.build_network(cfg).to(device), cfg.train.dropout_mask)
    net.train()
    fwd = perf.forward_module(net, device, amp, compile_net)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.train.lr)
    ema = EMA(net, cfg.train.ema_decay)
    schedule = method.build_schedule(cfg, device)
    noise_gen = torch.Generator(device=device).manual_seed(cfg.train.seed * 1000)
    B = min(cfg.train.batch_size, len(data))
    n = len(data)
    t_cache = {}
    if cfg.train.cache_context:  # as the trainer does
        data = data.with_context(_timed(t_cache, "s", lambda: method.frozen_context(net, data.cond, data.windows, B),
                                        device))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0)).to(device)

    def one_step(i: int, times: dict | None = None):
        t = {} if times is None else times
        s = (i * B) % max(n - B + 1, 1)
        idx = order[s:s + B]
        batch = _timed(t, "batch", lambda: make_batch(data, idx, schedule, noise_gen, cfg), device)
        loss, _ = _timed(t, "forward", lambda: method.loss(fwd, batch), device)
        optimizer.zero_grad(set_to_none=True)
        _timed(t, "backward", loss.backward, device)
        _timed(t, "optimizer", lambda: apply_update(net, optimizer, ema, cfg.train.grad_clip), device)
        return t

    with perf.memory_guard(B, device):
        for i in range(warmup):
            one_step(i)
        per = {"batch": [], "forward": [], "backward": [], "optimizer": []}
        totals = []
        for i in range(steps):
            t = one_step(warmup + i)
            for k in per:
                per[k].append(t[k])
            totals.append(sum(t.values()))
        flops = count_flops(lambda: _fwd_bwd(method, fwd, data, order[:B], schedule, noise_gen, cfg, optimizer))
    step = statistics.median(totals)
    fb = statistics.median([a + b for a, b in zip(per["forward"], per["backward"])])
    frames = inputs.window_length(cfg, method) or 1
    supervised = method.supervised_frames(cfg)
    gflops = flops / fb / 1e9 if fb > 0 else float("nan")
    fp32, bf16 = peaks
    return TrainBenchRow(row, size, cfg.method, frames, cfg.model.hidden, cfg.model.layers,
                         sum(p.numel() for p in net.parameters()), B, amp, torch.get_num_threads(), compile_net, steps,
                         B / step, B * supervised / step, 1000 * step, _median_ms(per["batch"]),
                         _median_ms(per["forward"]), _median_ms(per["backward"]), _median_ms(per["optimizer"]), flops,
                         gflops, 100 * gflops / fp32, 100 * gflops / bf16 if bf16 else float("nan"),
                         t_cache.get("s", 0.0) if data.context is not None else 0.0)


def _fwd_bwd(method, fwd, data, idx, schedule, noise_gen, cfg, optimizer) -> None:
    loss, _ = method.loss(fwd, make_batch(data, idx, schedule, noise_gen, cfg))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()


# --------------------------------------------------------------------------- the released code


def official_code_rows(path: str, device: torch.device, steps: int, warmup: int,
                       peaks: tuple[float, float | None], batch_size: int | None) -> list[TrainBenchRow]:
    """Train steps of the released frame code's networks (GCNdiff with its noise loss on the 17x5 uvxyz state,
    GCNpose with an MPJPE loss), imported from the checkout at `path`, at their own size (96 x 5, dropout
    0.25) and batch (1024), Adam with their lr (2e-5), clipping at 1 and an EMA as the released runner does."""
    root = Path(path).resolve()
    if not (root / "models" / "gcndiff.py").is_file():
        raise FileNotFoundError(f"--official-code {path}: expected the released DiffPose checkout (models/gcndiff.py)")
    sys.path.insert(0, str(root))
    try:
        from models.gcndiff import GCNdiff, adj_mx_from_edges  # the user's checkout, not part of this package
        from models.gcnpose import GCNpose
    finally:
        sys.path.remove(str(root))
    from diffpose_viz.skeleton import H36M17

    edges = torch.tensor(H36M17.bones, dtype=torch.long)
    adj = adj_mx_from_edges(num_pts=17, edges=edges, sparse=False).to(device)
    mask = torch.ones(1, 1, 17, dtype=torch.bool, device=device)
    B = batch_size or PAPER_FRAME["batch"]
    g = torch.Generator().manual_seed(0)
    betas = torch.linspace(1e-4, 1e-3, 51, device=device)  # the released frame config's linear schedule
    abar_all = torch.cumprod(1 - betas, 0)
    rows = []
    for name, coords in (("official_code_gcndiff", [5, 5]), ("official_code_gcnpose", [2, 3])):
        conf = SimpleNamespace(model=SimpleNamespace(hid_dim=96, emd_dim=96, coords_dim=coords, num_layer=5, n_head=4,
                                                     dropout=0.25, n_pts=17))
        torch.manual_seed(0)
        net = (GCNdiff if name.endswith("gcndiff") else GCNpose)(adj, conf).to(device).train()
        opt = torch.optim.Adam(net.parameters(), lr=2e-5)
        ema = EMA(net, 0.999)
        x = torch.randn(B, 17, coords[0], generator=g).to(device)
        y = 0.3 * torch.randn(B, 17, 3, generator=g).to(device)

        def loss_fn():
            if name.endswith("gcnpose"):
                return torch.linalg.vector_norm(net(x, mask) - y, dim=-1).mean()
            t = torch.randint(0, 51, (B // 2 + 1,), device=device)
            t = torch.cat([t, 51 - t - 1])[:B]
            e = torch.randn_like(x)
            a = abar_all[t].view(-1, 1, 1)
            out = net(x * a.sqrt() + e * (1 - a).sqrt(), mask, t.float(), 0)
            return (e - out).square().sum((1, 2)).mean()

        per = {"batch": [], "forward": [], "backward": [], "optimizer": []}
        for i in range(warmup + steps):
            t = {"batch": 0.0}
            loss = _timed(t, "forward", loss_fn, device)
            opt.zero_grad(set_to_none=True)
            _timed(t, "backward", loss.backward, device)
            _timed(t, "optimizer", lambda: apply_update(net, opt, ema, 1.0), device)
            if i >= warmup:
                for k in per:
                    per[k].append(t[k])

        def fb():
            opt.zero_grad(set_to_none=True)
            loss_fn().backward()

        flops = count_flops(fb)
        step = statistics.median([sum(v) for v in zip(*per.values())])
        fbt = statistics.median([a + b for a, b in zip(per["forward"], per["backward"])])
        gflops = flops / fbt / 1e9
        rows.append(TrainBenchRow(name, "paper", "released code", 1, 96, 5, sum(p.numel() for p in net.parameters()), B,
                                  "none", torch.get_num_threads(), False, steps, B / step, B / step, 1000 * step, 0.0,
                                  _median_ms(per["forward"]), _median_ms(per["backward"]),
                                  _median_ms(per["optimizer"]), flops, gflops, 100 * gflops / peaks[0],
                                  100 * gflops / peaks[1] if peaks[1] else float("nan")))
    return rows


# --------------------------------------------------------------------------- the run


def run_train_bench(*, config: str | None = None, overrides: list[str] | None = None, rows=DEFAULT_ROWS,
                    sizes=("cpu",), device: str = "cpu", steps: int = 5, warmup: int = 2, batch_size: int | None = None,
                    official_code: str | None = None, prep_rows: int | None = 20000, synthetic_rows: int = 4096,
                    out: str | None = None, verbose: bool = True) -> BenchReport:
    """Time training steps for every (row, size); returns the report (and writes it as JSON to `out`).
    The speed settings come from the config (`train.amp`, `train.threads`, `train.compile`; set them with
    `overrides`, with or without a config file)."""
    from diffpose_viz.config import apply_overrides, to_dict
    from diffpose_viz.methods import config_from_dict, load_config

    for r in rows:
        parse_row(r)
    bad_sizes = [s for s in sizes if s not in SIZES]
    if bad_sizes:
        raise ValueError(f"bench --sizes: expected {' or '.join(SIZES)}, found {bad_sizes}")
    if steps < 1 or warmup < 0:
        raise ValueError(f"bench --train-steps: expected >= 1 timed steps and >= 0 warm-up, found {steps}, {warmup}")
    dev = torch.device(device)
    if config:
        base = load_config(config, overrides or [])
    else:
        base = config_from_dict(apply_overrides(to_dict(ExperimentConfig()), overrides or [], "bench defaults"),
                                "bench defaults")
    n_threads = perf.apply_threads(base.train.threads)
    amp = perf.resolve_amp(base.train.amp, dev)
    compile_net = base.train.compile
    fp32 = matmul_peak_gflops(dev)
    bf16 = None
    if dev.type == "cuda" or perf.cpu_has_bf16():
        bf16 = matmul_peak_gflops(dev, dtype=torch.bfloat16)
    report = BenchReport(str(dev), device_name(dev), n_threads, fp32, bf16,
                         f"config {config}" if config else f"synthetic ({synthetic_rows} rows)")
    prepared = None
    if config:
        prep_cfg = row_config(base, "diffpose", "cpu", batch_size, True)
        prepared, report.data_prep = prepare_real(prep_cfg, dev, prep_rows)
        if verbose:
            print("data preparation (once per run): " + ", ".join(
                f"{k} {v:.3g}" for k, v in report.data_prep.items() if isinstance(v, (int, float))), flush=True)
    for size in sizes:
        for row in rows:
            cfg = row_config(base, row, size, batch_size, bool(config))
            method = get_method(cfg.method)
            frames = inputs.window_length(cfg, method) or 1
            need_hk = inputs.hk_needed(method, "train")
            if prepared is not None:  # the prepared feed read in this row's windows, with H_K if the row reads it
                data = prepared.with_windows(frames) if need_hk else prepared.with_windows(frames).without_hk()
            else:
                data = synthetic_split(max(synthetic_rows, 2 * cfg.train.batch_size), frames, need_hk,
                                       cfg.init.n_kernels, dev)
            try:
                r = time_steps(method, cfg, data, dev, steps, warmup, amp, compile_net, (fp32, bf16), row, size)
            except perf.BatchTooLarge as err:
                report.not_run[f"{row}/{size}"] = str(err)
                print(f"  {row} ({size}): not run: {err}", flush=True)
                continue
            report.rows.append(r)
            if verbose:
                print(f"  {row:18s} {size:5s} B={r.batch_size:5d}: {r.samples_per_s:8.0f} samples/s, step "
                      f"{r.step_ms:8.1f} ms (batch {r.batch_ms:.1f}, fwd {r.forward_ms:.1f}, bwd {r.backward_ms:.1f}, "
                      f"opt {r.optimizer_ms:.1f}), {r.achieved_gflops:6.1f} GFLOP/s = {r.pct_fp32_peak:4.1f} % of "
                      "fp32 peak", flush=True)
    if official_code:
        try:
            report.rows += official_code_rows(official_code, dev, steps, warmup, (fp32, bf16), batch_size)
        except (ImportError, FileNotFoundError, AttributeError, TypeError) as err:
            report.not_run["official_code"] = f"{type(err).__name__}: {err}"
            print(f"  released code: not run: {err}", flush=True)
    else:
        report.not_run["official_code"] = "no --official-code checkout given"
    print(format_train_table(report))
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(asdict(report), indent=2, default=float))
    return report


def format_train_table(report: BenchReport) -> str:
    bf = f"{report.matmul_peak_bf16_gflops:.1f}" if report.matmul_peak_bf16_gflops else "n/a (no bf16)"
    head = (f"device {report.device} [{report.device_name}]; measured matmul peak fp32 "
            f"{report.matmul_peak_fp32_gflops:.1f} GFLOP/s, bf16 {bf}; data: {report.data}\n"
            "| row | size | width x depth | params | batch | amp | samples/s | frames supervised/s | step ms | batch ms | "
            "fwd ms | bwd ms | opt ms | GFLOP/step | GFLOP/s | % fp32 peak | % bf16 peak |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    body = [f"| {r.row} | {r.size} | {r.hidden} x {r.layers} | {r.params:,} | {r.batch_size} | {r.amp} | "
            f"{r.samples_per_s:.0f} | {r.frames_supervised_per_s:.0f} | {r.step_ms:.1f} | {r.batch_ms:.1f} | "
            f"{r.forward_ms:.1f} | {r.backward_ms:.1f} | {r.optimizer_ms:.1f} | {r.flops_per_step / 1e9:.2f} | "
            f"{r.achieved_gflops:.1f} | {r.pct_fp32_peak:.1f} | {r.pct_bf16_peak:.1f} |" for r in report.rows]
    tail = [f"not run: {k}: {v}" for k, v in report.not_run.items()]
    return "\n".join([head, *body, *tail])
