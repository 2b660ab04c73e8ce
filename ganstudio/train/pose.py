"""PoseNet training: 17 joint heatmaps from MediaPipe teacher labels, and the person mask where one exists.

Data: ``../shared/data/people/photos`` (one person per photo), ``pose_landmarks.json`` (33 MediaPipe landmarks per
photo, normalised) and ``masks/`` (person vs background for part of the photos). Each step draws photos, applies
one random similarity transform (scale, rotation, shift, mirror) straight from the photo to the network's input
size, recolours it, and renders the Gaussian targets from the transformed joints. Validation is PCK@0.1 of the
torso size and mask IoU on photos held out of training.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from safetensors.torch import load_file

from ganstudio.models.arch.pose_refiner import PoseRefiner
from ganstudio.models.arch.posenet import PoseNet
from ganstudio.pose.decode import (decode_heatmaps, fit_matrix, gaussian_heatmaps, halved, pck, similarity_matrix,
                                   to_opencv)
from ganstudio.pose.skeleton import FLIP_ORDER, JOINT_INDEX, JOINTS, MEDIAPIPE_TO_JOINTS, Pose
from ganstudio.pose.refine import edit_region, paste_weight
from ganstudio.pose.warp import RePoseResult, repose
from ganstudio.train import checkpoint as ckpt
from ganstudio.train import engine
from ganstudio.train.common import BEST_WEIGHTS, load_weights_for_export, save_grid, split_validation
from ganstudio.train.data import list_images, load_rgb
from ganstudio.train.events import EventWriter

#: Heatmaps are at half the input resolution.
STRIDE = 2
#: Extra weight of the heatmap loss at a joint's peak (see pose_loss).
POSITIVE_WEIGHT = 10.0
#: Teacher landmarks below this MediaPipe visibility are guesses (occluded or out of frame): weighted down.
VISIBLE = 0.5

PEOPLE_LICENCE = ("Trained on the Clothing Co-Parsing dataset (Yang et al. 2014; research use) with MediaPipe Pose "
                  "(Apache-2.0) landmarks as teacher labels: research terms apply to these weights.")


@dataclass(kw_only=True)
class PoseConfig(engine.RunSettings):
    data: str  # the people folder: photos/, pose_landmarks.json, masks/
    out: str
    height: int = 192
    width: int = 128
    widths: tuple[int, ...] = (32, 48, 96, 128, 192)
    decoder: int = 48
    sigma: float = 2.0  # heatmap cells
    batch: int = 16
    steps: int = 20_000
    lr: float = 2e-3
    warmup: int = 200
    mask_weight: float = 0.05
    val_images: int = 200
    val_every: int = 500
    sample_every: int = 1000
    checkpoint_every: int = 250
    log_every: int = 25
    #: Share of training views whose person is first re-posed by our own warp (a random arm or leg swung to a new
    #: angle, the labels moved with it). The photos are nearly all people standing; without these the detector
    #: learns "arms hang down" and cannot find a limb a user has just moved.
    repose: float = 0.0
    #: A pose refiner (``.safetensors``, its card beside it) that cleans each re-posed view as the tool does by
    #: default, so the detector learns from edits that look like the ones it is run on after a refined edit.
    repose_refiner: str = ""
    #: .safetensors weights of the same architecture to start a fresh run from; ignored on resume.
    init: str = ""
    #: Share of training views framed as users' photos frame people (:func:`wild_matrix`): waist-up portraits and
    #: upper-body crops, small far-away people, people cut off by the frame. 0 keeps the full-body framing only.
    wild: float = 0.0
    #: A folder of photos whose crops fill what a view shows beyond its photo, and half the time replace the
    #: background of a person with a mask; empty: a random flat colour there.
    backgrounds: str = ""
    #: Share of views with one to three patches pasted over them (things in front of the person).
    occlude: float = 0.0

    def __post_init__(self) -> None:
        self.widths = tuple(int(w) for w in self.widths)
        multiple = 2 ** len(self.widths)
        if self.height % multiple or self.width % multiple:
            raise ValueError(f"height and width must be multiples of {multiple}")
        self.require(("steps", "batch", "val_every", "checkpoint_every", "log_every", "keep_checkpoints"),
                     ("sample_every",))
        if not (0.0 <= self.wild <= 1.0 and 0.0 <= self.occlude <= 1.0):
            raise ValueError("wild and occlude are shares of the views: between 0 and 1")



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


def wild_matrix(sample: PersonSample, cfg: PoseConfig, rng: np.random.Generator) -> np.ndarray:
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


def random_view(sample: PersonSample, cfg: PoseConfig, rng: np.random.Generator,
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


def make_batch(samples: list[PersonSample], indices: np.ndarray, cfg: PoseConfig, rng: np.random.Generator,
               refiner: PoseRefiner | None = None, backgrounds: list[np.ndarray] | None = None):
    images, heatmaps, weights, masks, has_mask = [], [], [], [], []
    hh, hw = cfg.height // STRIDE, cfg.width // STRIDE
    for index in indices:
        image, joints, visible, mask = random_view(samples[index], cfg, rng, backgrounds)
        if cfg.repose and rng.random() < cfg.repose:
            image, joints, mask = random_repose(image, joints, mask, rng, refiner)
        images.append(image)
        heatmaps.append(gaussian_heatmaps(joints, hh, hw, STRIDE, cfg.sigma))
        # Guessed (low-visibility) landmarks still teach the rough place of a limb, at a tenth of the weight.
        weights.append(np.where(visible, 1.0, 0.1).astype(np.float32))
        masks.append(mask if mask is not None else np.zeros((hh, hw), np.uint8))
        has_mask.append(mask is not None)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255)
    return (x.contiguous(memory_format=torch.channels_last), torch.from_numpy(np.stack(heatmaps)),
            torch.from_numpy(np.stack(weights)), torch.from_numpy(np.stack(masks)).float().div_(255),
            torch.tensor(has_mask))


def build_model(cfg: PoseConfig) -> PoseNet:
    return PoseNet(len(JOINTS), cfg.widths, cfg.decoder)


def lr_factor(step: int, cfg: PoseConfig) -> float:
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress))


def pose_loss(output: torch.Tensor, heatmaps: torch.Tensor, weights: torch.Tensor, masks: torch.Tensor,
              has_mask: torch.Tensor, mask_weight: float) -> tuple[torch.Tensor, dict[str, float]]:
    joints = heatmaps.shape[1]
    # Pixels near a joint count up to 1 + POSITIVE_WEIGHT times more: the peaks cover a tiny part of the map, and
    # an unweighted MSE sits for thousands of steps at the all-zero prediction before it learns them.
    emphasis = 1.0 + POSITIVE_WEIGHT * heatmaps
    heat_error = ((output[:, :joints] - heatmaps).pow(2) * emphasis).mean(dim=(2, 3))
    heat_loss = (heat_error * weights).mean() * 100.0
    if has_mask.any():
        mask_loss = F.binary_cross_entropy_with_logits(output[has_mask, joints], masks[has_mask])
    else:
        mask_loss = output[:, joints].sum() * 0.0
    total = heat_loss + mask_weight * mask_loss * 20.0
    return total, {"heatmap": heat_loss.item(), "mask": mask_loss.item()}


@dataclass
class ValidationView:
    image: np.ndarray
    joints: np.ndarray
    visible: np.ndarray
    mask: np.ndarray | None


def validation_views(samples: list[PersonSample], cfg: PoseConfig) -> list[ValidationView]:
    views = []
    for sample in samples:
        height, width = sample.image.shape[:2]
        image, joints, visible, mask = render(sample, fit_matrix(width, height, cfg.width, cfg.height),
                                              cfg.width, cfg.height, False)
        views.append(ValidationView(image, joints, visible, mask))
    return views


@torch.no_grad()
def predict(model: PoseNet, images: np.ndarray, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps (N x J x h x w) and mask probabilities (N x h x w) for N x H x W x 3 uint8 images."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255).to(device)
    out = model(x.contiguous(memory_format=torch.channels_last)).float().cpu()
    return out[:, :-1].numpy(), torch.sigmoid(out[:, -1]).numpy()


def evaluate(model: PoseNet, views: list[ValidationView], device: torch.device) -> dict[str, float]:
    """PCK@0.1 and @0.2 of the torso size over visible joints, and the mean mask IoU where masks exist."""
    was_training = model.training
    model.eval()
    hits = {0.1: 0, 0.2: 0}
    counted = 0
    ious = []
    for start in range(0, len(views), 32):
        chunk = views[start:start + 32]
        heat, masks = predict(model, np.stack([v.image for v in chunk]), device)
        for view, h, m in zip(chunk, heat, masks):
            points, _ = decode_heatmaps(h, STRIDE)
            for fraction in hits:
                got, n = pck(points, view.joints, view.visible, fraction)
                hits[fraction] += got
            counted += int(view.visible.sum())
            if view.mask is not None:
                truth, guess = view.mask > 127, m > 0.5
                union = (truth | guess).sum()
                if union:
                    ious.append((truth & guess).sum() / union)
    model.train(was_training)
    return {"pck@0.1": hits[0.1] / max(counted, 1), "pck@0.2": hits[0.2] / max(counted, 1),
            "mask_iou": float(np.mean(ious)) if ious else math.nan}


def draw_pose(image: np.ndarray, points: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    from ganstudio.pose.skeleton import BONES, JOINT_INDEX

    canvas = image.copy()
    for a, b in BONES:
        pa, pb = points[JOINT_INDEX[a]], points[JOINT_INDEX[b]]
        cv2.line(canvas, tuple(int(v) for v in pa), tuple(int(v) for v in pb), colour, 1, cv2.LINE_AA)
    for p in points:
        cv2.circle(canvas, tuple(int(v) for v in p), 2, colour, -1, cv2.LINE_AA)
    return canvas


def save_samples(model: PoseNet, views: list[ValidationView], device: torch.device, path: Path) -> Path:
    """Teacher (green) and prediction (red) skeletons over held-out photos, and the predicted mask."""
    chunk = views[:6]
    # in eval mode: in training mode the sample photos moved the batch-norm statistics the model is shipped with
    model.eval()
    with torch.no_grad():
        heat, masks = predict(model, np.stack([v.image for v in chunk]), device)
    model.train()
    tiles = []
    for view, h, m in zip(chunk, heat, masks):
        points, _ = decode_heatmaps(h, STRIDE)
        overlay = draw_pose(draw_pose(view.image, view.joints, (0, 200, 0)), points, (230, 0, 0))
        mask = cv2.resize((m * 255).astype(np.uint8), (view.image.shape[1], view.image.shape[0]))
        tiles.append(np.concatenate([overlay, np.repeat(mask[..., None], 3, axis=2)], axis=0))
    grid = np.concatenate(tiles, axis=1)
    return save_grid(torch.from_numpy(grid).permute(2, 0, 1).float() / 255, path)


class PoseTraining(engine.Family):
    """PoseNet on weighted heatmap MSE and the person-mask BCE, from views drawn by its own seeded generator."""

    task = "pose"
    run_defining = ("height", "width", "widths", "decoder", "sigma", "batch", "lr", "warmup", "mask_weight", "seed",
                    "val_images")

    def setup(self, state: dict[str, Any] | None) -> dict[str, Any]:
        cfg, run = self.cfg, self.run
        samples, skipped = load_people(Path(cfg.data))
        for item in skipped:
            run.events.emit("warning", message=f"skipped {item}")
        train_idx, val_idx = split_validation(list(range(len(samples))), cfg.val_images)
        self.train_samples = [samples[i] for i in train_idx]
        self.views = validation_views([samples[i] for i in val_idx], cfg)
        self.refiner = load_refiner(cfg.repose_refiner) if cfg.repose_refiner and cfg.repose else None
        self.backgrounds = load_backgrounds(cfg.backgrounds)
        self.model = build_model(cfg).to(run.device, memory_format=torch.channels_last)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=1e-4)
        self.track(model=self.model, optimizer=self.optimizer)
        self.best = state["best"] if state is not None else {"pck": -1.0, "step": 0}
        # the views come from this generator, not torch's: rank 0 continues the checkpoint's, the others draw their own
        rank = run.dist.rank
        self.rng = np.random.default_rng(cfg.seed if rank == 0 else [cfg.seed, rank, run.step])
        if state is not None and rank == 0:
            self.rng.bit_generator.state = state["data_rng"]
        elif state is None and cfg.init:
            self.model.load_state_dict(load_file(cfg.init), strict=True)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(s, cfg),
                                                           last_epoch=run.step - 1)
        self.model.train()
        return {"train_images": len(self.train_samples), "val_images": len(self.views),
                "with_masks": sum(s.mask is not None for s in self.train_samples),
                "params": sum(p.numel() for p in self.model.parameters())}

    def batches(self) -> Iterator[tuple[torch.Tensor, ...]]:
        while True:
            indices = self.rng.choice(len(self.train_samples), self.cfg.batch, replace=False)
            yield make_batch(self.train_samples, indices, self.cfg, self.rng, self.refiner, self.backgrounds)

    def train_step(self, batch: tuple[torch.Tensor, ...]) -> dict[str, float]:
        run = self.run
        x, heat, weights, masks, has_mask = (t.to(run.device) for t in batch)
        with run.precision.autocast():
            output = self.model(x)
        loss, parts = pose_loss(output.float(), heat, weights, masks, has_mask, self.cfg.mask_weight)
        run.update(loss, self.optimizer)
        run.precision.update()
        self.scheduler.step()
        return parts

    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def validate(self) -> dict[str, Any] | None:
        if not self.views:
            return None
        scores = evaluate(self.model, self.views, self.run.device)
        if scores["pck@0.1"] > self.best["pck"]:
            self.best = {"pck": scores["pck@0.1"], "step": self.run.step, **scores}
            ckpt.save_weights(self.model, self.run.run_dir / BEST_WEIGHTS)
        return {**scores, "best_pck": self.best["pck"], "best_step": self.best["step"]}

    def sample(self, path: Path) -> Path | None:
        return save_samples(self.model, self.views, self.run.device, path) if self.views else None

    def state(self) -> dict[str, Any]:
        return {"data_rng": self.rng.bit_generator.state, "best": self.best}

    def done_fields(self) -> dict[str, Any]:
        return {"best": self.best}


def train(cfg: PoseConfig, resume: bool = False, events: EventWriter | None = None) -> int:
    return engine.train(PoseTraining, cfg, resume, events)


def arch_params(cfg: PoseConfig) -> dict[str, Any]:
    return {"joints": len(JOINTS), "widths": list(cfg.widths), "decoder": cfg.decoder}


def export(run_dir: Path, weights_path: Path, name: str, title: str, machine: str, use_best: bool = True,
           metrics: dict[str, Any] | None = None) -> Path:
    state = ckpt.load_latest(run_dir)
    cfg = PoseConfig.from_dict(state["config"])
    model = build_model(cfg)
    used_best = load_weights_for_export(model, run_dir, state, "model", use_best)
    validation = state["best"] if used_best else {"step": state["step"]}
    card = {
        "name": name,
        "title": title,
        "task": "pose",
        "scale": 1,
        "architecture": {"name": "posenet", "params": arch_params(cfg)},
        "multiple_of": model.multiple_of,
        "supports_half": True,
        "supports_bf16": True,
        "tiling": False,
        "input": {"height": cfg.height, "width": cfg.width, "stride": STRIDE,
                  "outputs": "17 COCO-order joint heatmaps, then a person-mask logit"},
        "joints": list(JOINTS),
        "recipe": "training/pose/README.md",
        "data": {"folder": cfg.data, "licence": PEOPLE_LICENCE},
        "training": {"loss": f"heatmap MSE weighted 1 + {POSITIVE_WEIGHT:g} x target (Gaussian sigma {cfg.sigma:.1f} "
                             "cells) + mask BCE", "optimizer": "AdamW",
                     "batch": cfg.batch, "lr": cfg.lr, "lr_schedule": "cosine", "machine": machine,
                     "steps": validation["step"], "steps_run": state["step"],
                     "wall_time_s": round(state["wall_time_s"]), "repose_share": cfg.repose,
                     "started_from": Path(cfg.init).name if cfg.init else None,
                     "validation": {"held_out_photos": cfg.val_images,
                                    **{k: v for k, v in validation.items() if k not in ("step", "pck")}}},
        "metrics": metrics or {},
    }
    return ckpt.export_safetensors(model, Path(weights_path), card)
