"""Diffusion process: noise schedule, forward (GMM / Gaussian / official) noising, DDIM sampler."""
from diffpose_viz.diffusion.forward import (
    ForwardSample,
    antithetic_timesteps,
    draw_kernels,
    gaussian_q_sample,
    gmm_q_sample,
    kernel_params,
    official_q_sample,
    shifted_q_sample,
    x0_from_eps,
)
from diffpose_viz.diffusion.sampler import DDIMSampler, SampleResult, StepOutput
from diffpose_viz.diffusion.schedule import NoiseSchedule, ScheduleConfig, official_timesteps

__all__ = [
    "DDIMSampler", "ForwardSample", "NoiseSchedule", "SampleResult", "ScheduleConfig", "StepOutput",
    "antithetic_timesteps", "draw_kernels", "gaussian_q_sample", "gmm_q_sample", "kernel_params",
    "official_q_sample", "official_timesteps", "shifted_q_sample", "x0_from_eps",
]
