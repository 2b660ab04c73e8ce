"""Re-posing a person: part-wise affine warp of the person layer, blended at the joints, over a filled background.

The body is cut into ten parts (torso, head, eight limb bones). Each part gets the affine transform that takes its
bone in the source pose to the same bone in the target pose: a limb turns about its joint and stretches along its
length, the torso and head follow a least-squares similarity of their joints. Every output pixel takes a blend of
the parts' inverse transforms, weighted by how near it is to each part's target bone (linear blend skinning), so a
bent elbow or knee deforms smoothly instead of tearing. Pixels of the source that belong to a part that moved away
are not copied at their old place (no ghost arm): a sample is kept only where the part it came from is one of the
parts that own the output pixel. What the moved parts uncover is filled by the caller's inpainting. Pixels the
edit does not touch are returned unchanged, so the identity pose gives back the input bit for bit.

numpy + OpenCV only: no Qt, no torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from ..engine.cancel import CancelToken, check

from .skeleton import HEAD, JOINT_INDEX, LIMBS, TORSO, Pose, torso_size

PART_NAMES = ("torso", "head") + tuple(f"{a}-{b}" for a, b in LIMBS)

#: Limbs win over the torso within this fraction of the torso size of their bone, so an arm held in front of the
#: body is carried with the arm.
_LIMB_PRIORITY = 0.08
#: Softness of the part weights, as a fraction of the torso size: the width of the blend at a joint.
_SOFTNESS = 0.03
#: Half-width of a limb as a fraction of the torso size (a bare arm, with room for joints found off its middle),
#: for limbs the mask misses.
_LIMB_RADIUS = 0.07
#: How far a hand or foot reaches past the wrist or ankle, as a fraction of the torso size.
_HAND_LENGTH = 0.12
#: How far (fraction of the torso size) a part's own transform may put a sample from the pixel it fills.
_MAPPING_TOLERANCE = 0.04


@dataclass
class RePoseResult:
    image: np.ndarray  # H x W x C, same dtype as the input
    person_alpha: np.ndarray  # H x W float32: the warped person's coverage
    changed: np.ndarray  # H x W bool: pixels that differ from the input
    fill_mask: np.ndarray  # H x W bool: where the background had to be invented
    source_person: np.ndarray  # H x W float32: the person layer that was moved (the mask, plus moved limbs' capsules)


def _midpoint(points: np.ndarray, a: str, b: str) -> np.ndarray:
    return (points[JOINT_INDEX[a]] + points[JOINT_INDEX[b]]) / 2


def _similarity_fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation taking ``src`` points to ``dst`` (3 x 3)."""
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - src_mean, dst - dst_mean
    denom = (s ** 2).sum()
    if denom < 1e-9:
        matrix = np.eye(3)
        matrix[:2, 2] = dst_mean - src_mean
        return matrix
    a = (s * d).sum() / denom
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / denom
    rot = np.array([[a, -b], [b, a]])
    matrix = np.eye(3)
    matrix[:2, :2] = rot
    matrix[:2, 2] = dst_mean - rot @ src_mean
    return matrix


