"""Pose-guided editing: the skeleton, the detector's decoding, and the part-wise warp. No Qt here."""
from .skeleton import BONES, JOINT_INDEX, JOINTS, Pose

__all__ = ["BONES", "JOINTS", "JOINT_INDEX", "Pose"]
