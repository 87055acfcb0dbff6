"""Motion-capture file readers (BVH, ASF/AMC) and rig tables mapping them to H36M-17."""
from .asf_amc import AMCMotion, ASFSkeleton, parse_amc, parse_asf, read_amc, read_asf
from .bvh import BVHMotion, parse_bvh, read_bvh
from .rigs import RIGS, Rig, auto_rig, to_h36m17, to_world_metres

__all__ = ["AMCMotion", "ASFSkeleton", "BVHMotion", "RIGS", "Rig", "auto_rig", "parse_amc", "parse_asf", "parse_bvh", "read_amc",
           "read_asf", "read_bvh", "to_h36m17", "to_world_metres"]
