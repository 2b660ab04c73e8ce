"""Folder datasets for super-resolution: HR crops and their MATLAB-style bicubic LR counterparts.

Randomness comes from torch's global generator only, so saving ``torch.get_rng_state()`` in a checkpoint is
enough to resume the same data stream (with ``num_workers=0``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset

from ganstudio.imaging.color import resize
from ganstudio.train.degrade import RealDegradation, degrade_real

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


@dataclass(frozen=True)
class SkippedFile:
    path: Path
    reason: str


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder``, recursively, in a stable (sorted) order."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_rgb(path: Path) -> np.ndarray:
    """Decode to an H×W×3 uint8 array, EXIF orientation applied. Raises on unreadable or truncated files."""
    with Image.open(path) as image:
        image.load()  # Forces the full decode here, so truncated files fail now rather than mid-training.
        image = ImageOps.exif_transpose(image)
        return np.asarray(image.convert("RGB")).copy()


def load_folder(paths: list[Path], min_side: int,
                min_spread: float = 0.0) -> tuple[list[np.ndarray], list[SkippedFile]]:
    """Decode every file into RAM; broken files, those too small for a crop and, with ``min_spread``, blank ones
    (no colour channel varying by that many grey levels: see :func:`spread`) are skipped and reported."""
    images: list[np.ndarray] = []
    skipped: list[SkippedFile] = []
    for path in paths:
        try:
            array = load_rgb(path)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            skipped.append(SkippedFile(path, f"unreadable: {exc}"))
            continue
        if min(array.shape[:2]) < min_side:
            skipped.append(SkippedFile(path, f"smaller than {min_side} px"))
            continue
        if min_spread and spread(array) < min_spread:
            skipped.append(SkippedFile(path, "blank: one flat colour"))
            continue
        images.append(array)
    return images, skipped


def spread(array: np.ndarray) -> float:
    """How much an H×W×3 uint8 picture varies: the largest of its channels' standard deviations, in grey levels."""
    return float(array.reshape(-1, array.shape[-1]).std(axis=0).max())


def resize_short_side(image: np.ndarray, short_side: int) -> np.ndarray:
    """``image`` scaled so its short side is ``short_side``, aspect kept (area filter down, bicubic up)."""
    height, width = image.shape[:2]
    factor = short_side / min(height, width)
    size = (max(short_side, round(width * factor)), max(short_side, round(height * factor)))
    return resize(image, size, "area" if factor < 1 else "bicubic")


