"""Data layer: file formats, validation, the flat `PoseSet`, the demo dataset (their errors are
`diffpose_viz.errors.DataError`).

`demo` is not imported here (it pulls in the mocap readers); use
`from diffpose_viz.datasets.demo import build_demo`.
"""
from .actions import H36M_ACTIONS, action_group, group_actions, normalize_h36m_action
from .gmm_files import GMM2D, read_gmm_2d, write_gmm_2d
from .mpi3dhp import MPI3DHP17_NAMES, MPI3DHP17_TO_H36M17, load_3dhp_test
from .poses import PoseSet, build_pose_set, split_by_subject, validation_split
from .vp3d import Keypoints2D, Mocap3D, load_2d, load_3d, save_2d, save_3d

__all__ = [
    "GMM2D", "H36M_ACTIONS", "Keypoints2D", "MPI3DHP17_NAMES", "MPI3DHP17_TO_H36M17", "Mocap3D",
    "PoseSet", "action_group", "build_pose_set", "group_actions", "load_2d", "load_3d", "load_3dhp_test",
    "normalize_h36m_action", "read_gmm_2d", "save_2d", "save_3d", "split_by_subject",
    "validation_split", "write_gmm_2d",
]
