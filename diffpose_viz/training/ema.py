"""Exponential moving average of a model's weights: the copy that is evaluated and shipped."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """shadow = d * shadow + (1 - d) * weights after every optimiser step, with the usual warm-up
    d = min(decay, (1 + n) / (10 + n)) so that a short run's EMA is not stuck at the initial weights.

    Buffers (e.g. BatchNorm running statistics) are copied, not averaged. The shadow is a full
    module (`self.module`) in eval mode, so evaluation code can call it like the raw model.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must lie in [0, 1), found {decay}")
        self.decay = float(decay)
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.num_updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.num_updates += 1
        d = min(self.decay, (1.0 + self.num_updates) / (10.0 + self.num_updates))
        ema_params = list(self.module.parameters())
        params = [p.detach() for p in model.parameters()]
        torch._foreach_mul_(ema_params, d)
        torch._foreach_add_(ema_params, params, alpha=1.0 - d)
        for eb, b in zip(self.module.buffers(), model.buffers()):
            eb.copy_(b)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "num_updates": self.num_updates, "module": self.module.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.decay = float(state["decay"])
        self.num_updates = int(state["num_updates"])
        self.module.load_state_dict(state["module"])
