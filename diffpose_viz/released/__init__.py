"""The released DiffPose, MixSTE and VideoPose3D networks' files as kit checkpoints (`diffpose-viz import`)."""
from diffpose_viz.released.kinds import KINDS, PROTOCOLS


def import_released(*args, **kwargs):
    """diffpose_viz.released.importer.import_released (imported on use: torch is not needed to list the kinds)."""
    from diffpose_viz.released.importer import import_released as run

    return run(*args, **kwargs)


__all__ = ["KINDS", "PROTOCOLS", "import_released"]
