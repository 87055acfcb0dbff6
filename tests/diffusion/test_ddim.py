"""DDIM over the GMM diffusion, run by the executor: exactness with an oracle, determinism, trajectories,
tiling and threads, the start from H_K."""

import pytest
import torch

from diffpose_viz.diffusion.forward import draw_kernels, gmm_q_sample, kernel_params
from diffpose_viz.diffusion.ddim import DDIMSampler
from diffpose_viz.diffusion.executor import _run, run_chain
from diffpose_viz.diffusion.setting import SamplingSetting
from diffpose_viz.diffusion.schedule import NoiseSchedule
from diffpose_viz.initialization.pose_init import PoseGMM
from diffpose_viz.models.context import FrameContextEncoder
from diffpose_viz.models.graformer import GraFormerDenoiser

B, N, M = 3, 4, 2


def _gmm(seed: int = 0) -> PoseGMM:
    g = torch.Generator().manual_seed(seed)
    weights = torch.softmax(torch.randn(B, 17, M, generator=g), -1)
    means = 0.3 * torch.randn(B, 17, M, 3, generator=g)
    variances = 0.01 * torch.rand(B, 17, M, 3, generator=g) + 1e-4
    means[:, 0], variances[:, 0] = 0.0, 1e-8
    return PoseGMM(weights, means, variances)


def _h0(seed: int = 1) -> torch.Tensor:
    h0 = 0.3 * torch.randn(B, 17, 3, generator=torch.Generator().manual_seed(seed))
    h0[:, 0] = 0
    return h0


