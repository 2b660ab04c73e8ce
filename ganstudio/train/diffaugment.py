"""DiffAugment (Zhao et al. 2020): the same kind of random translation, colour change and cutout applied to real
and generated pictures before a discriminator sees them. It is differentiable, so a discriminator cannot memorise a
small folder while the generator still learns un-augmented pictures. Randomness comes from torch's generator, so a
checkpoint's RNG state resumes it."""
from __future__ import annotations

import torch
import torch.nn.functional as F

#: The policies, in the order they are applied (the paper's).
AUGMENTS = ("color", "translation", "cutout")


def _colour(x: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]

    def draw() -> torch.Tensor:
        return torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype)

    x = x + (draw() - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (draw() * 2) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (draw() + 0.5) + mean  # contrast


def _translate(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each picture by up to ``ratio`` of its size; what is shifted in is 0 (mid-grey in [-1, 1])."""
    n, _, height, width = x.shape
    max_dy, max_dx = int(height * ratio + 0.5), int(width * ratio + 0.5)
    dy = torch.randint(-max_dy, max_dy + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-max_dx, max_dx + 1, (n, 1, 1), device=x.device)
    rows = (torch.arange(height, device=x.device).view(1, height, 1) + dy + 1).clamp(0, height + 1)
    cols = (torch.arange(width, device=x.device).view(1, 1, width) + dx + 1).clamp(0, width + 1)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    padded = F.pad(x, (1, 1, 1, 1)).permute(0, 2, 3, 1)
    return padded[batch, rows, cols].permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Blank a square of ``ratio`` of the size at a random place in each picture."""
    n, _, height, width = x.shape
    cut_h, cut_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
    top = torch.randint(0, height + (1 - cut_h % 2), (n, 1, 1), device=x.device) - cut_h // 2
    left = torch.randint(0, width + (1 - cut_w % 2), (n, 1, 1), device=x.device) - cut_w // 2
    rows = torch.arange(height, device=x.device).view(1, height, 1)
    cols = torch.arange(width, device=x.device).view(1, 1, width)
    inside = (rows >= top) & (rows < top + cut_h) & (cols >= left) & (cols < left + cut_w)
    return x * (~inside).unsqueeze(1).to(x.dtype)


_AUGMENT_FUNCTIONS = {"color": _colour, "translation": _translate, "cutout": _cutout}


def parse_policies(text: str) -> tuple[str, ...]:
    """``"color,translation"`` as a tuple of policies; empty or ``none`` for none. Raises on unknown ones."""
    policies = tuple(p.strip() for p in text.split(",") if p.strip() and p.strip() != "none")
    unknown = set(policies) - set(AUGMENTS)
    if unknown:
        raise ValueError(f"unknown augmentation {', '.join(sorted(unknown))} (known: {', '.join(AUGMENTS)})")
    return policies


def diff_augment(x: torch.Tensor, policies: tuple[str, ...]) -> torch.Tensor:
    """DiffAugment of a batch in [-1, 1], a fresh random draw per picture, in the order of :data:`AUGMENTS`."""
    for name in AUGMENTS:
        if name in policies:
            x = _AUGMENT_FUNCTIONS[name](x)
    return x
