"""What `diffpose-viz import` accepts (no torch import here: the CLI reads it to build its parser)."""

KINDS = ("diffpose-frame", "diffpose-video", "mixste", "videopose3d")
#: The released test settings per 2D input (configs/human36m_diffpose_uvxyz_{cpn,gt}.yml, `testing`):
#: (test_num_diffusion_timesteps, test_timesteps) of Diffpose (frame) and Diffpose_video.
PROTOCOLS = {"cpn": (24, 2), "gt": (12, 2)}
VIDEO_PROTOCOLS = {"cpn": (6, 1), "gt": (12, 2)}

#: What the released networks were trained and are tested on: Human3.6M in the VideoPose3D files, at the paths
#: the shipped configs/h36m_*.yaml use (relative to the folder `diffpose-viz` runs from; docs/REPRODUCE_PAPER.md).
#: It is the imported run's `data` section: `evaluate` tests on its S9/S11 rows and calibrates the error bars on
#: held-out S1-S8 sequences; `import --data/--train-2d/--test-2d` change the paths.
H36M = "../data/h36m/"
CPN_2D = H36M + "data_2d_h36m_cpn_ft_h36m_dbb.npz"
HUMAN36M_DATA = {"path": H36M + "data_3d_h36m.npz", "train_subjects": ["S1", "S5", "S6", "S7", "S8"],
                 "test_subjects": ["S9", "S11"], "cameras": None, "frame_stride": 1, "max_frames": None,
                 "input_2d": "file", "uncertainty_2d": "error_model", "validation_fraction": 0.05}
#: Per kind (and protocol / input layout): the 2D files. The frame models train on the ground-truth projection
#: (train_2d null) and test on CPN or GT 2D; the video models read CPN (Detectron COCO for VideoPose3D's COCO model).
GT_2D = H36M + "data_2d_h36m_gt.npz"
TWO_D = {"diffpose-frame/cpn": {"train_2d": None, "test_2d": CPN_2D},
         "diffpose-frame/gt": {"train_2d": None, "test_2d": GT_2D},
         "diffpose-video/gt": {"train_2d": None, "test_2d": GT_2D, "uncertainty_2d": "fixed"},
         "video/h36m": {"train_2d": CPN_2D, "test_2d": CPN_2D},
         "video/coco": {"train_2d": H36M + "data_2d_h36m_detectron_pt_coco.npz",
                        "test_2d": H36M + "data_2d_h36m_detectron_pt_coco.npz"}}
