"""How much memory a step may take: an estimate is checked before a large allocation, so asking for too
many hypotheses, frames or array elements is a one-line refusal naming the option to lower, not a
MemoryError traceback or the machine swapping to a halt.

Bottom layer: standard library only.
"""
from __future__ import annotations

import os
import re

#: Environment variable capping the memory this package plans with (bytes, or e.g. "2G", "512M").
LIMIT_ENV = "DIFFPOSE_VIZ_MEMORY_LIMIT"
#: Share of the available memory one allocation plan may use (the rest: the interpreter, torch, copies).
USABLE_FRACTION = 0.8
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


class MemoryBudgetError(ValueError):
    """A planned allocation would not fit the memory available."""


def parse_bytes(text: str) -> int:
    """'2G', '512M', '1.5G' or a plain byte count -> bytes."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)i?B?\s*", str(text), re.IGNORECASE)
    if not m:
        raise ValueError(f"${LIMIT_ENV}: expected a byte count such as 2G or 512M, found {text!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def available_bytes() -> int:
    """Memory available to allocate now: MemAvailable (Linux), else free physical pages, capped by
    $DIFFPOSE_VIZ_MEMORY_LIMIT when set."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = 16 * 2**30  # unknown platform: plan with a typical laptop
    if os.environ.get(LIMIT_ENV):
        avail = min(avail, parse_bytes(os.environ[LIMIT_ENV]))
    return int(avail)


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def check_fits(nbytes: float, what: str, lower: str) -> None:
    """MemoryBudgetError when `nbytes` (an estimate for `what`) exceeds the usable memory; `lower` names
    the options that shrink it."""
    budget = available_bytes() * USABLE_FRACTION
    if nbytes > budget:
        raise MemoryBudgetError(f"{what} needs about {format_bytes(nbytes)}, more than the {format_bytes(budget)} "
                                f"this machine has available ({int(USABLE_FRACTION * 100)} % of free memory"
                                f"{', capped by $' + LIMIT_ENV if os.environ.get(LIMIT_ENV) else ''}); lower {lower}")


#: Rough multipliers, generous on purpose (a refusal should mean "cannot work", not "might be tight"): copies
#: of the hypotheses the results file and its summary make (float32 Dataset, float64 metrics), and the
#: activations per state and feature of one batch of the denoiser.
RESULT_COPIES = 4
ACTIVATIONS_PER_FEATURE = 16


def lift_bytes(frames: int, hypotheses: int, steps: int, record: bool, batch: int, width: int,
               joints: int = 17) -> int:
    """Memory to lift `frames` rows to `hypotheses` each: the kept outputs (hypotheses, and with `record` the
    trajectory and x0 estimate of every step) and their copies, plus one batch of denoiser activations."""
    per_state = joints * 3 * 4  # float32 pose
    kept = frames * hypotheses * per_state * (1 + (2 * steps if record else 0)) * RESULT_COPIES
    working = min(batch, frames) * hypotheses * joints * max(width, 3) * 4 * ACTIVATIONS_PER_FEATURE
    return int(kept + working)


def check_lift_fits(frames: int, hypotheses: int, steps: int, record: bool, batch: int, width: int) -> None:
    """MemoryBudgetError naming the options when lifting this much would not fit."""
    what = (f"lifting {frames} frames x {hypotheses} hypotheses" + (f" x {steps} recorded steps" if record else "")
            + f" (batches of {min(batch, frames)} frames)")
    check_fits(lift_bytes(frames, hypotheses, steps, record, batch, width), what,
               "--hypotheses, --batch-size or the number of frames (--max-samples, --max-frames)"
               + (", or leave out --record-trajectory" if record else ""))
