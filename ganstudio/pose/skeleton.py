"""The editable skeleton: 17 COCO-order joints, their bones, and a pose's JSON form.

Coordinates are image pixels (x right, y down, pixel centres at integer + 0.5 are not assumed: a joint at (0, 0)
is the top-left corner of the image). No Qt and no torch here: the GUI, the CLI and the tool all share it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import write_text_atomic

JOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear",
          "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
          "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")
JOINT_INDEX = {name: i for i, name in enumerate(JOINTS)}

#: The 17 joints' indices among MediaPipe Pose's 33 landmarks (the teacher labels' order).
MEDIAPIPE_TO_JOINTS = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)

#: A left-right mirror swaps these joints.
FLIP_ORDER = tuple(JOINT_INDEX[n.replace("left_", "@").replace("right_", "left_").replace("@", "right_")]
                   for n in JOINTS)

#: Each joint's parent when dragging: moving a joint carries its children along (forward kinematics). The torso
#: root is the shoulders' and hips' own frame, so those four have no parent.
PARENT = {
    "nose": None, "left_eye": "nose", "right_eye": "nose", "left_ear": "nose", "right_ear": "nose",
    "left_shoulder": None, "right_shoulder": None, "left_hip": None, "right_hip": None,
    "left_elbow": "left_shoulder", "left_wrist": "left_elbow",
    "right_elbow": "right_shoulder", "right_wrist": "right_elbow",
    "left_knee": "left_hip", "left_ankle": "left_knee",
    "right_knee": "right_hip", "right_ankle": "right_knee",
}

#: Lines drawn between joints (the overlay) — also the limbs the warp moves rigidly.
BONES = (("left_shoulder", "right_shoulder"), ("left_hip", "right_hip"),
         ("left_shoulder", "left_hip"), ("right_shoulder", "right_hip"),
         ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
         ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
         ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
         ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
         ("nose", "left_eye"), ("nose", "right_eye"), ("left_eye", "left_ear"), ("right_eye", "right_ear"))

#: Limbs the warp moves as rigid parts (each carries the pixels nearest to it).
LIMBS = (("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
         ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
         ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
         ("right_hip", "right_knee"), ("right_knee", "right_ankle"))

HEAD = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
TORSO = ("left_shoulder", "right_shoulder", "left_hip", "right_hip")

_FORMAT = "ganstudio-pose"


#: A joint the detector is at least this sure of counts as found (the overlay draws the others faint).
FOUND = 0.3


def limb_of(joint: str) -> str:
    """The part of the body a joint belongs to, as a user names it: "head", "left arm", "right leg"."""
    side, _, part = joint.partition("_")
    if not part or part in ("eye", "ear"):
        return "head"
    return f"{side} {'arm' if part in ('shoulder', 'elbow', 'wrist') else 'leg'}"


def unfound_moves(source: Pose, target: Pose, tolerance: float = 1.0) -> list[str]:
    """The parts of the body an edit would move without knowing where they are: a joint that moves more than
    ``tolerance`` pixels, or the joint it turns about, was not found in ``source`` (confidence below
    :data:`FOUND`; a joint placed by hand has confidence 1). In body order, each part once."""
    moved = np.linalg.norm(target.points - source.points, axis=1) > tolerance
    needed = set()
    for index in np.flatnonzero(moved):
        joint = JOINTS[index]
        needed.add(joint)
        if PARENT[joint] is not None:
            needed.add(PARENT[joint])
    parts: list[str] = []
    for joint in JOINTS:
        if joint in needed and source.confidence[JOINT_INDEX[joint]] < FOUND and limb_of(joint) not in parts:
            parts.append(limb_of(joint))
    return parts


def unfound_message(parts: list[str]) -> str:
    """Why an edit of these parts (:func:`unfound_moves`) is refused, and what to do."""
    names = " and ".join(f"the {part}" for part in parts)
    one = len(parts) == 1
    return (f"{names[0].upper() + names[1:]} {'was' if one else 'were'} not found: place {'its' if one else 'their'} "
            f"joints by hand or lock {'it' if one else 'them'}")


def found_text(pose: Pose) -> str:
    """What a detection found, part by part: "Found the head, both arms and the left leg; not found: the right
    leg (drawn faint)"."""
    parts = ("head", "left arm", "right arm", "left leg", "right leg")
    sure = {part: all(pose.confidence[i] >= FOUND for i, j in enumerate(JOINTS) if limb_of(j) == part)
            for part in parts}

    def listed(names: list[str]) -> str:
        for side in ("arm", "leg"):
            if f"left {side}" in names and f"right {side}" in names:
                names = [n for n in names if not n.endswith(side)] + [f"both {side}s"]
        names = [f"the {n}" if not n.startswith("both") else n for n in names]
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]

    found = [p for p in parts if sure[p]]
    missing = [p for p in parts if not sure[p]]
    if not found:
        return "No person found: place the joints by hand, or load a pose"
    text = f"Found {listed(found)}"
    return text + (f"; not found: {listed(missing)} (drawn faint: drag a faint joint to where it is to place "
                   "it)" if missing else "")


def children(joint: str) -> list[str]:
    """Every joint below ``joint`` in the drag hierarchy (children, grandchildren, ...)."""
    found: list[str] = []
    frontier = [joint]
    while frontier:
        parent = frontier.pop()
        for name, up in PARENT.items():
            if up == parent:
                found.append(name)
                frontier.append(name)
    return found