def bicubic_downscale(hr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB ``imresize(hr, 1/scale)`` closely: Pillow's bicubic is antialiased with a=-0.5 and rounds to uint8."""
    height, width = hr.shape[:2]
    if height % scale or width % scale:
        raise ValueError(f"HR size {width}×{height} is not a multiple of the scale {scale}")
    image = Image.fromarray(hr).resize((width // scale, height // scale), Image.Resampling.BICUBIC)
    return np.array(image)


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """H×W×3 uint8 -> 3×H×W float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float().div_(255.0)


def random_augment(crop: np.ndarray) -> np.ndarray:
    """One of the 8 flips/rotations (the dihedral group), drawn from torch's generator."""
    k, flip = torch.randint(0, 4, ()).item(), torch.randint(0, 2, ()).item()
    crop = np.rot90(crop, k)
    return crop[:, ::-1] if flip else crop


#: ``--augment`` of the photo loops: every flip and quarter turn (the dihedral group, for pictures without an up:
#: landscapes, textures, aerial photos), left-right flips only (pictures with an up: faces, text, buildings), or
#: the crops as they are.
AUGMENTS = ("dihedral", "hflip", "none")
#: What a model card says about each.
AUGMENT_TEXT = {"dihedral": "random flips and 90° turns (dihedral group)", "hflip": "random left-right flips",
                "none": "none"}


def augment(crop: np.ndarray, kind: str) -> np.ndarray:
    """``crop`` (square for ``dihedral``) augmented as ``kind`` says (:data:`AUGMENTS`), from torch's generator.

    ``hflip`` draws one number and ``dihedral`` two, exactly as the loops did before they had a choice, so a run's
    random stream (and a resumed run's) is what it was.
    """
    if kind == "dihedral":
        return random_augment(crop)
    if kind == "hflip":
        return crop[:, ::-1] if torch.randint(0, 2, ()).item() else crop
    if kind == "none":
        return crop
    raise ValueError(f"unknown augmentation {kind!r}: use {', '.join(AUGMENTS)}")


def check_augment(kind: str) -> None:
    if kind not in AUGMENTS:
        raise ValueError(f"augment must be one of {', '.join(AUGMENTS)}, not {kind!r}")


#: ``--degradation`` of super-resolution training: how the LR side of a pair is made from its HR crop. "bicubic"
#: is the classic benchmark setting (clean sources); "real" the random blur/resize/noise/JPEG pipeline of
#: :mod:`ganstudio.train.degrade` (the photos people actually enlarge).
DEGRADATIONS = ("bicubic", "real")
DEGRADATION_TEXT = {"bicubic": "bicubic downscale (MATLAB-style, antialiased)",
                    "real": "second-order real-world degradations (ganstudio/train/degrade.py: random blur, resize, "
                            "Gaussian/shot noise and JPEG, twice; {clean:.0f} % plain bicubic or area downscales)"}


def degradation_text(kind: str, clean_share: float = 0.1) -> str:
    """How the LR side of a run's pairs was made, for its model card."""
    return DEGRADATION_TEXT[kind].format(clean=100 * clean_share)


def check_degradation(kind: str) -> None:
    if kind not in DEGRADATIONS:
        raise ValueError(f"degradation must be one of {', '.join(DEGRADATIONS)}, not {kind!r}")


def make_lr(hr: np.ndarray, scale: int, degradation: str, seed: int,
            clean_share: float = RealDegradation.clean_share) -> np.ndarray:
    """The LR side of a training or validation pair; ``seed`` drives the random pipeline (unused by bicubic), and
    ``clean_share`` of its pairs stay a plain downscale."""
    if degradation == "real":
        return degrade_real(hr, scale, np.random.default_rng(seed), RealDegradation(clean_share=clean_share))
    return bicubic_downscale(hr, scale)


class SRCropDataset(Dataset):
    """Random HR crops of cached images paired with their bicubic LR; item ``i`` draws from image ``i``."""

    def __init__(self, images: list[np.ndarray], crop: int, scale: int, augment: bool | str = True,
                 degradation: str = "bicubic", clean_share: float = RealDegradation.clean_share) -> None:
        """``augment``: one of :data:`AUGMENTS`; ``True`` is ``dihedral`` and ``False`` ``none``. ``degradation``:
        one of :data:`DEGRADATIONS`; ``clean_share``: the share of "real" pairs left a plain downscale."""
        check_degradation(degradation)
        if crop % scale:
            raise ValueError(f"crop {crop} must be a multiple of the scale {scale}")
        if not images:
            raise ValueError("no usable training images")
        self.images = images
        self.crop = crop
        self.scale = scale
        self.augment = ("dihedral" if augment else "none") if isinstance(augment, bool) else augment
        check_augment(self.augment)
        self.degradation = degradation
        self.clean_share = clean_share

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index]
        height, width = image.shape[:2]
        top = torch.randint(0, height - self.crop + 1, ()).item()
        left = torch.randint(0, width - self.crop + 1, ()).item()
        hr = image[top : top + self.crop, left : left + self.crop]
        hr = np.ascontiguousarray(augment(hr, self.augment))
        # Drawn from torch's generator (saved in checkpoints); bicubic runs draw nothing, so their stream is unchanged.
        seed = torch.randint(0, 2**31 - 1, ()).item() if self.degradation != "bicubic" else 0
        return to_tensor(make_lr(hr, self.scale, self.degradation, seed, self.clean_share)), to_tensor(hr)


class SRValidationSet(Dataset):
    """Deterministic centre crops (LR, HR) of held-out images, for a PSNR that is comparable across runs."""

    def __init__(self, images: list[np.ndarray], crop: int, scale: int, degradation: str = "bicubic") -> None:
        """``degradation`` (:data:`DEGRADATIONS`) with a fixed seed per image and the default clean share, so every
        run meets the same pairs, whatever share of clean pairs it trains on."""
        check_degradation(degradation)
        self.pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
        for image in images:
            height, width = image.shape[:2]
            size = min(crop, height, width) // scale * scale
            top, left = (height - size) // 2, (width - size) // 2
            hr = np.ascontiguousarray(image[top : top + size, left : left + size])
            lr = make_lr(hr, scale, degradation, seed=len(self.pairs))
            self.pairs.append((to_tensor(lr), to_tensor(hr)))

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pairs[index]


#: Crops varying less than this (grey levels, see :func:`ganstudio.train.data.spread`) are drawn again. A flat crop
#: (a white studio background, a letterbox bar) makes every instance norm of a generator divide by ~sqrt(eps): its
#: activations collapse to 0 and its gradients grow ~300-fold per norm layer until they overflow, and the run
#: stops with NaN losses (seen at step 39 of a 64 px run on the cat folder).
FLAT_CROP_SPREAD = 2.5


#: Draws per crop before taking the most varied one seen.
CROP_TRIES = 10


class UnpairedCrops(Dataset):
    """Random crops, augmented as ``augment`` says (left-right flips by default), from two image lists; item ``i``
    pairs A[i] with a random B. A flat crop is drawn again (:data:`FLAT_CROP_SPREAD`).

    Set :attr:`out_size` below ``crop`` for the low-resolution phase: the same view, shrunk.
    """

    def __init__(self, images_a: list[np.ndarray], images_b: list[np.ndarray], crop: int,
                 augment: str = "hflip") -> None:
        if not images_a or not images_b:
            raise ValueError("each domain needs at least one usable training image")
        check_augment(augment)
        self.images_a, self.images_b = images_a, images_b
        self.crop = self.out_size = crop
        self.augment = augment

    def __len__(self) -> int:
        return max(len(self.images_a), len(self.images_b))

    def _sample(self, image: np.ndarray) -> torch.Tensor:
        height, width = image.shape[:2]
        best, best_spread = None, -1.0
        for _ in range(CROP_TRIES):
            top = torch.randint(0, height - self.crop + 1, ()).item()
            left = torch.randint(0, width - self.crop + 1, ()).item()
            candidate = image[top : top + self.crop, left : left + self.crop]
            candidate_spread = spread(candidate)
            if candidate_spread > best_spread:
                best, best_spread = candidate, candidate_spread
            if candidate_spread >= FLAT_CROP_SPREAD:
                break
        crop = augment(best, self.augment)
        if self.out_size != self.crop:
            crop = resize(np.ascontiguousarray(crop), (self.out_size, self.out_size), "area")
        return to_tensor(crop)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image_a = self.images_a[index % len(self.images_a)]
        image_b = self.images_b[torch.randint(0, len(self.images_b), ()).item()]
        return self._sample(image_a), self._sample(image_b)


class SquareCrops(Dataset):
    """Square windows of pictures resized once to the training size on the short side, each at a random place
    along the long side and flipped left-right half the time; item ``i`` draws from picture ``i``."""

    def __init__(self, images: list[np.ndarray], size: int) -> None:
        if not images:
            raise ValueError("no usable training images")
        self.images = [resize_short_side(image, size) for image in images]
        self.size = size

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        image = self.images[index]
        height, width = image.shape[:2]
        top = torch.randint(0, height - self.size + 1, ()).item()
        left = torch.randint(0, width - self.size + 1, ()).item()
        crop = image[top : top + self.size, left : left + self.size]
        if torch.randint(0, 2, ()).item():
            crop = crop[:, ::-1]  # left-right only: pictures upside down are not what the folder holds
        return to_tensor(np.ascontiguousarray(crop))
