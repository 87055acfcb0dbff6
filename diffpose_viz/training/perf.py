"""Training speed settings (`train.amp`, `train.threads`, `train.compile`) and the one-line refusals that go
with them: a setting the machine cannot honour says so in one line and falls back (bf16 without bf16
instructions, torch.compile unavailable) or stops (a batch that does not fit in memory); none of them changes
the numbers silently."""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import torch
from torch import nn

from diffpose_viz.inference import autocast

log = logging.getLogger(__name__)


class BatchTooLarge(RuntimeError):
    """A training step needs more memory than the device has."""


def cpu_has_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (AVX512-BF16 or AMX); without it bf16 autocast is emulated
    and slower than float32."""
    check = getattr(getattr(torch.ops, "mkldnn", None), "_is_mkldnn_bf16_supported", None)
    try:
        if check is not None and not check():
            return False
    except RuntimeError:
        pass
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: trust oneDNN's answer
        return bool(check and check())
    return any(f in flags for f in ("avx512_bf16", "amx_bf16"))


def resolve_amp(amp: str, device: torch.device, what: str = "train.amp") -> str:
    """The autocast mode to use: `amp`, or 'none' with one warning line where the device cannot run it fast."""
    if amp not in ("none", "bf16"):
        raise ValueError(f"{what}: expected 'none' or 'bf16', found {amp!r}")
    if amp == "bf16" and device.type == "cpu" and not cpu_has_bf16():
        log.warning("%s bf16: this CPU has no bf16 instructions (avx512_bf16 / amx_bf16); training in float32", what)
        return "none"
    if amp == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        log.warning("%s bf16: this GPU does not support bf16; training in float32", what)
        return "none"
    return amp


def apply_threads(threads: int | None) -> int:
    """Set this process's intra-op threads (None: leave torch's default); returns the number in use."""
    if threads is not None:
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()


def _unavailable(what: str, err: BaseException) -> None:
    log.warning("%s: torch.compile is unavailable here (%s: %s); training eagerly", what, type(err).__name__,
                str(err).splitlines()[0] if str(err) else "")


class CompiledOrEager(nn.Module):
    """torch.compile(net), falling back to net itself (one line) if compiling fails at the first call, where
    torch.compile's own failures show (no C compiler, an unsupported backend). Holds no parameters of its own."""

    def __init__(self, net: nn.Module, what: str = "train.compile") -> None:
        super().__init__()
        self.net, self.what, self.checked = net, what, False
        self.fast = torch.compile(net)

    def forward(self, *args, **kwargs):
        if self.checked:
            return self.fast(*args, **kwargs)
        try:
            out = self.fast(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - a failure to compile: eager from now on, said once
            if is_out_of_memory(err):
                raise
            _unavailable(self.what, err)
            self.fast = self.net
            out = self.net(*args, **kwargs)  # a genuine error in the network raises here, unchanged
        self.checked = True
        return out


def compiled(net: nn.Module, enabled: bool, what: str = "train.compile") -> nn.Module:
    """torch.compile(net) when enabled and available; otherwise net, with one line saying why."""
    if not enabled:
        return net
    try:
        import torch._dynamo  # noqa: F401  (absent or broken builds fail here; a failing compiler at the first call)

        return CompiledOrEager(net, what)
    except Exception as err:  # noqa: BLE001 - any failure: eager mode, said once
        _unavailable(what, err)
        return net


def is_out_of_memory(err: BaseException) -> bool:
    if isinstance(err, torch.OutOfMemoryError):
        return True
    msg = str(err)
    return isinstance(err, RuntimeError) and ("can't allocate memory" in msg or "not enough memory" in msg
                                              or "out of memory" in msg.lower())


@contextlib.contextmanager
def memory_guard(batch_size: int, device: torch.device):
    """Turn an allocation failure inside a training step into one line naming the batch and the fix."""
    try:
        yield
    except (RuntimeError, MemoryError) as err:
        if not (isinstance(err, MemoryError) or is_out_of_memory(err)):
            raise
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise BatchTooLarge(f"train.batch_size {batch_size}: one training step does not fit in {device} memory "
                            f"({first[:160]}); lower train.batch_size") from None


class AutocastForward(nn.Module):
    """Runs the wrapped network's forward under bf16 autocast and hands back float32 tensors, so the loss,
    the diffusion state and everything after the network stay float32 (the weights and the optimiser's state
    are float32 throughout). Holds no parameters of its own."""

    def __init__(self, net: nn.Module, device: torch.device, amp: str) -> None:
        super().__init__()
        self.net, self.device_type, self.amp = net, torch.device(device).type, amp

    def forward(self, *args, **kwargs):
        with autocast(self.device_type, self.amp):
            out = self.net(*args, **kwargs)
        return out.float() if isinstance(out, torch.Tensor) and out.is_floating_point() else out


def forward_module(net: nn.Module, device: torch.device, amp: str, compile_net: bool) -> nn.Module:
    """What the loss calls: the network, compiled when asked, under autocast when amp is 'bf16'."""
    fwd = compiled(net, compile_net)
    return AutocastForward(fwd, device, amp) if amp == "bf16" else fwd
