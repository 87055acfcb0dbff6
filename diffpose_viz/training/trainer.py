"""Training loop for every method: Adam, gradient clipping, an EMA that is what gets evaluated,
validation on held-out training sequences (never the test split), atomic checkpoints, exact resume.

Hot path: all training tensors (3D targets, 2D inputs, H_K parameters) are pre-normalised and live
on the device; a batch is an index tensor into them, so there is no per-sample Python work.

Resume is bit-for-bit: the data order is a pure function of (seed, epoch) and the position inside
the epoch is saved, together with model, EMA, optimiser, the noise generator and the global
torch/numpy/python RNG states.
"""
from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from diffpose_viz import distributed as ddp
from diffpose_viz import inputs
from diffpose_viz.atomic import (abort_replacement, begin_replacement, clean_stale_temporaries, commit_replacement,
                                 staging_dir)
from diffpose_viz.checkpoint import (
    load_checkpoint,
    load_weights,
    restore_run_folder,
    rng_state,
    save_checkpoint,
    set_rng_state,
    versions,
)
from diffpose_viz.config import ExperimentConfig, config_diff, from_dict, save_config, to_dict
from diffpose_viz.datasets.poses import join_pose_sets
from diffpose_viz.errors import CheckpointError, InputError
from diffpose_viz.inference import SamplingSetting, predict
from diffpose_viz.inputs.leakage import check_training_sources
from diffpose_viz.methods import LoadedModel, Method, TrainBatch, check_config
from diffpose_viz.models.dropout import use_dropout_mask
from diffpose_viz.progress import Progress
from diffpose_viz.run_lock import run_lock
from diffpose_viz.training import perf
from diffpose_viz.training.ema import EMA

log = logging.getLogger(__name__)

#: Config keys that may change between a run and its resumption (they do not affect the trajectory).
RESUMABLE_KEYS = ("train.epochs", "train.max_steps", "train.log_every", "train.progress", "device",
                  "train.eval_every", "train.val_max_samples", "train.val_hypotheses", "name")


class RunFolderError(ValueError):
    """The run folder holds an earlier run (or is not a folder)."""


def make_batch(data: inputs.Feed, idx: torch.Tensor, schedule, noise_gen: torch.Generator,
               cfg: ExperimentConfig) -> TrainBatch:
    """The training batch of rows idx: targets, network input (windows gathered), H_K when the loss reads it (the
    training feed holds H_K exactly then)."""
    gmm = data.gmm.select(idx) if data.gmm is not None else None
    window_targets = None if data.windows is None else data.pose3d[data.windows[idx]]
    if data.context is not None:
        return TrainBatch(data.pose3d[idx], data.context[idx], gmm, schedule, noise_gen, cfg, window_targets, True)
    return TrainBatch(data.pose3d[idx], data.network_input(idx), gmm, schedule, noise_gen, cfg, window_targets)


def apply_update(net: nn.Module, optimizer: torch.optim.Optimizer, ema: EMA, grad_clip: float) -> torch.Tensor:
    """After backward: clip the gradient norm, take the optimiser step, update the EMA; returns the norm."""
    gnorm = nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
    optimizer.step()
    ema.update(net)
    return gnorm


@dataclass
class TrainResult:
    out_dir: Path
    last: Path
    best: Path | None
    steps: int
    best_val_mpjpe_mm: float | None
    wall_s: float
    history: list[dict] = field(default_factory=list)


