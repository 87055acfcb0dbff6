"""How a trained model samples: every knob that may change after training, in one validated value.

The config's `sampling:` section is one `SamplingSetting` (the model's own defaults, written into every
checkpoint); a request from the command line, the lab or the dashboard is another one whose None fields keep
the model's values (`over`). `Method.sampling` resolves the request once; the sampler, the executor and the
results read the resolved value only.

Configs and checkpoints written before this section existed kept these keys under `diffusion:` and
`official:`; `LEGACY_KEYS` says where each one lives now (the config reader moves them, `--sampling` accepts
both names), so an old run samples exactly as it did.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

from diffpose_viz.diffusion.schedule import SKIP_KINDS
from diffpose_viz.errors import ConfigError

#: Mixed-precision settings a sampling run may ask for ('bf16': the networks under torch.autocast).
AMP_CHOICES = ("none", "bf16")
START_FROM = ("hk", "context")

#: Dotted config keys of earlier versions -> the field of SamplingSetting that holds them now.
LEGACY_KEYS = {
    "diffusion.n_hypotheses": "n_hypotheses",
    "diffusion.n_sampling_steps": "n_steps",
    "diffusion.eta": "eta",
    "diffusion.skip": "skip",
    "diffusion.start_t": "start_t",
    "diffusion.start_from": "start_from",
    "diffusion.clip_x0": "clip_x0",
    "official.test_timesteps": "official_steps",
}


@dataclass(frozen=True)
class SamplingSetting:
    """One sampling run's knobs (None: the model's own value; see the module docstring).

    n_hypotheses N and n_steps K (DDIM steps); eta (0: deterministic DDIM); skip ('uniform' or 'quad' spacing of
    the K steps); start_t (the step the reverse chain starts at; None: the schedule's last); start_from ('hk': a
    draw from H_K; 'context': the frozen phi_ST's pose, two-stage diffpose); clip_x0 (metres, eps-prediction: bound
    on the x0 estimate); official_steps (the released procedure's steps); sampler (a name of
    `diffusion.samplers.SAMPLERS`; None: the method's own); seed (None: train.seed); amp ('bf16': networks under
    autocast); record (keep every reverse-diffusion state); batch_size (frames per predict call); start_step (the
    lab: begin at that one of the K DDIM steps)."""

    n_hypotheses: int | None = None
    n_steps: int | None = None
    eta: float | None = None
    skip: str | None = None
    start_t: int | None = None
    start_from: str | None = None
    clip_x0: float | None = None
    official_steps: int | None = None
    sampler: str | None = None
    seed: int | None = None
    amp: str | None = None
    record: bool | None = None
    batch_size: int | None = None
    start_step: int | None = None

    def __post_init__(self) -> None:
        def bad(key: str, expected: str) -> None:
            raise ConfigError(f"sampling {key}: expected {expected}, found {getattr(self, key)!r}")

        for key in ("n_hypotheses", "official_steps", "batch_size"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
                bad(key, "an integer >= 1")
        for key in ("n_steps", "start_t", "start_step", "seed"):  # n_steps 0: a method that takes no steps
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or int(value) != value or value < 0):
                bad(key, "an integer >= 0")
        if self.eta is not None and not self.eta >= 0:
            bad("eta", "a number >= 0")
        if self.clip_x0 is not None and not self.clip_x0 > 0:
            bad("clip_x0", "a bound > 0 metres or null")
        for key, choices in (("skip", SKIP_KINDS), ("start_from", START_FROM), ("amp", AMP_CHOICES)):
            if getattr(self, key) not in (None, *choices):
                bad(key, f"one of {list(choices)}")
        if self.sampler is not None:
            from diffpose_viz.diffusion.samplers import SAMPLERS  # the table imports this module

            if self.sampler not in SAMPLERS:
                bad("sampler", f"one of {list(SAMPLERS)}")

    def over(self, defaults: "SamplingSetting") -> "SamplingSetting":
        """This request with every field it leaves None taken from `defaults` (the model's setting)."""
        return dataclasses.replace(defaults, **{f.name: getattr(self, f.name) for f in fields(self)
                                                if getattr(self, f.name) is not None})

    @classmethod
    def from_items(cls, items: list[str] | tuple[str, ...], base: "SamplingSetting | None" = None,
                   source: str = "--sampling") -> "SamplingSetting":
        """`base` (default: an empty request) with 'key=value' changes; a key is a field name or its
        LEGACY_KEYS name (e.g. 'eta=0.5', 'diffusion.start_t=12'); an unknown key is refused naming the valid ones."""
        import yaml

        changes = {}
        for item in items:
            key, sep, raw = item.partition("=")
            key = LEGACY_KEYS.get(key.strip(), key.strip())
            if not sep or key not in SETTING_KEYS:
                raise ConfigError(f"{source} {item!r}: expected key=value with a key among {list(SETTING_KEYS)} "
                                  f"(or an older name: {list(LEGACY_KEYS)})")
            value = yaml.safe_load(raw) if raw.strip() else None
            changes[key] = _typed(key, value, source)
        return dataclasses.replace(base or cls(), **changes)


SETTING_KEYS = tuple(f.name for f in fields(SamplingSetting))
_NUMBER_KEYS = {"eta": float, "clip_x0": float}
_INT_KEYS = ("n_hypotheses", "n_steps", "start_t", "official_steps", "seed", "batch_size", "start_step")


def _typed(key: str, value, source: str):
    """A parsed YAML value converted to the field's type (ConfigError naming the key when it does not fit)."""
    if value is None:
        return None
    try:
        if key in _NUMBER_KEYS and not isinstance(value, bool):
            return float(value)
        if key in _INT_KEYS and not isinstance(value, bool) and int(value) == value:
            return int(value)
        if key == "record" and isinstance(value, bool):
            return value
        if key in ("skip", "start_from", "sampler", "amp") and isinstance(value, str):
            return value
    except (TypeError, ValueError):
        pass
    raise ConfigError(f"{source} {key}={value!r}: not a valid value for {key}")


#: The setting a config without a `sampling:` section (and without the legacy keys) has.
DEFAULT_SAMPLING = SamplingSetting(n_hypotheses=5, n_steps=5, eta=0.0, skip="uniform", start_from="hk", clip_x0=2.0,
                                   official_steps=2, amp="none", record=False, batch_size=256, start_step=0)
