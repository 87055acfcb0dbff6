"""VideoPose3D's TemporalModel files (pretrained_h36m_cpn.bin, pretrained_h36m_detectron_coco.bin, or your own
run.py checkpoint) as a `video_lifter` of kind tcn: the kit's TCNLifter keeps the released parameter names."""
from __future__ import annotations

from pathlib import Path

from diffpose_viz.config import ExperimentConfig, ModelConfig, VideoLifterConfig
from diffpose_viz.errors import CheckpointError, ConfigError
from diffpose_viz.methods import VideoLifter, get_method
from diffpose_viz.models.tcn import receptive_field
from diffpose_viz.released import layouts
from diffpose_viz.released.files import load_released_state
from diffpose_viz.released.importer import Network, check_frames

WHAT = "VideoPose3D TemporalModel"
LAYOUTS = {"h36m": "h36m17", "coco": "coco17"}
N_IN, N_OUT = 17 * 2, 17 * 3  # 17 joints x (u, v) in, 17 joints x (x, y, z) out


def read_tcn(path: Path, frames: int | None = None, input_layout: str = "h36m") -> Network:
    if input_layout not in LAYOUTS:
        raise ConfigError(f"import videopose3d: --input must be one of {list(LAYOUTS)}, found {input_layout!r}")
    state = load_released_state(path, WHAT)
    layouts.refuse_unless(state, {"expand_conv.weight": 3, "shrink.weight": 3}, path, WHAT)
    channels, n_in, first = state["expand_conv.weight"].shape
    n_out = state["shrink.weight"].shape[0]
    if (n_in, n_out) != (N_IN, N_OUT):
        raise CheckpointError(f"{path}: a {WHAT} for 17 joints reads {N_IN} and writes {N_OUT} channels; this one "
                              f"reads {n_in} (expand_conv.weight {tuple(state['expand_conv.weight'].shape)}) and writes "
                              f"{n_out} (shrink.weight {tuple(state['shrink.weight'].shape)})")
    blocks = layouts.layer_count(state, r"^layers_conv\.(\d+)\.") // 2
    widths = [int(first)] + [int(state[f"layers_conv.{2 * i}.weight"].shape[-1]) for i in range(blocks)
                             if f"layers_conv.{2 * i}.weight" in state]
    implied = receptive_field(widths)
    if len(set(widths)) != 1 or widths[0] % 2 == 0 or widths[0] < 3:
        raise CheckpointError(f"{path}: filter widths {widths} (from expand_conv and layers_conv.2i): the kit builds "
                              "equal odd widths >= 3 (the released models: [3, 3, 3, 3, 3]); a dense (ablation) model "
                              "is not supported")
    check_frames(path, frames, implied, f"filter widths {widths}")
    model = ModelConfig(context="video", frames=implied, released=True, released_input=LAYOUTS[input_layout],
                        video_lifter=VideoLifterConfig(kind="tcn", channels=int(channels), filter_width=widths[0]))
    cfg = ExperimentConfig(name=f"released videopose3d ({input_layout})", method=VideoLifter.name, model=model)
    kit_state = get_method(cfg.method).build_network(cfg).state_dict()
    rules = layouts.identity_rules(k[len("net."):] for k in kit_state)
    weights = layouts.to_kit(state, kit_state, rules, path, f"{WHAT} with filter widths {widths}", prefix="net.")
    return Network("tcn", path, cfg, weights, {"frames": implied, "widths": widths, "channels": int(channels),
                                               "input": input_layout})