class Trainer:
    def __init__(self, cfg: ExperimentConfig, out_dir: str | Path, *, device: str | None = None,
                 resume: bool = False, progress: bool | None = None, force: bool = False,
                 allow_leakage: bool = False, hk_cache: str | Path | None = None) -> None:
        if device is not None:
            cfg.device = device
        self.cfg = cfg
        self.allow_leakage = allow_leakage
        self.hk_cache = None if hk_cache is None else Path(hk_cache)
        self.method: Method = check_config(cfg, "config", warn=False)  # load_config warned already
        self.out_dir = self.final_dir = Path(out_dir)
        self.resume = resume
        self.force = force
        restore_run_folder(self.final_dir)  # a killed swap: the earlier run is back (kept, or replaced by force)
        # --force over an earlier run: train in a folder beside it, swapped in only when training succeeded.
        self.replacing = force and not resume and self.final_dir.is_dir() and any(
            (self.final_dir / name).exists() for name in self.RUN_FILES)
        if self.replacing:
            self.out_dir = staging_dir(self.final_dir)
        self.info, self.device = ddp.init(cfg.device)
        self.progress = (cfg.train.progress if progress is None else progress) and self.info.is_main
        self.history: list[dict] = []
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.best_val = math.inf
        self.best_step = -1

    # ------------------------------------------------------------------ set-up
    def setup(self) -> None:
        cfg, info, method = self.cfg, self.info, self.method
        t0 = time.perf_counter()
        if info.is_main:
            self._claim_out_dir()
            if not self.resume:
                save_config(cfg, self.out_dir / "config.yaml")
        self.threads = perf.apply_threads(cfg.train.threads)
        _seed_everything(cfg.train.seed)
        splits = inputs.load_splits(cfg.data, cfg.train.seed)
        if len(splits.train) == 0:
            raise InputError(f"{cfg.data.path}: no training rows for subjects {cfg.data.train_subjects}")
        # test rows must not reach training or model selection, whatever their source calls them
        check_training_sources(cfg.data, join_pose_sets([splits.train, splits.val]), cfg.train.seed,
                               allow=self.allow_leakage)
        # Thinned validation rows; for video windows their neighbouring frames stay (unscored).
        val_rows = inputs.scored_rows(splits.val, cfg.train.val_max_samples, cfg, method)
        # Body/view augmentation: one seeded draw over the training rows (validation stays real).
        augmented = inputs.augment_split(splits.train, cfg, cfg.train.seed) if inputs.augmentation_on(cfg) else None
        prior_rows = splits.train if augmented is None else augmented.poses
        self.prior = inputs.fit_prior(prior_rows, cfg.init) if method.needs_depth_prior else None
        cache_dir = self.hk_cache or self.out_dir / "cache"
        if self.hk_cache is not None and info.is_main:
            self.hk_cache.mkdir(parents=True, exist_ok=True)
        self.error_model = inputs.fit_error_model(splits.train, cfg)  # 2D files: detection errors, training rows
        self.extras_payload = method.training_extras(cfg)
        self.extras = method.restore_extras(cfg, self.extras_payload, "config", self.device)
        # Rank 0 fits H_K first (and caches it); the other ranks then read the cache instead of refitting.
        for turn in ("main", "others") if info.enabled else ("main",):
            if (turn == "main") == info.is_main:
                self.train_data = inputs.build_feed(
                    splits.train, cfg, "train", method, device=self.device, error_model=self.error_model,
                    augmented=augmented, targets=True,
                ).with_hk(self.prior, self.extras, cache=cache_dir, progress=self.progress)
                self.val_data = inputs.build_feed(
                    val_rows.poses, cfg, "val", method, device=self.device, error_model=self.error_model,
                    windows=val_rows.windows, scored=val_rows.scored, targets=True,
                ).with_hk(self.prior, self.extras, cache=cache_dir, progress=self.progress)
            ddp.barrier()
        torch.manual_seed(cfg.train.seed)  # identical initial weights on every rank
        self.net = method.network(cfg, self.extras)
        self.schedule = method.build_schedule(cfg, self.device)
        self.noise_gen = torch.Generator(device=self.device).manual_seed(cfg.train.seed * 1000 + info.rank)
        torch.manual_seed(cfg.train.seed + info.rank)  # dropout differs per rank, as with independent batches
        if self.net is not None:
            self.net = use_dropout_mask(self.net.to(self.device), cfg.train.dropout_mask)
            self.model: nn.Module = self.net
            if info.enabled:
                ids = [self.device.index] if self.device.type == "cuda" else None
                self.model = nn.parallel.DistributedDataParallel(self.net, device_ids=ids)
            # A frozen encoder (two-stage DiffPose's phi_ST) encodes every training row once, not in every step.
            if cfg.train.cache_context:
                per_rank = max(cfg.train.batch_size // info.world_size, 1)
                self.train_data = self.train_data.with_context(method.frozen_context(
                    self.net, self.train_data.cond, self.train_data.windows, min(per_rank, len(self.train_data))))
            self.amp = perf.resolve_amp(cfg.train.amp, self.device)
            self.model = perf.forward_module(self.model, self.device, self.amp, cfg.train.compile)
            self.ema = EMA(self.net, cfg.train.ema_decay)
            self.optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg.train.lr)
            self.n_params = sum(p.numel() for p in self.net.parameters())
        else:
            self.ema = self.optimizer = None
            self.n_params = 0
        if self.resume:
            self._restore(self.out_dir / "last.pt")
            if info.is_main:
                save_config(cfg, self.out_dir / "config.yaml")  # only once the resume is accepted
        self.setup_s = time.perf_counter() - t0
        if info.is_main:
            log.info("set-up %.1f s: %d train rows, %d val rows, %d params, world %d", self.setup_s,
                     len(self.train_data), len(self.val_data), self.n_params, info.world_size)

    #: What a run writes into its folder; a folder holding any of them belongs to an earlier run.
    RUN_FILES = ("last.pt", "best.pt", "train_log.jsonl")

    def _claim_out_dir(self) -> None:
        """Make the run folder this run's: refuse to overwrite an earlier run unless resuming or forced (then
        the new run is built in a staging folder and the earlier one is left untouched until it succeeded)."""
        if self.final_dir.exists() and not self.final_dir.is_dir():
            raise RunFolderError(f"--out {self.final_dir}: exists and is not a folder")
        if self.replacing:
            begin_replacement(self.final_dir)
            return
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise RunFolderError(f"--out {self.out_dir}: cannot create this folder ({err.strerror or err}"
                                 f"{': ' + str(err.filename) if err.filename else ''})") from None
        clean_stale_temporaries(self.out_dir)
        existing = [name for name in self.RUN_FILES if (self.out_dir / name).exists()]
        if self.resume:
            if not (self.out_dir / "last.pt").exists():
                raise RunFolderError(f"--resume: {self.out_dir / 'last.pt'} does not exist; nothing to resume")
        elif existing:
            raise RunFolderError(f"--out {self.out_dir}: holds an earlier run ({', '.join(existing)}); "
                                 "continue it with --resume, or replace it with --force")

    def _restore(self, path: Path) -> None:
        ckpt = load_checkpoint(path, map_location="cpu")
        if ckpt["versions"].get("diffpose_viz") != versions()["diffpose_viz"]:
            raise CheckpointError(f"{path}: written by diffpose_viz {ckpt['versions'].get('diffpose_viz')}, this is "
                                  f"{versions()['diffpose_viz']}; resuming across versions is not bit-for-bit")
        stored = ckpt["config"]
        try:  # keys added to the config since the run started compare at their defaults, not as '<missing>'
            stored = to_dict(from_dict(ExperimentConfig, stored, source=str(path)))
        except (KeyError, ValueError):
            pass  # a key this version does not know: compared as stored, so it shows up in the refusal
        diffs = [d for d in config_diff(stored, to_dict(self.cfg))
                 if not any(d.startswith(k + ":") for k in RESUMABLE_KEYS)]
        if diffs:
            raise CheckpointError(f"{path}: cannot resume with a different config; differing keys: " + "; ".join(diffs))
        if ckpt.get("world_size", 1) != self.info.world_size:
            raise CheckpointError(f"{path}: trained with world size {ckpt.get('world_size')}, resuming with "
                                  f"{self.info.world_size}; the data order would differ")
        if self.net is not None:
            load_weights(self.net, ckpt["model"], "model", path)
            self.ema.load_state_dict(ckpt["ema"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
        p = ckpt["progress"]
        self.step, self.epoch, self.batch_in_epoch = p["step"], p["epoch"], p["batch_in_epoch"]
        self.best_val, self.best_step = p["best_val"], p["best_step"]
        self.history = list(ckpt.get("history", []))
        rng = ckpt["rng_per_rank"][self.info.rank]
        set_rng_state(rng["global"])
        self.noise_gen.set_state(rng["noise"].cpu())

    # ------------------------------------------------------------------ losses
    def _loss(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, MPJPE in mm of the clean-pose estimate) for the rows idx."""
        batch = make_batch(self.train_data, idx, self.schedule, self.noise_gen, self.cfg)
        return self.method.loss(self.model, batch)

    # ------------------------------------------------------------------ validation
    @torch.no_grad()
    def validate(self) -> float:
        """MPJPE (mm, P-Agg) of the EMA weights on the validation rows, reduced over ranks."""
        data = self.val_data
        if len(data) == 0:
            return float("nan")
        model = LoadedModel(self.cfg, self.method, self.ema.module if self.ema else None, self.prior, self.extras,
                            self.device, str(self.out_dir), self.error_model)
        scored = np.arange(len(data)) if data.scored is None else data.scored
        rows = ddp.shard_indices(scored, self.info.rank, self.info.world_size, pad=False)
        gen = torch.Generator(device=self.device).manual_seed(12345 + self.info.rank)
        total = torch.zeros(2, dtype=torch.float64, device=self.device)
        bs = max(self.cfg.train.batch_size, 64)
        # the model's own setting with train.val_hypotheses hypotheses, no amp: the same for every method
        sampling = self.method.sampling(self.cfg, SamplingSetting(self.cfg.train.val_hypotheses, amp="none"))
        for s in range(0, len(rows), bs):
            idx = torch.as_tensor(rows[s:s + bs], device=self.device)
            pred = predict(model, data.batch(rows[s:s + bs], gen), sampling)
            agg = pred.pred if pred.pred is not None else pred.hypotheses.mean(1)
            agg = torch.as_tensor(agg, device=self.device, dtype=torch.float64)
            err = torch.linalg.vector_norm(agg - data.pose3d[idx].double(), dim=-1).mean(-1) * 1000
            total += torch.stack([err.sum(), torch.tensor(float(len(idx)), device=self.device, dtype=torch.float64)])
        total = ddp.all_reduce_sum(total)
        return float(total[0] / total[1].clamp_min(1))

    # ------------------------------------------------------------------ checkpoints
    def _payload(self) -> dict:
        rng = {"global": rng_state(), "noise": self.noise_gen.get_state()}
        rngs = ddp.gather_objects(rng)
        return {
            "method": self.cfg.method,
            "config": to_dict(self.cfg),
            "model": self.net.state_dict() if self.net is not None else {},
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
            "rng_per_rank": rngs,
            "world_size": self.info.world_size,
            "progress": {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                         "best_val": self.best_val, "best_step": self.best_step},
            "normaliser": inputs.NORMALISER,
            "depth_prior": self.prior.to_dict() if self.prior is not None else None,
            "detection_error": self.error_model.to_dict() if self.error_model is not None else None,
            "extras": self.extras_payload,
            "history": self.history,
            "n_params": self.n_params,
        }

    def _checkpoint(self, val: float | None) -> None:
        payload = self._payload()  # every rank takes part in gathering the RNG states
        if not self.info.is_main:
            return
        improved = val is not None and np.isfinite(val) and val < self.best_val
        if improved:
            self.best_val, self.best_step = val, self.step
            payload["progress"].update(best_val=val, best_step=self.step)
        save_checkpoint(self.out_dir / "last.pt", payload)
        if improved or not (self.out_dir / "best.pt").exists():
            save_checkpoint(self.out_dir / "best.pt", payload)

    def _log(self, record: dict) -> None:
        self.history.append(record)
        if self.info.is_main:
            with open(self.out_dir / "train_log.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    # ------------------------------------------------------------------ the loop
    def train(self) -> TrainResult:
        cfg, info = self.cfg, self.info
        t_start = time.perf_counter()
        if self.net is None:  # init_only: nothing to fit beyond the depth prior
            val = self.validate()
            self._log({"step": 0, "val_mpjpe_mm": val})
            self._checkpoint(val)
            return self._result(t_start)
        n = self.train_data.n_centres
        centres = self.train_data.centres
        per_rank = max(cfg.train.batch_size // info.world_size, 1)
        shard_len = len(ddp.shard_indices(np.arange(n), info.rank, info.world_size))
        n_batches = max(shard_len // per_rank, 1)
        total_steps = cfg.train.epochs * n_batches
        if cfg.train.max_steps is not None:
            total_steps = min(total_steps, cfg.train.max_steps)
        bar = self._bar = None
        if self.progress:
            bar = self._bar = Progress(total=total_steps, initial=min(self.step, total_steps),
                                       desc=f"train {cfg.method}", unit="step")
        self.model.train()
        # Running sums stay on the device; the host reads them only when logging (no per-step sync).
        run = torch.zeros(4, dtype=torch.float64, device=self.device)  # loss, mpjpe, steps, non-finite losses
        done = self.step >= total_steps
        while not done and self.epoch < cfg.train.epochs:
            for group in self.optimizer.param_groups:
                group["lr"] = cfg.train.lr * cfg.train.lr_gamma ** self.epoch
            self.method.start_epoch(self.net, cfg, self.epoch)
            order = ddp.shard_indices(ddp.epoch_permutation(n, cfg.train.seed, self.epoch), info.rank,
                                      info.world_size)
            order_t = torch.as_tensor(order, device=self.device)
            if centres is not None:  # train.window_stride: positions into the strided window centres
                order_t = centres[order_t]
            while self.batch_in_epoch < n_batches:
                b = self.batch_in_epoch
                idx = order_t[b * per_rank:(b + 1) * per_rank]
                with perf.memory_guard(len(idx), self.device):
                    loss, err = self._loss(idx)
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    gnorm = apply_update(self.net, self.optimizer, self.ema, cfg.train.grad_clip)
                self.step += 1
                self.batch_in_epoch += 1
                ld = loss.detach().double()
                run += torch.stack([torch.nan_to_num(ld), err.double(), torch.ones_like(ld),
                                    (~torch.isfinite(ld)).double()])
                if bar is not None:
                    bar.update(1)
                log_now = self.step % max(cfg.train.log_every, 1) == 0
                if log_now or self.step >= total_steps:
                    stats = ddp.all_reduce_sum(run).tolist()
                    if stats[3] > 0:
                        raise FloatingPointError(f"step {self.step}: {int(stats[3])} non-finite losses since the last "
                                                 "log; check the inputs, lr and the fitted H_K (no NaN is trained on "
                                                 "silently)")
                    if bar is not None:
                        bar.set_postfix(loss=f"{stats[0] / stats[2]:.4g}", mpjpe=f"{stats[1] / stats[2]:.1f}mm",
                                        ep=self.epoch)
                    if log_now:
                        self._log({"step": self.step, "epoch": self.epoch, "loss": stats[0] / stats[2],
                                   "train_mpjpe_mm": stats[1] / stats[2], "grad_norm": float(gnorm),
                                   "lr": self.optimizer.param_groups[0]["lr"], "time_s": time.perf_counter() - t_start})
                        run.zero_()
                if cfg.train.eval_every and self.step % cfg.train.eval_every == 0:
                    self._validate_and_save()
                if self.step >= total_steps:
                    done = True
                    break
            if self.batch_in_epoch >= n_batches:
                self.epoch += 1
                self.batch_in_epoch = 0
                if not cfg.train.eval_every:
                    self._validate_and_save()
        if bar is not None:
            bar.close()
        if not self.history or self.history[-1].get("step") != self.step or "val_mpjpe_mm" not in self.history[-1]:
            self._validate_and_save()
        return self._result(t_start)

    def _validate_and_save(self) -> float:
        self.model.eval()
        val = self.validate()
        self.model.train()
        self._log({"step": self.step, "epoch": self.epoch, "val_mpjpe_mm": val})
        if self.info.is_main and self.progress:
            msg = f"step {self.step}: validation MPJPE {val:.1f} mm (EMA weights)"
            (self._bar.write if getattr(self, "_bar", None) is not None else Progress(enabled=True).write)(msg)
        self._checkpoint(val)
        return val

    def publish(self, result: TrainResult) -> TrainResult:
        """After a successful run with --force over an earlier one: swap the new run in (the earlier run's
        H_K cache goes with it; other files a user kept in the folder stay)."""
        if not self.replacing:
            return result
        ddp.barrier()
        if self.info.is_main:
            commit_replacement(self.final_dir, drop=("cache", "config.yaml", *self.RUN_FILES))
        ddp.barrier()
        self.out_dir = self.final_dir
        best = self.out_dir / "best.pt"
        return TrainResult(self.out_dir, self.out_dir / "last.pt", best if best.exists() else None, result.steps,
                           result.best_val_mpjpe_mm, result.wall_s, result.history)

    def _result(self, t_start: float) -> TrainResult:
        best = self.out_dir / "best.pt"
        return TrainResult(self.out_dir, self.out_dir / "last.pt", best if best.exists() else None, self.step,
                           None if not np.isfinite(self.best_val) else self.best_val,
                           time.perf_counter() - t_start, self.history)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train(cfg: ExperimentConfig, out_dir: str | Path, *, device: str | None = None, resume: bool = False,
          progress: bool | None = None, force: bool = False, allow_leakage: bool = False,
          hk_cache: str | Path | None = None) -> TrainResult:
    """Set up and run training; the checkpoints are `out_dir/last.pt` and `out_dir/best.pt` (lowest
    validation MPJPE of the EMA weights). An earlier run in `out_dir` is continued with `resume`,
    replaced with `force`, and otherwise refused. One writer per run folder: a second `train` into `out_dir`
    while this one runs is refused (`run_lock`). A run that fails before its first checkpoint leaves nothing
    behind (no new folder, no config.yaml). Training rows that are test rows are refused unless `allow_leakage`.
    `hk_cache`: a folder for the fitted H_K shared by runs on the same rows (default: `out_dir/cache`); a file is
    reused only when the config's H_K settings, the depth prior and the rows themselves match (`inputs.hk`)."""
    out_dir = Path(out_dir)
    new_root = _first_missing(out_dir)  # what this run creates, removed again if it fails before a checkpoint
    main_rank = int(os.environ.get("RANK", "0")) == 0
    with run_lock(out_dir) if main_rank else nullcontext():
        before = set(os.listdir(out_dir)) if out_dir.is_dir() else set()
        trainer = Trainer(cfg, out_dir, device=device, resume=resume, progress=progress, force=force,
                          allow_leakage=allow_leakage, hk_cache=hk_cache)
        try:
            trainer.setup()
            result = trainer.train()
        except BaseException:
            if trainer.replacing and trainer.info.is_main:
                abort_replacement(trainer.final_dir)  # the earlier run stays as it was
            elif trainer.info.is_main and not resume:
                _discard_unfinished(out_dir, new_root, before)
            raise
        return trainer.publish(result)


def _first_missing(folder: Path) -> Path | None:
    """The outermost of `folder` and its parents that does not exist yet (None when `folder` exists)."""
    missing = None
    for p in (folder, *folder.parents):
        if p.exists() or p.is_symlink():
            break
        missing = p
    return missing


def _discard_unfinished(out_dir: Path, new_root: Path | None, before: set[str]) -> None:
    """After a failure before the first checkpoint: remove what the run created (the folders it made, or in a
    folder that existed, the files that were not there). A run with a checkpoint is kept: --resume continues it."""
    if not out_dir.is_dir() or any((out_dir / name).exists() for name in Trainer.RUN_FILES[:2]):
        return
    if new_root is not None:
        shutil.rmtree(new_root, ignore_errors=True)
        return
    for name in set(os.listdir(out_dir)) - before:
        target = out_dir / name
        shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