class Oracle:
    """Knows h_0: returns it (x0 mode) for every hypothesis; records what it was called with."""

    prediction = "x0"

    def __init__(self, h0: torch.Tensor):
        self.h0, self.calls = h0, []

    def __call__(self, x, t, context):
        self.calls.append((x.shape, t.clone(), None if context is None else context.shape))
        return self.h0.repeat_interleave(x.shape[0] // self.h0.shape[0], 0)


SCHEDULE = NoiseSchedule("linear", 200, 1e-4, 0.05)


def ddim(steps: int = 4, *, eta: float = 0.0, prediction: str = "eps", schedule: NoiseSchedule = SCHEDULE,
         **facts) -> DDIMSampler:
    """The sampler a method builds: K steps and eta from the setting, the rest model facts."""
    return DDIMSampler(schedule, SamplingSetting(n_steps=steps, eta=eta), prediction=prediction, **facts)


@pytest.mark.parametrize("mode", ["gmm", "gaussian"])
@pytest.mark.parametrize("eta", [0.0, 0.7])
def test_oracle_denoiser_recovers_h0_exactly_for_every_hypothesis(mode, eta):
    h0 = _h0()
    oracle = Oracle(h0)
    sampler = ddim(6, eta=eta, mode=mode, gaussian_scale=0.5, prediction="x0")
    out = run_chain(sampler, oracle, None, N, gmm=_gmm(), generator=torch.Generator().manual_seed(0))
    assert out.hypotheses.shape == (B, N, 17, 3)
    assert torch.equal(out.hypotheses, h0[:, None].expand(B, N, 17, 3))
    # ONE denoiser call per step, on all B*N states at once.
    assert len(oracle.calls) == 6 and all(shape == (B * N, 17, 3) for shape, _, _ in oracle.calls)
    assert [int(t[0]) for _, t, _ in oracle.calls] == SCHEDULE.ddim_timesteps(6)


def test_intermediate_states_follow_the_forward_marginal_of_each_hypothesis_kernel():
    """With an oracle and eta = 0, each DDIM state is mu + sqrt(abar)(h0 - mu) + sqrt(1 - abar) * (h_K - mu):
    the kernel's (mu, sigma) stay fixed and the noise direction is preserved along the trajectory."""
    h0 = _h0()
    out = run_chain(ddim(5, prediction="x0"), Oracle(h0), None, N, gmm=_gmm(),
                    generator=torch.Generator().manual_seed(0), record="all")
    mu, _ = kernel_params(_gmm().means, _gmm().variances, out.kernel)
    mu[:, :, 0] = 0
    h_K = out.trajectory[:, :, 0]
    a_K = SCHEDULE.alpha_bar(out.timesteps[0])
    noise_dir = (h_K - mu - a_K.sqrt() * (h0[:, None] - mu)) / (1 - a_K).sqrt()
    for s, t in enumerate(out.timesteps[1:-1], start=1):
        a = SCHEDULE.alpha_bar(t)
        expected = mu + a.sqrt() * (h0[:, None] - mu) + (1 - a).sqrt() * noise_dir
        assert torch.allclose(out.trajectory[:, :, s], expected, atol=1e-5), t


def test_eps_mode_consistency_with_the_gmm_forward():
    """x0 estimate from the true eps equals h_0; the x0-mode oracle step lands on the same-eps marginal."""
    h0 = _h0()
    gmm = _gmm()
    g = torch.Generator().manual_seed(5)
    t = torch.full((B,), 150)
    fwd = gmm_q_sample(h0, t, gmm.weights, gmm.means, gmm.variances, SCHEDULE, g)
    sampler = ddim()
    by_eps = sampler.move(fwd.eps, 150, 90, fwd.h_t, fwd.mu, fwd.std, prediction="eps")
    by_x0 = sampler.move(h0, 150, 90, fwd.h_t, fwd.mu, fwd.std, prediction="x0")
    assert torch.allclose(by_eps.x0, h0, atol=1e-5)
    a = SCHEDULE.alpha_bar(90)
    expected_prev = fwd.mu + a.sqrt() * (h0 - fwd.mu) + (1 - a).sqrt() * fwd.std * fwd.eps
    assert torch.allclose(by_x0.prev, expected_prev, atol=1e-5)
    assert torch.allclose(by_eps.prev, expected_prev, atol=1e-5)
    # Per-sample tensor steps give the same answer as int steps.
    by_tensor = sampler.move(h0, t, torch.full((B,), 90), fwd.h_t, fwd.mu, fwd.std, prediction="x0")
    assert torch.allclose(by_tensor.prev, by_x0.prev, atol=1e-6)


def _small_denoiser(context_dim: int = 8) -> GraFormerDenoiser:
    torch.manual_seed(0)
    return GraFormerDenoiser(3, context_dim, hidden=16, layers=1, heads=2, prediction="eps").eval()


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_same_generator_gives_the_same_samples(eta):
    net, ctx = _small_denoiser(), torch.randn(B, 17, 8)
    sampler = ddim(eta=eta)

    def run(seed):
        return run_chain(sampler, net, ctx, N, gmm=_gmm(), generator=torch.Generator().manual_seed(seed), record="all")

    a, b, c = run(0), run(0), run(1)
    assert torch.equal(a.hypotheses, b.hypotheses) and torch.equal(a.trajectory, b.trajectory)
    assert not torch.allclose(a.hypotheses, c.hypotheses)
    assert torch.isfinite(a.hypotheses).all() and (a.hypotheses[:, :, 0] == 0).all()


@pytest.mark.parametrize("eta", [0.0, 0.8])
def test_tiling_over_frames_does_not_change_the_result(eta):
    """CPU tiling (chunk_frames) only regroups the work: every draw is made before the loop."""
    net, ctx = _small_denoiser(), torch.randn(B, 17, 8)
    sampler = ddim(eta=eta)
    runs = [run_chain(sampler, net, ctx, N, gmm=_gmm(), generator=torch.Generator().manual_seed(3), record=[0, -1],
                      chunk_frames=c, workers=w) for c, w in ((None, 1), (1, 1), (2, 1), ("auto", 1), (1, 2))]
    for r in runs[1:]:
        assert torch.allclose(r.hypotheses, runs[0].hypotheses, atol=1e-5)
        assert torch.allclose(r.x0_trajectory, runs[0].x0_trajectory, atol=1e-5)
        assert torch.equal(r.kernel, runs[0].kernel) and r.timesteps == runs[0].timesteps
    # The fast path (eval-mode GraFormerDenoiser) equals calling the module with repeated context.
    slow = run_chain(sampler, lambda x, t, c: net(x, t, c), ctx, N, gmm=_gmm(),
                     generator=torch.Generator().manual_seed(3), record=[0, -1])
    assert torch.allclose(slow.hypotheses, runs[0].hypotheses, atol=1e-5)
    with pytest.raises(ValueError, match="chunk_frames"):
        run_chain(sampler, net, ctx, N, gmm=_gmm(), chunk_frames=0)
    threads = torch.get_num_threads()
    run_chain(sampler, net, ctx, N, gmm=_gmm(), chunk_frames=1, workers=3)
    assert torch.get_num_threads() == threads  # the intra-op thread count is restored


def test_eta_zero_is_deterministic_given_the_start_state():
    net, ctx = _small_denoiser(), torch.randn(B, 17, 8)
    start = _h0(7)
    sampler = ddim(eta=0.0)
    a = run_chain(sampler, net, ctx, N, gmm=_gmm(), generator=torch.Generator().manual_seed(0), start_from=start)
    b = run_chain(sampler, net, ctx, N, gmm=_gmm(), generator=torch.Generator().manual_seed(0), start_from=start)
    assert torch.equal(a.hypotheses, b.hypotheses)


def test_trajectory_shapes_and_start_is_the_draw_from_H_K():
    gmm, n_steps = _gmm(), 5
    out = run_chain(ddim(n_steps), _small_denoiser(), torch.randn(B, 17, 8), N, gmm=gmm,
                    generator=torch.Generator().manual_seed(3), record="all")
    S = n_steps + 1
    assert out.trajectory.shape == out.x0_trajectory.shape == (B, N, S, 17, 3)
    assert out.timesteps == SCHEDULE.ddim_timesteps(n_steps) + [-1]
    assert torch.equal(out.trajectory[:, :, -1], out.hypotheses)
    assert torch.equal(out.x0_trajectory[:, :, -1], out.hypotheses)
    # State 0 is h_K: the same draw as H_K's own sampler, made from the same generator state.
    g = torch.Generator().manual_seed(3)
    kernel = draw_kernels(gmm.weights, N, g)
    mu, std = kernel_params(gmm.means, gmm.variances, kernel)
    mu[:, :, 0], std[:, :, 0] = 0, 0
    h_K = mu + std * torch.randn(mu.shape, generator=g)
    assert torch.equal(out.kernel, kernel)
    assert torch.equal(out.trajectory[:, :, 0], h_K)
    # ... and it lies within a few std of its kernel's mean (a real draw from that kernel).
    z = ((h_K - mu)[:, :, 1:] / std[:, :, 1:]).abs()
    assert z.max() < 6


def test_record_selected_states_or_none():
    sampler = ddim(5, prediction="x0")
    out = run_chain(sampler, Oracle(_h0()), None, N, gmm=_gmm(), record=[0, -1, 2])
    assert out.trajectory.shape == (B, N, 3, 17, 3)
    ts = SCHEDULE.ddim_timesteps(5)
    assert out.timesteps == [ts[0], ts[2], -1]
    none = run_chain(sampler, Oracle(_h0()), None, N, gmm=_gmm())
    assert none.trajectory is None and none.x0_trajectory is None
    with pytest.raises(ValueError, match="out of range"):
        run_chain(sampler, Oracle(_h0()), None, N, gmm=_gmm(), record=[6])


def test_context_is_repeated_per_hypothesis_in_frame_order():
    ctx = torch.arange(B, dtype=torch.float32)[:, None, None].expand(B, 17, 4).contiguous()

    def echo(x, t, context):  # x0 = the frame's context value: checks the (B*N) layout
        return context[..., :3]

    out = run_chain(ddim(3, prediction="x0"), echo, ctx, N, gmm=_gmm())
    expected = ctx[:, None, :, :3].expand(B, N, 17, 3).clone()
    expected[:, :, 0] = 0
    assert torch.equal(out.hypotheses, expected)


def test_gaussian_mode_takes_batch_from_context_and_real_networks_stay_finite():
    enc = FrameContextEncoder(8, hidden=16, layers=1, heads=2).eval()
    pose2d = torch.randn(B, 17, 3)
    pose2d[:, 5, :2] = float("nan")
    pose2d[:, 7, 2] = 0.0
    ctx = enc(pose2d)
    out = run_chain(ddim(mode="gaussian", gaussian_scale=0.3), _small_denoiser(), ctx, N,
                    generator=torch.Generator().manual_seed(0))
    assert out.hypotheses.shape == (B, N, 17, 3) and torch.isfinite(out.hypotheses).all()
    with pytest.raises(ValueError, match="needs the H_K"):
        run_chain(ddim(), _small_denoiser(), ctx, N)
    with pytest.raises(ValueError, match="prediction"):
        ddim(prediction="v")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: checks the step loop never syncs with the host")
def test_step_loop_never_syncs_with_the_host_on_cuda():
    device = torch.device("cuda")
    net = _small_denoiser().to(device)
    ctx = torch.randn(B, 17, 8, device=device)
    gmm = _gmm().to(device)
    sampler = ddim(eta=0.5)
    g = torch.Generator(device=device).manual_seed(0)
    run_chain(sampler, net, ctx, N, gmm=gmm, generator=g, record="all")  # warm-up: kernels, caches
    state = sampler.start(B, N, gmm=gmm, generator=g)
    denoise = net.conditioned(ctx, B)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = _run(sampler, state.tile(0, B, denoise), "all", B, N)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert out.trajectory.device.type == "cuda" and torch.isfinite(out.hypotheses).all()


def test_clip_x0_bounds_the_eps_mode_estimate():
    h_t = torch.zeros(2, 17, 3)
    eps = torch.full((2, 17, 3), 5.0)  # a wild eps at a step where abar ~ 0 gives a huge x0
    s = NoiseSchedule("cosine", 50)
    wild = DDIMSampler(s).move(eps, 49, 30, h_t, prediction="eps")
    clipped = DDIMSampler(s, SamplingSetting(clip_x0=2.0)).move(eps, 49, 30, h_t, prediction="eps")
    assert wild.x0.abs().max() > 100
    assert clipped.x0.abs().max() == 2.0 and torch.isfinite(clipped.prev).all()
    with pytest.raises(ValueError, match="clip_x0"):
        SamplingSetting(clip_x0=0.0)
    with pytest.raises(ValueError, match="t_prev"):
        DDIMSampler(s).move(eps, 10, 10, h_t, prediction="eps")


def test_bf16_autocast_keeps_the_state_float32():
    from diffpose_viz.inference import autocast

    net, ctx = _small_denoiser(), torch.randn(B, 17, 8)
    sampler = ddim(3)
    with autocast("cpu", "bf16"):
        half = run_chain(sampler, net, ctx, N, gmm=_gmm(), generator=torch.Generator().manual_seed(0), record="all")
    full = run_chain(sampler, net, ctx, N, gmm=_gmm(), generator=torch.Generator().manual_seed(0), record="all")
    assert half.hypotheses.dtype == torch.float32 and half.x0_trajectory.dtype == torch.float32
    assert torch.isfinite(half.hypotheses).all() and not torch.equal(half.hypotheses, full.hypotheses)
    with pytest.raises(ValueError, match="amp"):
        autocast("cpu", "fp8")
