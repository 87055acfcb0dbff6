"""Diffusion process: noise schedule, forward (GMM / Gaussian / official) noising, the sampling setting, the
samplers (DDIM, the released procedure) and the one executor around them."""
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
from diffpose_viz.diffusion.schedule import NoiseSchedule, ScheduleConfig, official_timesteps
from diffpose_viz.diffusion.setting import AMP_CHOICES, SamplingSetting
from diffpose_viz.diffusion.sampler import ChainState, SampleResult, Sampler, StepOutput
from diffpose_viz.diffusion.ddim import DDIMSampler
from diffpose_viz.diffusion.released import ReleasedSampler
from diffpose_viz.diffusion.samplers import SAMPLERS
from diffpose_viz.diffusion.executor import run_chain

__all__ = [
    "AMP_CHOICES", "ChainState", "DDIMSampler", "ForwardSample", "NoiseSchedule", "ReleasedSampler", "SAMPLERS",
    "SampleResult", "Sampler", "SamplingSetting", "ScheduleConfig", "StepOutput", "antithetic_timesteps",
    "draw_kernels", "gaussian_q_sample", "gmm_q_sample", "kernel_params", "official_q_sample",
    "official_timesteps", "run_chain", "shifted_q_sample", "x0_from_eps",
]
