"""The pose refiner's training data: each person warped to a random nearby pose and back by the editor's own
warp and fill, the round trip's artifacts inside the region it changed, and the original photo as the target."""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ganstudio.pose.refine import edit_region
from ganstudio.pose.skeleton import Pose
from ganstudio.pose.warp import repose
from ganstudio.train.people import PersonSample, person_weight, random_swing, telea_fill


#: Draws of a random swing before a view takes the best it found (see :func:`round_trip`).
_TRIES = 8


#: Moved joints must stay this far (a fraction of the photo's width) inside the photo.
_BORDER = 0.05


_RESTORE_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))


def round_trip(sample: PersonSample, rng: np.random.Generator, scale: float = 1.0, reach: float = 1.0,
               max_lost: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(degraded, region, original): the photo (shrunk by ``scale``) with its person warped to a random nearby
    pose and back, each way with the Telea fill; the soft map of where either warp changed pixels
    (:func:`ganstudio.pose.refine.edit_region`, as the tool builds it); and the shrunk original, the target.

    Swings are drawn again (up to :data:`_TRIES` times) when they take a joint out of the photo, or when, on a photo
    with a person mask, the person that comes back lacks more than ``max_lost`` of its pixels: a limb the warp
    dropped on the way would ask the refiner to invent it, which is not what it is for. The least lossy draw is
    taken when none passes; the region is empty only when no swing inside the photo moved anything.

    Person pixels that did not come back (a lost fingertip, a loose sleeve) show the fill while their target shows
    the person: that teaches the refiner to paint a limb into a smear beside the body, which after a real edit is a
    ghost limb at the old place (seen: the first shipped refiner grew a skin-coloured strip or the dress's pattern
    where the arm had hung, and the detector then found the arm there). They get their original pixels back, so
    every fill the refiner learns from hides background or the body behind a limb, as a real edit's fill does.
    """
    image, joints, mask = sample.image, sample.joints, sample.mask
    height, width = image.shape[:2]
    if scale != 1.0:
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        joints = joints * (width / sample.image.shape[1], height / sample.image.shape[0])
    person = person_weight(mask, height, width)
    body = person > 0.5
    source = Pose(joints)
    inside = np.array([width, height]) * (1 - _BORDER)
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for _ in range(_TRIES):
        target = random_swing(source, rng, reach)
        moved = np.abs(target.points - source.points).max(axis=1) > 0
        # A limb swung out of the photo would not come back.
        if ((target.points[moved] < width * _BORDER) | (target.points[moved] > inside)).any():
            continue
        there = repose(image, person, source, target, telea_fill)
        back = repose(there.image, there.person_alpha, target, source, telea_fill)
        changed = there.changed | back.changed
        if not changed.any():
            continue
        missing = (there.source_person > 0.1) & (back.person_alpha < 0.5) & changed
        lost = float((missing & body).sum() / max(body.sum(), 1))
        if best is None or lost < best[0]:
            best = (lost, back.image, changed, missing)
        if lost <= max_lost:
            break
    if best is None:
        return image.copy(), np.zeros((height, width), np.float32), image
    _, degraded, changed, missing = best
    if missing.any():
        # grown a little: the fill's smear runs past the soft edge of the mask
        missing = cv2.dilate(missing.astype(np.uint8), _RESTORE_KERNEL) > 0
        degraded = np.where(missing[..., None], image, degraded)
    return degraded, edit_region(changed), image


def _window(region: np.ndarray, side: int, centre: tuple[int, int]) -> tuple[slice, slice]:
    """A ``side`` square inside the image, as near to centred on ``centre`` (y, x) as the borders allow."""
    height, width = region.shape
    top = int(np.clip(centre[0] - side // 2, 0, max(height - side, 0)))
    left = int(np.clip(centre[1] - side // 2, 0, max(width - side, 0)))
    return slice(top, top + side), slice(left, left + side)


def _tensors(degraded: np.ndarray, region: np.ndarray, original: np.ndarray,
             window: tuple[slice, slice]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    def rgb(pixels: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(pixels[window])).permute(2, 0, 1).float().div_(255)

    return rgb(degraded), torch.from_numpy(np.ascontiguousarray(region[window]))[None], rgb(original)


class RefinerDataset(Dataset):
    """(degraded 3 x crop x crop, region 1 x crop x crop, original 3 x crop x crop), RGB in [0, 1]; item ``i`` is a
    fresh round trip of photo ``i``, cropped around a random pixel of its edited region and mirrored half the time.

    Randomness comes from torch's global generator (a numpy generator is seeded from it), so a checkpoint's RNG
    state resumes the same stream, as in :mod:`ganstudio.train.inpaint`.
    """

    def __init__(self, samples: list[PersonSample], cfg: Any) -> None:
        if not samples:
            raise ValueError("no usable training photos")
        self.samples = samples
        self.cfg = cfg

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, ()).item()))
        sample = self.samples[index]
        smallest = cfg.crop / min(sample.image.shape[:2])
        scale = min(1.0, max(smallest, rng.uniform(cfg.min_scale, 1.0)))
        degraded, region, original = round_trip(sample, rng, scale, cfg.reach, cfg.max_lost)
        edited = np.argwhere(region >= 1.0)
        centre = edited[rng.integers(len(edited))] if len(edited) else np.array(region.shape) // 2
        x, weight, y = _tensors(degraded, region, original, _window(region, cfg.crop, tuple(centre)))
        x, weight, y = _fit(x, cfg.crop), _fit(weight, cfg.crop), _fit(y, cfg.crop)
        if rng.random() < 0.5:
            x, weight, y = x.flip(-1), weight.flip(-1), y.flip(-1)
        return x, weight, y


def _fit(tensor: torch.Tensor, side: int) -> torch.Tensor:
    """Pad a crop of a photo smaller than ``side`` (reflected; the region with zeros) to ``side`` x ``side``."""
    height, width = tensor.shape[-2:]
    if height == side and width == side:
        return tensor
    pad = (0, side - width, 0, side - height)
    mode = "constant" if tensor.shape[0] == 1 else "replicate"
    return F.pad(tensor[None], pad, mode=mode)[0]


def validation_views(samples: list[PersonSample], cfg: Any) -> list[tuple[torch.Tensor, ...]]:
    """One round trip per held-out photo, seeded by its index, at full size, cropped around the region's
    centre of mass: the same views in every run with the same seed, so scores compare across runs."""
    views = []
    for index, sample in enumerate(samples):
        rng = np.random.default_rng([cfg.seed, index])
        degraded, region, original = round_trip(sample, rng, 1.0, cfg.reach, cfg.max_lost)
        if not region.any():
            continue
        centre = tuple(int(v) for v in np.argwhere(region > 0).mean(axis=0))
        view = _tensors(degraded, region, original, _window(region, cfg.crop, centre))
        views.append(tuple(_fit(t, cfg.crop) for t in view))
    return views
