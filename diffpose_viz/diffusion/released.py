"""The released DiffPose code's test procedure (notes §2c), as a sampler.

DDIM (the setting's eta, 0 in the code) on the uvxyz state with eps-prediction of the scaled noise (mu = 0,
sigma = 1), starting from the *clean* initial pose labelled as the first step of
seq = range(0, T_test, T_test // official_steps) reversed; the last move goes to abar = 1. The root is not
touched (u, v are not root-relative) and x0 is never clipped; callers root-centre the xyz output.
"""
from __future__ import annotations

import torch

from diffpose_viz.diffusion.ddim import DDIMSampler
from diffpose_viz.diffusion.sampler import ChainState, broadcast_start
from diffpose_viz.diffusion.schedule import official_timesteps


class ReleasedSampler(DDIMSampler):
    """`start_from` (B,17,D) or (B,N,17,D) is the clean initial pose; official_span is T_test."""

    name = "released"

    def __init__(self, *args, **kwargs) -> None:
        kwargs.update(keep_root=False, prediction="eps")
        super().__init__(*args, **kwargs)

    @property
    def clip_x0(self) -> float | None:
        return None

    def _timesteps(self) -> list[int]:
        steps = self.setting.official_steps
        if steps is None:
            raise ValueError("ReleasedSampler: the setting names no number of steps (official_steps)")
        timesteps = official_timesteps(self.official_span, steps, self.skip)
        if timesteps[0] > self.schedule.num_steps - 1:
            raise ValueError(f"released sampler: first step {timesteps[0]} exceeds the schedule's "
                             f"{self.schedule.num_steps - 1}")
        return timesteps

    def frames(self, gmm, context, start_from, batch_size) -> int:
        if start_from is None or start_from.ndim not in (3, 4):
            raise ValueError("released sampler: start_from must be the initial pose (B,17,D) or (B,N,17,D), found "
                             f"{None if start_from is None else tuple(start_from.shape)}")
        return start_from.shape[0]

    def start(self, B: int, N: int, *, start_from: torch.Tensor | None = None,
              generator: torch.Generator | None = None, **_) -> ChainState:
        self.frames(None, None, start_from, None)
        x = broadcast_start(start_from, B, N, start_from.shape[-1])
        return self._with_step_noise(ChainState(x), generator)
