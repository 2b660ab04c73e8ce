"""Self-ensembles: a model run on flipped and transposed copies of its input, the outputs turned back and averaged.

Fully convolutional generators with dilated or strided layers leave patterns tied to the pixel grid (the gridding of
dilated convolutions shows as a repeated texture in large smooth fills). A flip moves every pixel to another place
in that grid, so the patterns of the copies do not line up and the average keeps what the copies agree on: the
image content. The price is one model call per copy (EDSR's "+" models use the same eight transforms).
"""
from __future__ import annotations

import torch

from .tiling import ModelFn

#: The copies an ensemble may use: the identity and the left-right flip (2), with the up-down flips (4), with the
#: transposes (8: the whole dihedral group of the square).
ENSEMBLE_SIZES = (1, 2, 4, 8)


def _transform(x: torch.Tensor, index: int) -> torch.Tensor:
    if index & 1:
        x = x.flip(3)
    if index & 2:
        x = x.flip(2)
    if index & 4:
        x = x.transpose(2, 3)
    return x


def _invert(x: torch.Tensor, index: int) -> torch.Tensor:
    if index & 4:
        x = x.transpose(2, 3)
    if index & 2:
        x = x.flip(2)
    if index & 1:
        x = x.flip(3)
    return x


def self_ensemble(model: ModelFn, size: int) -> ModelFn:
    """``model`` averaged over the first ``size`` of the dihedral transforms; ``size`` 1 is ``model`` itself.

    The model must map an N x C x H x W input to an output of the same height and width (an image-to-image model
    at scale 1).
    """
    if size not in ENSEMBLE_SIZES:
        raise ValueError(f"a self-ensemble has {', '.join(map(str, ENSEMBLE_SIZES))} copies, not {size}")
    if size == 1:
        return model

    def averaged(x: torch.Tensor) -> torch.Tensor:
        # the copies keep the input's memory layout, which the caller chose for the device
        layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        total = None
        for index in range(size):
            out = _invert(model(_transform(x, index).contiguous(memory_format=layout)), index).float()
            total = out if total is None else total + out
        return (total / size).to(x.dtype)

    return averaged
