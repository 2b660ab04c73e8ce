"""The people photos (``../shared/data/people``: photos/, pose_landmarks.json, masks/) and the views the pose
families train on: random framings of a person, other photos behind them, patches in front, and limbs swung by
the editor's own warp. Shared by the detector (:mod:`ganstudio.train.pose`) and the edit refiner
(:mod:`ganstudio.train.pose_refiner`)."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from ganstudio.models.arch.pose_refiner import PoseRefiner
from ganstudio.pose.decode import halved, similarity_matrix, to_opencv
from ganstudio.pose.refine import edit_region, paste_weight
from ganstudio.pose.skeleton import FLIP_ORDER, JOINT_INDEX, MEDIAPIPE_TO_JOINTS, Pose
from ganstudio.pose.warp import RePoseResult, repose
from ganstudio.train.data import list_images, load_rgb

#: Heatmaps (and the person masks beside them) are at half the input resolution.
STRIDE = 2


#: Teacher landmarks below this MediaPipe visibility are guesses (occluded or out of frame): weighted down.
VISIBLE = 0.5


PEOPLE_LICENCE = ("Trained on the Clothing Co-Parsing dataset (Yang et al. 2014; research use) with MediaPipe Pose "
                  "(Apache-2.0) landmarks as teacher labels: research terms apply to these weights.")


@dataclass
class PersonSample:
    image: np.ndarray  # H x W x 3 uint8
    joints: np.ndarray  # 17 x 2, continuous pixels
    visible: np.ndarray  # 17 bool
    mask: np.ndarray | None  # H x W uint8 0/255, or None when the photo has none


def load_people(folder: Path) -> tuple[list[PersonSample], list[str]]:
    """Every photo that has landmarks, with its mask when there is one; returns them and what was skipped."""
    folder = Path(folder)
    landmarks = json.loads((folder / "pose_landmarks.json").read_text(encoding="utf-8"))
    samples, skipped = [], []
    for path in list_images(folder / "photos"):
        marks = landmarks.get(path.name)
        if marks is None:
            skipped.append(f"{path.name}: no landmarks")
            continue
        try:
            image = load_rgb(path)
        except OSError as error:
            skipped.append(f"{path.name}: {error}")
            continue
        height, width = image.shape[:2]
        marks = np.asarray(marks, np.float64)[list(MEDIAPIPE_TO_JOINTS)]
        joints = marks[:, :2] * (width, height)
        inside = (joints[:, 0] >= 0) & (joints[:, 0] < width) & (joints[:, 1] >= 0) & (joints[:, 1] < height)
        mask_path = folder / "masks" / (path.stem + ".png")
        mask = None
        if mask_path.exists():
            mask = (np.asarray(load_rgb(mask_path))[..., 0] > 127).astype(np.uint8) * 255
        samples.append(PersonSample(image, joints, (marks[:, 2] >= VISIBLE) & inside, mask))
    return samples, skipped


def render(sample: PersonSample, matrix: np.ndarray, out_w: int, out_h: int, flip: bool,
           border: tuple[int, int, int] = (0, 0, 0)) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """The sample seen through ``matrix`` (and mirrored): image, joints, visibility, mask (half resolution)."""
    if flip:
        mirror = np.array([[-1, 0, out_w], [0, 1, 0], [0, 0, 1]], np.float64)
        matrix = (mirror @ np.vstack([matrix, [0, 0, 1]]))[:2]
    cv_matrix = to_opencv(matrix)
    image = cv2.warpAffine(sample.image, cv_matrix, (out_w, out_h), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=border)
    joints = sample.joints @ matrix[:, :2].T + matrix[:, 2]
    visible = sample.visible.copy()
    if flip:
        joints, visible = joints[list(FLIP_ORDER)], visible[list(FLIP_ORDER)]
    mask = None
    if sample.mask is not None:
        mask = cv2.warpAffine(sample.mask, to_opencv(halved(matrix, STRIDE)), (out_w // STRIDE, out_h // STRIDE),
                              flags=cv2.INTER_AREA)
    return image, joints, visible, mask


#: Kinds of :func:`wild_matrix` framing and their shares.
WILD_KINDS = {"upper": 0.45, "small": 0.3, "cut": 0.25}


def wild_matrix(sample: PersonSample, cfg: Any, rng: np.random.Generator) -> np.ndarray:
    """A view framed the way users' photos frame people, not the dataset's full-body shots: ``upper`` (from above
    the head down to between mid-chest and mid-thigh, filling the view: a waist-up portrait, and what the tool's
    second pass crops from one), ``small`` (the person 12-40 % of the view's height, anywhere in it) or ``cut``
    (zoomed in up to 1.8x and shifted so the frame cuts the person off). Joints outside the view get empty
    heatmaps: the network learns to find no joint where the photo shows none."""
    joints, height, width = sample.joints, *sample.image.shape[:2]
    kind = rng.choice(list(WILD_KINDS), p=list(WILD_KINDS.values()))
    angle = rng.uniform(-30, 30) if rng.random() < 0.5 else 0.0
    shoulders = joints[[JOINT_INDEX["left_shoulder"], JOINT_INDEX["right_shoulder"]]].mean(axis=0)
    hips = joints[[JOINT_INDEX["left_hip"], JOINT_INDEX["right_hip"]]].mean(axis=0)
    torso = max(float(np.linalg.norm(hips - shoulders)), 8.0)
    if kind == "upper":
        top = joints[JOINT_INDEX["nose"], 1] - 0.55 * torso
        bottom = shoulders[1] + torso * rng.uniform(0.5, 1.6)
        centre = np.array([shoulders[0], (top + bottom) / 2])
        scale = cfg.height / max(bottom - top, 8.0) * rng.uniform(0.85, 1.15)
        shift = rng.uniform(-0.1, 0.1, 2) * (cfg.width, cfg.height)
    elif kind == "small":
        low, high = joints.min(axis=0), joints.max(axis=0)
        share = rng.uniform(0.12, 0.4)
        scale = cfg.height * share / max(high[1] - low[1], 8.0)
        centre = (low + high) / 2
        room = np.array([0.5 - share * 0.25, 0.5 - share * 0.55])
        shift = rng.uniform(-room, room) * (cfg.width, cfg.height)
    else:
        base = min(cfg.width / width, cfg.height / height)
        scale = base * math.exp(rng.uniform(0.0, math.log(1.8)))
        centre = np.array([width / 2, height / 2])
        shift = rng.uniform(-0.45, 0.45, 2) * (cfg.width, cfg.height)
    return similarity_matrix(centre, scale, angle, cfg.width, cfg.height, shift)


def load_backgrounds(folder: str, count: int = 300, side: int = 256) -> list[np.ndarray]:
    """Up to ``count`` photos of ``folder`` (an even spread of them), shrunk to ``side`` px on the short side."""
    if not folder:
        return []
    paths = list_images(Path(folder))
    chosen = paths[:: max(1, len(paths) // count)][:count]
    backgrounds = []
    for path in chosen:
        try:
            image = load_rgb(path)
        except OSError:
            continue
        factor = side / min(image.shape[:2])
        backgrounds.append(cv2.resize(image, (max(side, round(image.shape[1] * factor)),
                                              max(side, round(image.shape[0] * factor))), interpolation=cv2.INTER_AREA))
    return backgrounds


def _background(backgrounds: list[np.ndarray], width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A random crop of a random background photo, at a random zoom, flipped half the time."""
    source = backgrounds[rng.integers(len(backgrounds))]
    zoom = rng.uniform(1.0, 2.0)
    crop_w = min(source.shape[1], max(8, round(source.shape[0] / zoom * width / height)))
    crop_h = min(source.shape[0], max(8, round(crop_w * height / width)))
    top = int(rng.integers(0, source.shape[0] - crop_h + 1))
    left = int(rng.integers(0, source.shape[1] - crop_w + 1))
    crop = cv2.resize(source[top : top + crop_h, left : left + crop_w], (width, height), interpolation=cv2.INTER_AREA)
    return crop[:, ::-1] if rng.random() < 0.5 else crop


def occlude(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One to three patches over the view, each a flat colour or noise, 10-35 % of the view's side."""
    image = image.copy()
    height, width = image.shape[:2]
    for _ in range(int(rng.integers(1, 4))):
        patch_h, patch_w = (int(rng.uniform(0.1, 0.35) * side) for side in (height, width))
        top, left = int(rng.integers(0, height - patch_h + 1)), int(rng.integers(0, width - patch_w + 1))
        if rng.random() < 0.5:
            image[top : top + patch_h, left : left + patch_w] = rng.integers(0, 256, 3)
        else:
            image[top : top + patch_h, left : left + patch_w] = rng.integers(0, 256, (patch_h, patch_w, 3))
    return image


def random_view(sample: PersonSample, cfg: Any, rng: np.random.Generator,
                backgrounds: list[np.ndarray] | None = None):
    height, width = sample.image.shape[:2]
    if cfg.wild > 0 and rng.random() < cfg.wild:
        matrix = wild_matrix(sample, cfg, rng)
    else:
        base = min(cfg.width / width, cfg.height / height)
        scale = base * math.exp(rng.uniform(math.log(0.6), math.log(1.3)))
        angle = rng.uniform(-30, 30) if rng.random() < 0.7 else 0.0
        shift = rng.uniform(-0.15, 0.15, 2) * (cfg.width, cfg.height)
        matrix = similarity_matrix(np.array([width / 2, height / 2]), scale, angle, cfg.width, cfg.height, shift)
    border = tuple(int(v) for v in rng.integers(0, 256, 3))
    flip = rng.random() < 0.5
    image, joints, visible, mask = render(sample, matrix, cfg.width, cfg.height, flip, border)
    if backgrounds:
        # what lies beyond the photo, or (half the time, for a person with a mask) all but the person, is another
        # photo: a flat frame around a small person would be a cue no user's photo has
        keep = render(PersonSample(np.full((height, width, 3), 255, np.uint8), sample.joints, sample.visible, None),
                      matrix, cfg.width, cfg.height, flip)[0][..., :1] / 255.0
        if sample.mask is not None and rng.random() < 0.5:
            person = render(PersonSample(np.repeat(sample.mask[..., None], 3, axis=2), sample.joints,
                                         sample.visible, None), matrix, cfg.width, cfg.height, flip)[0][..., :1]
            keep = keep * cv2.GaussianBlur(person.astype(np.float32) / 255.0, (0, 0), 1.0)[..., None]
        behind = _background(backgrounds, cfg.width, cfg.height, rng).astype(np.float32)
        image = (image * keep + behind * (1 - keep)).round().astype(np.uint8)
    # Colour: brightness, contrast, saturation and a channel swap now and then, so clothing colour is no cue.
    pixels = image.astype(np.float32)
    grey = pixels.mean(axis=2, keepdims=True)
    pixels = grey + (pixels - grey) * rng.uniform(0.4, 1.5)
    pixels = (pixels - 128) * rng.uniform(0.7, 1.3) + 128 + rng.uniform(-30, 30)
    if rng.random() < 0.2:
        pixels = pixels[..., rng.permutation(3)]
    if rng.random() < 0.2:
        pixels = cv2.GaussianBlur(pixels, (0, 0), rng.uniform(0.5, 1.5))
    image = np.clip(pixels, 0, 255).astype(np.uint8)
    if cfg.occlude > 0 and rng.random() < cfg.occlude:
        image = occlude(image, rng)
    return image, joints, visible, mask


#: Limbs a training edit swings, by the joint it turns about and the first joint that moves.
_SWINGS = (("left_shoulder", "left_elbow"), ("right_shoulder", "right_elbow"), ("left_elbow", "left_wrist"),
           ("right_elbow", "right_wrist"), ("left_hip", "left_knee"), ("right_hip", "right_knee"),
           ("left_knee", "left_ankle"), ("right_knee", "right_ankle"))


def random_swing(source: Pose, rng: np.random.Generator, reach: float = 1.0) -> Pose:
    """``source`` with one limb (two, three times in ten) swung about its joint by a random angle: up to
    ``reach`` x 150 degrees for an arm, ``reach`` x 60 for a leg."""
    target = source
    for _ in range(1 + int(rng.random() < 0.3)):
        pivot, first = _SWINGS[rng.integers(len(_SWINGS))]
        limit = reach * (150.0 if "shoulder" in pivot or "elbow" in pivot else 60.0)
        angle = np.radians(rng.uniform(-limit, limit))
        centre = target.points[JOINT_INDEX[pivot]]
        offset = target.points[JOINT_INDEX[first]] - centre
        turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        target = target.moved(first, tuple(centre + turn @ offset))
    return target


def telea_fill(pixels: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The warp's ``fill`` in training: OpenCV Telea, what the tool uses until a learned inpainting model exists."""
    return cv2.inpaint(pixels, hole.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)


def person_weight(mask: np.ndarray | None, height: int, width: int) -> np.ndarray:
    """The person mask (any size, 0-255) as the warp's H x W float person layer; zeros when there is none (the
    warp then moves the limbs' capsules only)."""
    if mask is None:
        return np.zeros((height, width), np.float32)
    return cv2.resize(mask.astype(np.float32) / 255.0, (width, height), interpolation=cv2.INTER_LINEAR)


def load_refiner(path: str) -> PoseRefiner:
    """The refiner at ``path`` (a ``pose_refiner`` export: weights and the card beside them), in eval mode."""
    card_path = Path(path).with_suffix(".json")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    architecture = card.get("architecture", {})
    if architecture.get("name") != "pose_refiner":
        raise ValueError(f"{card_path.name}: not a pose refiner (architecture {architecture.get('name')!r})")
    refiner = PoseRefiner(**architecture.get("params", {}))
    refiner.load_state_dict(load_file(path), strict=True)
    return refiner.eval()


@torch.no_grad()
def refine_view(refiner: PoseRefiner, result: RePoseResult) -> np.ndarray:
    """The re-posed view (``result.image``, H x W x 3 uint8) with the refiner's correction pasted over the region
    the warp changed, less the filled background (:func:`ganstudio.pose.refine.paste_weight`), as in the tool; the
    views are small, so the whole view is one tile."""
    image = result.image
    region = edit_region(result.changed)
    if not region.any():
        return image
    height, width = image.shape[:2]
    rgb = image.astype(np.float32) / 255.0
    x = torch.from_numpy(np.concatenate([rgb, region[..., None]], axis=2)).permute(2, 0, 1)[None]
    multiple = refiner.multiple_of
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    out = refiner(x)[0, :, :height, :width].clamp(0.0, 1.0).permute(1, 2, 0).numpy()
    weight = paste_weight(region, result.fill_mask, result.person_alpha)[..., None]
    return ((rgb + weight * (out - rgb)) * 255.0).round().astype(np.uint8)


def random_repose(image: np.ndarray, joints: np.ndarray, mask: np.ndarray | None,
                  rng: np.random.Generator,
                  refiner: PoseRefiner | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The view with one or two limbs swung to random angles by the editor's own warp (and cleaned by ``refiner``
    when given); joints and mask follow."""
    height, width = image.shape[:2]
    source = Pose(joints)
    target = random_swing(source, rng)
    result = repose(image, person_weight(mask, height, width), source, target, telea_fill)
    new_mask = None
    if mask is not None:
        new_mask = (cv2.resize(result.person_alpha, (mask.shape[1], mask.shape[0]),
                               interpolation=cv2.INTER_AREA) * 255).round().astype(np.uint8)
    reposed = result.image if refiner is None else refine_view(refiner, result)
    return reposed, target.points, new_mask
