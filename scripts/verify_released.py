"""Check `diffpose-viz import` against the released code itself: same weights, same outputs.

    python scripts/verify_released.py --diffpose DIR --diffpose-video DIR --mixste DIR --videopose3d DIR

Each DIR is a checkout of the official repository (github.com/GONGJIA0208/Diffpose, GONGJIA0208/Diffpose_video,
JinluZhang1126/MixSTE, facebookresearch/VideoPose3D); its code is imported from there at run time, never
copied into the kit. For every released network the script
  1. builds it with the released code and random weights (BatchNorm statistics randomised too),
  2. saves it exactly as the released training code saves it (Diffpose: torch.save([DataParallel state_dict,
     Adam state, epoch, step, EMA shadow]); MixSTE / VideoPose3D: {'epoch', 'lr', 'random_state' (a numpy
     RandomState), 'optimizer', 'model_pos', ...}),
  3. imports that file with `diffpose_viz.released.import_released` and loads the result with
     `inference.load_model`, as evaluate / sample / wild do,
  4. compares the outputs on random inputs and on real bandai17 2D (ground-truth projections of a training
     subject), and runs one whole deterministic official sampling run (the released `generalized_steps`
     against the kit's `official` method) on the same inputs,
and prints max |Δ| per network; it fails (exit 1) if any exceeds --tol (default 1e-5).

What the released code needs besides torch: scipy and PyYAML (Diffpose), einops (the MixSTE2 files,
`pip install einops`), and for MixSTE's common/model_cross.py also `pip install --no-deps local-attention
hyper-connections` (imported there, unused by MixSTE2; --no-deps keeps the installed torch). The MixSTE files import a few timm names, of which only DropPath runs (the identity in
eval mode); if timm does not import (it needs torchvision) the script registers stand-ins (ensure_timm_names). The released sampler moves its step tensors with `.cuda()`; on a
machine without CUDA the script makes `.cuda()` return the tensor itself for that call only.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from diffpose_viz.config import DataConfig  # noqa: E402
from diffpose_viz.entry import run_script  # noqa: E402
from diffpose_viz.inference import load_model  # noqa: E402
from diffpose_viz.inputs import FeedBatch  # noqa: E402
from diffpose_viz.inputs.splits import load_splits  # noqa: E402
from diffpose_viz.released import import_released  # noqa: E402

#: The top-level packages the four repositories share names for; purged between repositories.
SHARED_NAMES = ("models", "common", "runners")
#: Diffpose's runners build the graph from these H36M-17 bones (runners/diffpose_frame.py).
H36M_EDGES = [[0, 1], [1, 2], [2, 3], [0, 4], [4, 5], [5, 6], [0, 7], [7, 8], [8, 9], [9, 10],
              [8, 11], [11, 12], [12, 13], [8, 14], [14, 15], [15, 16]]
#: VideoPose3D's and MixSTE's left/right keypoints for H36M-17 (their metadata's keypoints_symmetry).
LEFT, RIGHT = [4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]


@contextlib.contextmanager
def official_repo(path: Path):
    """Import the repository at `path` as the released code runs it (its root on sys.path), then forget it."""
    def purge():
        for name in list(sys.modules):
            if name.split(".")[0] in SHARED_NAMES:
                del sys.modules[name]

    purge()
    sys.path.insert(0, str(path))
    try:
        yield
    finally:
        sys.path.remove(str(path))
        purge()


def ensure_timm_names() -> None:
    """The MixSTE files import a few timm names (timm needs torchvision, which this kit does not install). If
    timm does not import, stand-ins are registered: DropPath as the identity (stochastic depth is off in eval
    mode and drop_path_rate is 0 in Diffpose_video's runner), trunc_normal_ as torch's, and the names the model
    files import but never call (IMAGENET constants, load_pretrained, register_model, to_2tuple)."""
    try:
        import timm.data  # noqa: F401
        import timm.models.layers  # noqa: F401
        return
    except ImportError:
        pass

    class DropPath(torch.nn.Identity):
        def __init__(self, *args, **kwargs):
            super().__init__()

    def unused(*args, **kwargs):
        raise RuntimeError("a timm stand-in of scripts/verify_released.py was called")

    names = {"timm": {}, "timm.models": {},
             "timm.data": {"IMAGENET_DEFAULT_MEAN": (0.485, 0.456, 0.406), "IMAGENET_DEFAULT_STD": (0.229, 0.224, 0.225)},
             "timm.models.helpers": {"load_pretrained": unused},
             "timm.models.layers": {"DropPath": DropPath, "to_2tuple": lambda x: (x, x),
                                    "trunc_normal_": torch.nn.init.trunc_normal_},
             "timm.models.registry": {"register_model": lambda fn: fn}}
    for mod_name, attrs in names.items():
        mod = types.ModuleType(mod_name)
        mod.__dict__.update(attrs)
        sys.modules[mod_name] = mod


@contextlib.contextmanager
def cuda_is_identity():
    if torch.cuda.is_available():
        yield
        return
    original = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *a, **k: self
    try:
        yield
    finally:
        torch.Tensor.cuda = original


def randomise(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """`module` in eval mode with the released code's own random initialisation, plus random values for what it
    initialises to constants (biases, layer-norm gains, positional embeddings, the learnt adjacency's identity,
    BatchNorm statistics), so a wrong mapping cannot hide behind a zero or a one."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith("A_hat"):  # keeps positive degrees (else both sides are NaN)
                t.add_(0.2 * torch.rand(t.shape, generator=g))
            elif t.numel() > 1 and bool((t == t.flatten()[0]).all()) or name.endswith("running_mean"):
                t.add_(0.1 * torch.randn(t.shape, generator=g))
    return module.eval()


def adam_state(module: torch.nn.Module) -> dict:
    opt = torch.optim.Adam(module.parameters(), lr=1e-4)
    module.zero_grad()
    return opt.state_dict()


def bandai_2d(path: str, frames: int) -> torch.Tensor:
    """(frames, 17, 2) screen-normalised ground-truth 2D of the longest take of a bandai17 training subject (its
    consecutive frames, edge-padded to `frames`)."""
    cfg = DataConfig(path=path, train_subjects=["active"], test_subjects=[], cameras=["0"], input_2d="gt",
                     validation_fraction=0.0, frame_stride=1)
    rows = load_splits(cfg).train
    takes = {}
    for i, key in enumerate(zip(rows.subject, rows.action, rows.camera)):
        takes.setdefault(key, []).append(i)
    take = np.asarray(max(takes.values(), key=len))  # the longest take
    take = take[np.argsort(rows.frame[take])][:frames]
    if len(take) < frames:  # bandai17 clips are shorter than 243 frames: edge-padded, as windows at a clip's end are
        before = (frames - len(take)) // 2
        take = np.pad(take, (before, frames - len(take) - before), mode="edge")
    xy, res = rows.pose2d[take].astype(np.float64), rows.res[take].astype(np.float64)
    w, h = res[:, 0, None], res[:, 1, None]
    uv = np.stack([2 * xy[..., 0] / w - 1, 2 * xy[..., 1] / w - h / w], -1)
    return torch.as_tensor(uv, dtype=torch.float32)


def with_confidence(uv: torch.Tensor) -> torch.Tensor:
    return torch.cat([uv, torch.ones_like(uv[..., :1])], -1)


def report(rows: list, name: str, a: torch.Tensor, b: torch.Tensor) -> None:
    delta = float((a.double() - b.double()).abs().max())
    rows.append((name, delta, tuple(a.shape)))
    print(f"  {name:72s} max |Δ| = {delta:.2e}  (max |value| {float(b.abs().max()):.2g}, {tuple(a.shape)})",
          flush=True)


# --------------------------------------------------------------------------- Diffpose (frame)


def diffpose_config(repo: Path, name: str = "human36m_diffpose_uvxyz_cpn.yml"):
    import yaml

    def ns(d):
        return types.SimpleNamespace(**{k: ns(v) if isinstance(v, dict) else v for k, v in d.items()})

    return ns(yaml.safe_load((repo / "configs" / name).read_text()))


def released_denoiser(config) -> tuple[torch.Tensor, torch.nn.Module]:
    """(the H36M graph's adjacency, the released GCNdiff on it) as the released runners build them; call inside
    `official_repo`."""
    from models.gcndiff import GCNdiff, adj_mx_from_edges

    adj = adj_mx_from_edges(num_pts=17, edges=torch.tensor(H36M_EDGES), sparse=False)
    return adj, GCNdiff(adj, config)


def released_schedule(config, get_beta_schedule) -> tuple[torch.Tensor, range]:
    """The released sampler's betas and its step sequence (skip_type 'uniform', the default), from its config."""
    betas = torch.from_numpy(get_beta_schedule(
        beta_schedule=config.diffusion.beta_schedule, beta_start=config.diffusion.beta_start,
        beta_end=config.diffusion.beta_end, num_diffusion_timesteps=config.diffusion.num_diffusion_timesteps)).float()
    test_num, test_steps = config.testing.test_num_diffusion_timesteps, config.testing.test_timesteps
    return betas, range(0, test_num, test_num // test_steps)


def released_run(generalized_steps, state, mask, seq, diff, betas) -> torch.Tensor:
    """The released deterministic sampling run (eta 0) from `state` (uvxyz): its root-centred xyz."""
    with cuda_is_identity():
        xs, _ = generalized_steps(state, mask, seq, diff, betas, eta=0.0)
    out = xs[-1][..., 2:]
    return out - out[:, :1]


def save_diffpose(model: torch.nn.Module, path: Path) -> Path:
    """runners/diffpose_frame.py: states = [model_diff.state_dict(), optimizer.state_dict(), epoch, step,
    ema_helper.state_dict()] with model_diff = DataParallel(GCNdiff)."""
    from models.ema import EMAHelper

    wrapped = torch.nn.DataParallel(model)
    ema = EMAHelper(mu=0.999)
    ema.register(wrapped)
    torch.save([wrapped.state_dict(), adam_state(wrapped), 3, 1234, ema.state_dict()], path)
    return path


def imported(kind: str, files: list[Path], out: Path, **options):
    """The released `files` imported as the kit run `out` (`diffpose-viz import KIND`), loaded."""
    import_released(kind, files, out, force=True, **options)
    return load_model(out / "best.pt")


def verify_diffpose_frame(repo: Path, work: Path, uv_real: torch.Tensor, rows: list) -> None:
    print(f"Diffpose (frame) from {repo}")
    with official_repo(repo):
        if "lib2to3.refactor" not in sys.modules:  # the released files import it and never use it (3.13+ lacks it)
            try:
                import lib2to3.refactor  # noqa: F401
            except ImportError:
                stub = types.ModuleType("lib2to3.refactor")
                stub.get_fixers_from_package = lambda *a: []
                sys.modules["lib2to3"] = types.ModuleType("lib2to3")
                sys.modules["lib2to3.refactor"] = stub
        from common.utils_diff import generalized_steps, get_beta_schedule
        from models.gcnpose import GCNpose

        config = diffpose_config(repo)
        adj, diff = released_denoiser(config)
        config.model.coords_dim = [2, 3]  # as create_pose_model sets it
        pose = GCNpose(adj, config)
        randomise(diff, 1)
        randomise(pose, 2)
        kit = imported("diffpose-frame", [save_diffpose(pose, work / "gcn_xyz_cpn.pth"),
                                          save_diffpose(diff, work / "diffpose_uvxyz_cpn.pth")], work / "frame")
        kit_lifter = load_model(work / "frame" / "lifter" / "best.pt")
        mask = torch.ones(1, 1, 17, dtype=torch.bool)
        betas, seq = released_schedule(config, get_beta_schedule)
        g = torch.Generator().manual_seed(0)
        inputs = {"random": torch.randn(64, 17, 2, generator=g) * 0.5, "bandai17": uv_real}
        with torch.no_grad():
            for label, uv in inputs.items():
                ref = pose(uv, mask)
                ref = ref - ref[:, :1]
                report(rows, f"GCNpose lifter ({label} 2D)", kit_lifter.network(with_confidence(uv)), ref)
                report(rows, f"GCNpose in the official checkpoint ({label} 2D)", kit.extras["lifter"](with_confidence(uv)), ref)
                state = torch.cat([uv, ref + 0.1 * torch.randn(ref.shape, generator=g)], -1)
                t = torch.randint(0, 51, (len(uv),), generator=g)
                report(rows, f"GCNdiff eps ({label} uvxyz, random t)", kit.network.denoiser(state, t),
                       diff(state, mask, t.float(), 0))
                out = released_run(generalized_steps, torch.cat([uv, ref], -1), mask, seq, diff, betas)
                pred = kit.method.predict(kit, FeedBatch(with_confidence(uv), None), kit.method.sampling(kit.cfg))
                report(rows, f"whole official sampling run, seq {list(seq)} ({label} 2D)",
                       torch.as_tensor(np.asarray(pred.hypotheses))[:, 0], out)


# --------------------------------------------------------------------------- MixSTE2 (+ Diffpose_video)


def save_mixste_style(model: torch.nn.Module, path: Path, parallel: bool = True) -> Path:
    """MixSTE run.py: torch.save({'epoch', 'lr', 'random_state': train_generator.random_state() (a numpy
    RandomState), 'optimizer', 'model_pos': model_pos_train.state_dict()}) with DataParallel; VideoPose3D the
    same plus 'model_traj' and 'random_state_semi', without DataParallel."""
    wrapped = torch.nn.DataParallel(model) if parallel else model
    payload = {"epoch": 80, "lr": 4e-5, "random_state": np.random.RandomState(1234),
               "optimizer": adam_state(wrapped), "model_pos": wrapped.state_dict()}
    if not parallel:
        payload.update(model_traj=None, random_state_semi=None)
    torch.save(payload, path)
    return path


def flip_average(net, windows: torch.Tensor) -> torch.Tensor:
    """The released video test: the 2D flipped (x negated, left/right keypoints swapped), the 3D flipped back,
    both averaged (runners/diffpose_video.py, test_per_action)."""
    flipped = windows.clone()
    flipped[..., 0] *= -1
    flipped[:, :, LEFT + RIGHT] = flipped[:, :, RIGHT + LEFT]
    out, out_f = net(windows), net(flipped)
    out_f[..., 0] *= -1
    out_f[:, :, LEFT + RIGHT] = out_f[:, :, RIGHT + LEFT]
    return (out + out_f) / 2


def verify_mixste(repo: Path, work: Path, uv_real: torch.Tensor, rows: list, frames: int) -> None:
    print(f"MixSTE2 from {repo} (T = {frames})")
    ensure_timm_names()
    with official_repo(repo):
        from common.model_cross import MixSTE2

        net = MixSTE2(num_frame=frames, num_joints=17, in_chans=2, embed_dim_ratio=64, depth=4, num_heads=8,
                      mlp_ratio=2.0, qkv_bias=True, qk_scale=None, drop_path_rate=0.1)
        randomise(net, 3)
        kit = imported("mixste", [save_mixste_style(net, work / "mixste.bin")], work / "mixste", frames=frames)
        compare_video_lifter(rows, "MixSTE2 (MixSTE repo, D 64, depth 4)", kit.network.net, net, uv_real, frames)


def compare_video_lifter(rows, name, kit_net, ref_net, uv_real, frames) -> None:
    g = torch.Generator().manual_seed(5)
    inputs = {"random": torch.randn(2, frames, 17, 2, generator=g) * 0.5, "bandai17": uv_real[None, :frames]}
    with torch.no_grad():
        for label, uv in inputs.items():
            ref = ref_net(uv)
            ref = ref - ref[:, :, :1]
            report(rows, f"{name} ({label} 2D)", kit_net(with_confidence(uv)), ref)


def verify_diffpose_video(repo: Path, work: Path, uv_real: torch.Tensor, rows: list) -> None:
    frames = 243
    print(f"Diffpose_video from {repo} (MixSTE2-243 as its runner builds it + GCNdiff)")
    ensure_timm_names()
    with official_repo(repo):
        from common.utils_diff import generalized_steps, get_beta_schedule
        from models.mixste import MixSTE2

        config = diffpose_config(repo)
        _, diff = released_denoiser(config)
        mix = MixSTE2(num_frame=frames, num_joints=17, in_chans=2, embed_dim_ratio=512, depth=8, num_heads=8,
                      mlp_ratio=2., qkv_bias=True, qk_scale=None, drop_path_rate=0)
        randomise(diff, 4)
        randomise(mix, 5)
        kit = imported("diffpose-video", [save_mixste_style(mix, work / "mixste_cpn_243f.bin"),
                                          save_diffpose(diff, work / "diffpose_video_uvxyz_cpn.pth")], work / "video")
        compare_video_lifter(rows, "MixSTE2-243 (Diffpose_video)", kit.extras["lifter"].net.model, mix, uv_real, frames)
        mask = torch.ones(1, 1, 17, dtype=torch.bool)
        betas, seq = released_schedule(config, get_beta_schedule)
        g = torch.Generator().manual_seed(6)
        with torch.no_grad():
            windows = uv_real[None, :frames]
            xyz = flip_average(mix, windows)[:, frames // 2]
            xyz = xyz - xyz[:, :1]  # the kit starts from the root-centred pose (the released code: as MixSTE gives it)
            uv = windows[:, frames // 2]
            state = torch.cat([uv, xyz], -1)
            t = torch.randint(0, 51, (1,), generator=g)
            report(rows, "GCNdiff (video) eps (bandai17 uvxyz, random t)", kit.network.denoiser(state, t),
                   diff(state, mask, t.float(), 0))
            out = released_run(generalized_steps, state, mask, seq, diff, betas)
            pred = kit.method.predict(kit, FeedBatch(with_confidence(windows), None), kit.method.sampling(kit.cfg))
            report(rows, f"whole official video run, centre frame, seq {list(seq)} (bandai17)",
                   torch.as_tensor(np.asarray(pred.hypotheses))[:, 0], out)


# --------------------------------------------------------------------------- VideoPose3D


def verify_videopose3d(repo: Path, work: Path, uv_real: torch.Tensor, rows: list) -> None:
    """Dense evaluation over whole inputs longer than the receptive field (many output frames), H36M-17 input and
    COCO-17 input (the kit re-lays its H36M-17 2D out as COCO: the reference gets that COCO-ordered 2D)."""
    from diffpose_viz.models.coco_input import h36m17_as_coco17

    print(f"VideoPose3D from {repo}")
    with official_repo(repo):
        from common.model import TemporalModel

        for widths, channels, layout in (([3, 3, 3], 256, "h36m"), ([3, 3, 3, 3, 3], 1024, "h36m"),
                                         ([3, 3, 3, 3, 3], 1024, "coco")):
            frames = int(np.prod(widths))
            net = TemporalModel(17, 2, 17, filter_widths=widths, causal=False, dropout=0.25, channels=channels)
            randomise(net, frames)
            kit = imported("videopose3d", [save_mixste_style(net, work / f"vp3d_{frames}.bin", parallel=False)],
                           work / f"vp3d_{frames}", frames=frames, input_layout=layout)
            g = torch.Generator().manual_seed(frames)
            inputs = {"random": torch.randn(2, frames + 40, 17, 2, generator=g) * 0.5, "bandai17": uv_real[None]}
            with torch.no_grad():
                for label, uv in inputs.items():
                    ref = net(h36m17_as_coco17(uv) if layout == "coco" else uv)
                    ref = ref - ref[:, :, :1]
                    report(rows, f"TemporalModel {widths} x {channels}, {layout} input ({label} 2D, dense)",
                           kit.network.net(with_confidence(uv)), ref)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--diffpose", type=Path, help="checkout of github.com/GONGJIA0208/Diffpose")
    ap.add_argument("--diffpose-video", type=Path, help="checkout of github.com/GONGJIA0208/Diffpose_video")
    ap.add_argument("--mixste", type=Path, help="checkout of github.com/JinluZhang1126/MixSTE")
    ap.add_argument("--videopose3d", type=Path, help="checkout of github.com/facebookresearch/VideoPose3D")
    ap.add_argument("--data", default="../shared/data/bandai17/data_3d_bandai17.npz",
                    help="a data_3d file whose training subject 'active' gives the real 2D inputs")
    ap.add_argument("--mixste-frames", type=int, default=27, help="window of the MixSTE-repo check")
    ap.add_argument("--tol", type=float, default=1e-5)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    uv_real = bandai_2d(args.data, 243)
    rows: list = []
    with tempfile.TemporaryDirectory(prefix="verify_released_") as tmp:
        work = Path(tmp)
        if args.diffpose:
            verify_diffpose_frame(args.diffpose.resolve(), work, uv_real, rows)
        if args.mixste:
            verify_mixste(args.mixste.resolve(), work, uv_real, rows, args.mixste_frames)
        if args.diffpose_video:
            verify_diffpose_video(args.diffpose_video.resolve(), work, uv_real, rows)
        if args.videopose3d:
            verify_videopose3d(args.videopose3d.resolve(), work, uv_real, rows)
    if not rows:
        ap.error("give at least one of --diffpose, --diffpose-video, --mixste, --videopose3d")
    worst = max(d for _, d, _ in rows)
    bad = [n for n, d, _ in rows if not d <= args.tol]
    print(f"{len(rows)} comparisons, largest max |Δ| {worst:.2e} (tolerance {args.tol:g}): "
          + ("PASS" if not bad else f"FAIL: {bad}"))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))  # one-line errors, exit 2 (diffpose_viz.entry)
