"""The sampler table: one line per sampler (a `Sampler` subclass in its own file, diffusion/sampler.py says
what it implements). A method names its own (`Method.sampler_name`); `sampling.sampler` picks another."""
from __future__ import annotations

from diffpose_viz.diffusion.ddim import DDIMSampler
from diffpose_viz.diffusion.released import ReleasedSampler
from diffpose_viz.diffusion.sampler import Sampler

SAMPLERS: dict[str, type[Sampler]] = {
    DDIMSampler.name: DDIMSampler,
    ReleasedSampler.name: ReleasedSampler,
}