def _bone_transform(a: np.ndarray, b: np.ndarray, a2: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """Takes a to a2 and b to b2: rotation about the joint, stretch along the bone only (the limb keeps its width)."""
    bone, bone2 = b - a, b2 - a2
    length, length2 = np.linalg.norm(bone), np.linalg.norm(bone2)
    matrix = np.eye(3)
    if length < 1e-6:
        matrix[:2, 2] = a2 - a
        return matrix
    u = bone / length
    stretch = max(length2 / length, 0.2) if length2 > 1e-6 else 1.0
    angle = np.arctan2(bone2[1], bone2[0]) - np.arctan2(bone[1], bone[0]) if length2 > 1e-6 else 0.0
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    linear = rot @ (np.eye(2) + (stretch - 1) * np.outer(u, u))
    matrix[:2, :2] = linear
    matrix[:2, 2] = a2 - linear @ a
    return matrix


def part_transforms(source: Pose, target: Pose) -> list[np.ndarray]:
    """3 x 3 forward transforms (source -> target), one per part, in :data:`PART_NAMES` order."""
    sp, tp = source.points, target.points
    torso_idx = [JOINT_INDEX[n] for n in TORSO]
    transforms = [_similarity_fit(sp[torso_idx], tp[torso_idx])]
    head_src = np.vstack([sp[[JOINT_INDEX[n] for n in HEAD]], _midpoint(sp, "left_shoulder", "right_shoulder")])
    head_dst = np.vstack([tp[[JOINT_INDEX[n] for n in HEAD]], _midpoint(tp, "left_shoulder", "right_shoulder")])
    transforms.append(_similarity_fit(head_src, head_dst))
    for a, b in LIMBS:
        ia, ib = JOINT_INDEX[a], JOINT_INDEX[b]
        transforms.append(_bone_transform(sp[ia], sp[ib], tp[ia], tp[ib]))
    return transforms


def _segment_distance(xs: np.ndarray, ys: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    denom = float(ab @ ab)
    if denom < 1e-9:
        return np.hypot(xs - a[0], ys - a[1])
    t = np.clip(((xs - a[0]) * ab[0] + (ys - a[1]) * ab[1]) / denom, 0.0, 1.0)
    return np.hypot(xs - (a[0] + t * ab[0]), ys - (a[1] + t * ab[1]))


def _polygon_distance(xs: np.ndarray, ys: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """0 inside the (convex) polygon, else the distance to its nearest edge."""
    edges = [_segment_distance(xs, ys, corners[i], corners[(i + 1) % len(corners)]) for i in range(len(corners))]
    outside = np.minimum.reduce(edges)
    contour = corners.astype(np.float32).reshape(-1, 1, 2)
    inside = np.zeros(xs.shape, np.uint8)
    cv2.fillConvexPoly(inside, np.round(contour[:, 0] * 16 - 8).astype(np.int32), 1, cv2.LINE_8, 4)
    return np.where(inside > 0, 0.0, outside)


def part_weights(points: np.ndarray, height: int, width: int, scale: float,
                 cancel: CancelToken | None = None) -> np.ndarray:
    """P x H x W soft ownership of each pixel by each part (sums to 1), from the distance to the parts' bones."""
    check(cancel)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    xs += 0.5
    ys += 0.5
    p = points
    torso = np.array([p[JOINT_INDEX["left_shoulder"]], p[JOINT_INDEX["right_shoulder"]],
                      p[JOINT_INDEX["right_hip"]], p[JOINT_INDEX["left_hip"]]])
    distances = [_polygon_distance(xs, ys, torso) + _LIMB_PRIORITY * scale]
    check(cancel)
    neck = _midpoint(p, "left_shoulder", "right_shoulder")
    nose = p[JOINT_INDEX["nose"]]
    check(cancel)
    head = [_segment_distance(xs, ys, neck, nose)]
    head += [_segment_distance(xs, ys, nose, p[JOINT_INDEX[n]]) for n in HEAD[1:]]
    distances.append(np.minimum.reduce(head))
    for a, b in LIMBS:
        # each part is a few hundred milliseconds over a photo: the cancel points of a re-pose
        check(cancel)
        start = p[JOINT_INDEX[a]]
        distances.append(_segment_distance(xs, ys, start, _past_the_end(start, p[JOINT_INDEX[b]], b, scale)))
    check(cancel)
    stack = np.stack(distances).astype(np.float32)
    del distances
    check(cancel)
    stack -= stack.min(axis=0, keepdims=True)
    weights = np.exp(-stack / max(_SOFTNESS * scale, 1e-3))
    weights /= weights.sum(axis=0, keepdims=True)
    return weights


def _past_the_end(start: np.ndarray, end: np.ndarray, joint: str, scale: float) -> np.ndarray:
    """Where a limb bone's part ends: a forearm or shin reaches on past the wrist or ankle to the tip of the hand or
    foot, so that a hand held in front of the body (and what it holds) moves with the arm rather than staying with
    the torso."""
    if not joint.endswith(("wrist", "ankle")):
        return end
    bone = end - start
    return end + bone / max(float(np.linalg.norm(bone)), 1e-6) * _HAND_LENGTH * scale


def _with_moved_limbs(person: np.ndarray, source: Pose, transforms: list[np.ndarray], scale: float) -> np.ndarray:
    """The person mask plus a capsule around each moved limb bone. A thin bare arm is the part a mask network
    misses most often; without this the arm would stay behind while a sliver of sleeve moved."""
    capsules = np.zeros_like(person)
    radius = max(1, int(round(_LIMB_RADIUS * scale)))
    for (a, b), transform in zip(LIMBS, transforms[2:]):
        if _is_identity(transform):
            continue
        start, end = source[a], _past_the_end(source[a], source[b], b, scale)
        pa = np.round(start - 0.5).astype(int)
        pb = np.round(end - 0.5).astype(int)
        cv2.line(capsules, (int(pa[0]), int(pa[1])), (int(pb[0]), int(pb[1])), 1.0, 2 * radius + 1, cv2.LINE_AA)
    if not capsules.any():
        return person
    capsules = cv2.GaussianBlur(capsules, (0, 0), radius / 3)
    return np.maximum(person, capsules)


def _is_identity(matrix: np.ndarray, tolerance: float = 1e-3) -> bool:
    return bool(np.abs(matrix - np.eye(3)).max() < tolerance)


def repose(image: np.ndarray, person: np.ndarray, source: Pose, target: Pose,
           fill: Callable[[np.ndarray, np.ndarray], np.ndarray], cancel: CancelToken | None = None) -> RePoseResult:
    """Move the person from ``source`` to ``target``.

    ``person``: H x W float in [0, 1], the person mask (soft edges welcome). ``fill(image, hole)`` returns the image
    with the boolean ``hole`` filled (the inpainting tool); it is called only when something moved.
    """
    height, width = image.shape[:2]
    scale = max(torso_size(source.points), 8.0)
    transforms = part_transforms(source, target)
    moved = np.array([not _is_identity(t) for t in transforms])
    if not moved.any():
        unchanged = np.zeros((height, width), bool)
        return RePoseResult(image.copy(), person.astype(np.float32), unchanged, unchanged.copy(),
                            person.astype(np.float32))

    person = _with_moved_limbs(person.astype(np.float32), source, transforms, scale)
    source_owner = part_weights(source.points, height, width, scale, cancel)
    target_owner = part_weights(target.points, height, width, scale, cancel)
    inverse = [np.linalg.inv(t) for t in transforms]
    check(cancel)

    # Backward map: each output pixel samples the blend of the parts' inverse transforms (in OpenCV's
    # integer-centred pixel coordinates, hence the half-pixel shifts).
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    xc, yc = xs + 0.5, ys + 0.5
    map_x = np.zeros((height, width), np.float32)
    map_y = np.zeros((height, width), np.float32)
    for weight, inv in zip(target_owner, inverse):
        check(cancel)
        map_x += weight * (inv[0, 0] * xc + inv[0, 1] * yc + inv[0, 2])
        map_y += weight * (inv[1, 0] * xc + inv[1, 1] * yc + inv[1, 2])
    map_x -= 0.5
    map_y -= 0.5

    def sample(layer: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        return cv2.remap(layer, map_x, map_y, interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    check(cancel)
    warped_person = sample(person)
    owner_at_source = np.stack([sample(layer) for layer in source_owner])
    check(cancel)
    # A sample is kept only if the part it came from, moved by its own transform, lands on this output pixel.
    # That holds near a joint (the parts' transforms agree there) and fails for a moved part's ghost at its old
    # place, and for the smear that blended transforms would drag across the gap between two distant parts.
    sx, sy = map_x + 0.5, map_y + 0.5
    tolerance = 2.0 * (_MAPPING_TOLERANCE * scale) ** 2
    agreement = np.zeros((height, width), np.float32)
    for owner, forward in zip(owner_at_source, transforms):
        check(cancel)
        miss = ((forward[0, 0] * sx + forward[0, 1] * sy + forward[0, 2] - xc) ** 2
                + (forward[1, 0] * sx + forward[1, 1] * sy + forward[1, 2] - yc) ** 2)
        agreement += owner * np.exp(-miss / tolerance)
    alpha = np.clip(warped_person * agreement, 0.0, 1.0)

    check(cancel)
    displacement = np.hypot(map_x - xs, map_y - ys)
    changed = (displacement > 0.25) | (np.abs(alpha - person) > 0.02)
    grow = max(3, int(round(0.02 * scale)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    changed = cv2.dilate(changed.astype(np.uint8), kernel) > 0

    # The hole: where the moved parts were, less what the warped person covers again.
    check(cancel)
    moved_owner = source_owner[moved].sum(axis=0)
    hole = (person > 0.1) & (moved_owner > 0.2)
    # Grown well past the mask's edge: a soft or slightly short mask must not leave a sliver of the old limb.
    margin = 2 * grow + 1
    hole = cv2.dilate(hole.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1,) * 2)) > 0
    hole &= changed
    check(cancel)
    background = fill(image, hole) if hole.any() else image
    check(cancel)

    warped = sample(image)
    if image.ndim == 2:
        warped, background, original = warped[..., None], background[..., None], image[..., None]
    else:
        original = image
    a = alpha[..., None]
    composite = a * warped.astype(np.float32) + (1 - a) * background.astype(np.float32)
    # Feather the edge of the edited region so it meets the untouched pixels without a step.
    blend = cv2.GaussianBlur(changed.astype(np.float32), (0, 0), max(grow / 2, 1.0))
    blend = np.where(changed, np.maximum(blend, 0.5), 0.0)[..., None]
    blend = np.where(cv2.erode(changed.astype(np.uint8), kernel)[..., None] > 0, 1.0, blend)
    result = blend * composite + (1 - blend) * original.astype(np.float32)
    info = np.iinfo(image.dtype)
    result = np.clip(np.round(result), info.min, info.max).astype(image.dtype)
    result = np.where(changed[..., None], result, original)
    if image.ndim == 2:
        result = result[..., 0]
    return RePoseResult(result, alpha, changed, hole, person)
