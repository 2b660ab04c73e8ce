"""The inpainting family's training data: free-form holes (strokes and boxes, as DeepFill v2 draws them) in crops
of photos at several zooms, and the held-out crops with masks fixed by the seed."""
from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ganstudio.train.data import augment, to_tensor


def _draw_stroke(mask: np.ndarray, rng: np.random.Generator) -> None:
    """A DeepFill v2-style brush stroke: a random walk of thick line segments with round joints."""
    height, width = mask.shape
    side = min(height, width)
    thickness = max(2, int(rng.uniform(0.03, 0.09) * side))
    x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
    angle = rng.uniform(0, 2 * math.pi)
    for _ in range(int(rng.integers(2, 7))):
        angle += rng.uniform(-math.pi / 2, math.pi / 2)
        length = rng.uniform(0.1, 0.3) * side
        nx = int(np.clip(x + length * math.cos(angle), 0, width - 1))
        ny = int(np.clip(y + length * math.sin(angle), 0, height - 1))
        cv2.line(mask, (x, y), (nx, ny), 1, thickness)
        cv2.circle(mask, (nx, ny), thickness // 2, 1, -1)
        x, y = nx, ny


def _draw_box(mask: np.ndarray, rng: np.random.Generator) -> None:
    height, width = mask.shape
    box_h = int(rng.uniform(0.1, 0.45) * height)
    box_w = int(rng.uniform(0.1, 0.45) * width)
    top, left = int(rng.integers(0, height - box_h + 1)), int(rng.integers(0, width - box_w + 1))
    mask[top : top + box_h, left : left + box_w] = 1


def random_mask(height: int, width: int, rng: np.random.Generator, min_area: float = 0.05,
                max_area: float = 0.45) -> np.ndarray:
    """H x W bool, True = hole: strokes and boxes until a random target area in [min_area, max_area] is reached.

    A shape that would push the area past ``max_area`` is dropped and another drawn, so the area always lands in
    the range; boxes stand in for the rectangle selections users make, strokes for brushed-over objects.
    """
    target = rng.uniform(min_area, max_area)
    mask = np.zeros((height, width), np.uint8)
    area = 0.0
    for _ in range(200):
        if area >= target:
            break
        candidate = mask.copy()
        if rng.random() < 0.7:
            _draw_stroke(candidate, rng)
        else:
            _draw_box(candidate, rng)
        new_area = float(candidate.mean())
        if new_area <= max_area:
            mask, area = candidate, new_area
    if area < min_area:
        # Practically unreachable (it needs 200 rejected shapes); a centred box keeps the promise anyway.
        side_h, side_w = int(height * math.sqrt(target)), int(width * math.sqrt(target))
        top, left = (height - side_h) // 2, (width - side_w) // 2
        mask[top : top + side_h, left : left + side_w] = 1
    return mask.astype(bool)


def _resize_square(window: np.ndarray, size: int) -> np.ndarray:
    if window.shape[0] == size:
        return window
    interpolation = cv2.INTER_AREA if window.shape[0] > size else cv2.INTER_CUBIC
    return cv2.resize(window, (size, size), interpolation=interpolation)


class InpaintCropDataset(Dataset):
    """(image 3 x crop x crop in [0, 1], mask 1 x crop x crop, 1 = hole); item ``i`` draws from image ``i``.

    All randomness comes from torch's global generator (the mask's numpy generator is seeded from it), so a
    checkpoint's RNG state resumes the same stream, as in :mod:`ganstudio.train.data`.
    """

    def __init__(self, images: list[np.ndarray], cfg: Any) -> None:
        if not images:
            raise ValueError("no usable training images")
        self.images = images
        self.cfg = cfg

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        image = self.images[index]
        height, width = image.shape[:2]
        short = min(height, width)
        low, high = min(cfg.crop, short), min(int(cfg.crop * cfg.max_zoom), short)
        side = int(torch.randint(low, high + 1, ()).item())
        top = int(torch.randint(0, height - side + 1, ()).item())
        left = int(torch.randint(0, width - side + 1, ()).item())
        window = np.ascontiguousarray(augment(image[top : top + side, left : left + side], cfg.augment))
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, ()).item()))
        mask = random_mask(cfg.crop, cfg.crop, rng, cfg.min_area, cfg.max_area)
        return to_tensor(_resize_square(window, cfg.crop)), torch.from_numpy(mask)[None].float()


def validation_pairs(images: list[np.ndarray], cfg: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Centre crops of held-out photos, each with a mask fixed by the seed, so scores compare across runs."""
    pairs = []
    for index, image in enumerate(images):
        height, width = image.shape[:2]
        side = min(height, width, cfg.crop)
        top, left = (height - side) // 2, (width - side) // 2
        crop = _resize_square(np.ascontiguousarray(image[top : top + side, left : left + side]), cfg.crop)
        mask = random_mask(cfg.crop, cfg.crop, np.random.default_rng([cfg.seed, index]), cfg.min_area, cfg.max_area)
        pairs.append((to_tensor(crop), torch.from_numpy(mask)[None].float()))
    return pairs