def torso_size(points: np.ndarray) -> float:
    """The torso's diagonal (left shoulder to right hip): the length PCK thresholds are fractions of. Falls back to
    the other diagonal when that one is degenerate."""
    first = float(np.linalg.norm(points[JOINT_INDEX["left_shoulder"]] - points[JOINT_INDEX["right_hip"]]))
    second = float(np.linalg.norm(points[JOINT_INDEX["right_shoulder"]] - points[JOINT_INDEX["left_hip"]]))
    return max(first, second)


@dataclass
class Pose:
    """A person's joints in pixels, how sure the detector was of each, and which ones the user locked."""

    points: np.ndarray  # J x 2 float, pixels
    confidence: np.ndarray = field(default_factory=lambda: np.ones(len(JOINTS), np.float32))
    locked: np.ndarray = field(default_factory=lambda: np.zeros(len(JOINTS), bool))
    image_size: tuple[int, int] | None = None  # (width, height) of the image the points belong to

    def __post_init__(self) -> None:
        self.points = np.asarray(self.points, np.float64).reshape(len(JOINTS), 2)
        self.confidence = np.asarray(self.confidence, np.float32).reshape(len(JOINTS))
        self.locked = np.asarray(self.locked, bool).reshape(len(JOINTS))

    def copy(self) -> Pose:
        return Pose(self.points.copy(), self.confidence.copy(), self.locked.copy(), self.image_size)

    def __getitem__(self, joint: str) -> np.ndarray:
        return self.points[JOINT_INDEX[joint]]

    def moved(self, joint: str, target: tuple[float, float], carry_children: bool = True) -> Pose:
        """A copy with ``joint`` at ``target``. With ``carry_children``, the joints below it follow rigidly: they
        turn about the joint's parent by the same angle and shift with it, so dragging an elbow swings the forearm
        too. Locked joints never move (a locked joint ignores the drag; a locked child stays where it is)."""
        index = JOINT_INDEX[joint]
        result = self.copy()
        if self.locked[index]:
            return result
        old = self.points[index].copy()
        new = np.asarray(target, np.float64)
        result.points[index] = new
        if not carry_children:
            return result
        parent = PARENT[joint]
        if parent is None:
            rotation, pivot = np.eye(2), old
        else:
            pivot = self.points[JOINT_INDEX[parent]]
            a, b = old - pivot, new - pivot
            if np.linalg.norm(a) < 1e-6 or np.linalg.norm(b) < 1e-6:
                rotation = np.eye(2)
            else:
                angle = np.arctan2(b[1], b[0]) - np.arctan2(a[1], a[0])
                rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        for child in children(joint):
            ci = JOINT_INDEX[child]
            if self.locked[ci]:
                continue
            # The child keeps its offset from the dragged joint, turned by the bone's rotation.
            result.points[ci] = new + rotation @ (self.points[ci] - old)
        return result

    def scaled(self, sx: float, sy: float) -> Pose:
        result = self.copy()
        result.points = result.points * np.array([sx, sy])
        if self.image_size is not None:
            result.image_size = (round(self.image_size[0] * sx), round(self.image_size[1] * sy))
        return result

    def to_json(self) -> dict:
        return {
            "format": _FORMAT, "version": 1,
            "image_size": list(self.image_size) if self.image_size else None,
            "joints": {name: {"x": round(float(p[0]), 3), "y": round(float(p[1]), 3),
                              "confidence": round(float(c), 4), "locked": bool(lock)}
                       for name, p, c, lock in zip(JOINTS, self.points, self.confidence, self.locked)},
        }

    @classmethod
    def from_json(cls, data: dict) -> Pose:
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError("not a GAN Studio pose file (expected \"format\": \"ganstudio-pose\")")
        joints = data.get("joints")
        if not isinstance(joints, dict):
            raise ValueError("pose file: \"joints\" must be an object of joint name -> {x, y}")
        missing = [n for n in JOINTS if n not in joints]
        if missing:
            raise ValueError("pose file: missing joints " + ", ".join(missing))
        try:
            points = [[float(joints[n]["x"]), float(joints[n]["y"])] for n in JOINTS]
            confidence = [float(joints[n].get("confidence", 1.0)) for n in JOINTS]
            locked = [bool(joints[n].get("locked", False)) for n in JOINTS]
        except (TypeError, KeyError, ValueError) as error:
            raise ValueError(f"pose file: each joint needs numeric x and y ({error})") from None
        size = data.get("image_size")
        image_size = (int(size[0]), int(size[1])) if size else None
        return cls(np.array(points), np.array(confidence), np.array(locked), image_size)

    def save(self, path: Path) -> None:
        write_text_atomic(Path(path), json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Pose:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as error:
            raise ValueError(f"cannot read pose file {path}: {error.strerror or error}") from None
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from None
        return cls.from_json(data)

    def fitted_to(self, width: int, height: int) -> Pose:
        """The pose for an image of another size (a pose saved on one photo applied to a resized copy)."""
        if self.image_size is None or tuple(self.image_size) == (width, height):
            result = self.copy()
            result.image_size = (width, height)
            return result
        return self.scaled(width / self.image_size[0], height / self.image_size[1])
