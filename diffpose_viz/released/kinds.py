"""What `diffpose-viz import` accepts (no torch import here: the CLI reads it to build its parser)."""

KINDS = ("diffpose-frame", "diffpose-video", "mixste", "videopose3d")
#: The released frame test settings (Diffpose configs/*.yml, `testing`): (test_num_diffusion_timesteps,
#: test_timesteps).
PROTOCOLS = {"cpn": (24, 2), "gt": (12, 2)}
#: Diffpose_video's configs/human36m_diffpose_uvxyz_cpn.yml: one step from t = 6.
VIDEO_PROTOCOL = (6, 1)
