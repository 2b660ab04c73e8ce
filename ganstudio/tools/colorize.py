"""Colourise a black-and-white photo (or a masked part of one) with a learned model of colour from lightness.

The model sees only the photo's CIE L* at a working size and gives a*b*; the colour is enlarged to the photo's size
and put beside the photo's own full-resolution lightness, so no detail is lost. A colour photo is made grey first:
only its lightness goes in (:func:`input_note` says so to the user).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from ..engine import CancelToken, ProgressCallback, Runtime
from ..engine.cancel import check, report
from ..imaging.color import (from_float, lab_to_rgb, lab_to_rgb_keeping_lightness, merge_alpha, rgb_to_lab,
                             split_alpha, to_float, to_rgb)
from ..models.arch.colorize import AB_SCALE
from .base import ToolSpec, best_model, check_image, find_model, load_module, masked_region, working_shape_long

#: The long side a model runs at when its card does not say (colour needs far less resolution than lightness).
DEFAULT_WORKING_SIZE = 512
#: The models the tool starts on, best first.
PREFERRED_MODELS = ("colorize",)
#: A photo whose pixels are this far from grey (largest minus smallest channel, 8-bit levels) in more than
#: :data:`COLOUR_SHARE` of a sample counts as a colour photo; a grey JPEG's chroma noise stays well below.
COLOUR_SPREAD, COLOUR_SHARE = 12, 0.01


def default_model() -> str:
    """The best installed colourisation model; ``colorize`` (which then fails with a clear error) when none is."""
    return best_model("colorize", PREFERRED_MODELS, "colorize")


@dataclass
class ColorizeParams:
    model: str = field(default_factory=default_model)
    #: 0 keeps the photo as it is, 1 gives the model's colour; in between blends the colour channels.
    strength: float = 1.0
    #: Keep every pixel's lightness (L*) exactly: a colour outside sRGB loses chroma instead of being clipped,
    #: which would brighten or darken it.
    keep_lightness: bool = True
    #: Colour only the masked region; everything outside the mask keeps its original pixels.
    use_mask: bool = False
    #: Width in pixels of the ramp inside the mask's edge over which the colour fades into the original.
    feather: int = 8


def is_colour(image: np.ndarray) -> bool:
    """Whether ``image`` has colour worth mentioning (a grey photo saved as RGB or as a JPEG does not)."""
    if image.shape[2] < 3:
        return False
    step = max(1, int(np.sqrt(image.shape[0] * image.shape[1] / 250_000)))  # about 250 000 pixels looked at
    sample = image[::step, ::step, :3].astype(np.int32)
    if image.dtype == np.uint16:
        sample >>= 8
    spread = sample.max(axis=2) - sample.min(axis=2)
    return float(np.mean(spread > COLOUR_SPREAD)) > COLOUR_SHARE


def input_note(image: np.ndarray, params: ColorizeParams) -> str:
    """A line for the status bar about what the tool did with this photo, or "" when there is nothing to say."""
    if is_colour(image):
        return "The photo already had colour: Colourise made it grey first and coloured its lightness anew."
    return ""


def _check_params(params: ColorizeParams) -> None:
    if not 0.0 <= params.strength <= 1.0:
        raise ValueError(f"strength must be between 0 and 1, not {params.strength}")
    if params.feather < 0:
        raise ValueError(f"feather must be 0 or more pixels, not {params.feather}")


def _working_size(card: dict) -> int:
    size = card.get("working_size", DEFAULT_WORKING_SIZE)
    # a card is user data: a bad value must not break the tool
    return size if isinstance(size, int) and 64 <= size <= 2048 else DEFAULT_WORKING_SIZE


def predict_ab(module: torch.nn.Module, lightness: np.ndarray, working_size: int, multiple_of: int,
               device: torch.device, dtype: torch.dtype) -> np.ndarray:
    """H x W L* (0-100) -> H x W x 2 a*b*: the model runs with the long side at ``working_size`` (never above the
    photo's own) and its colour is enlarged to the photo's size."""
    height, width = lightness.shape
    size = working_shape_long(height, width, min(working_size, max(height, width)), multiple_of)
    small = cv2.resize(lightness, size, interpolation=cv2.INTER_AREA)
    tensor = torch.from_numpy(small / 100.0).to(device=device, dtype=dtype)[None, None]
    with torch.inference_mode():
        ab = module(tensor).float().cpu()[0].permute(1, 2, 0).numpy() * AB_SCALE
    return cv2.resize(ab, (width, height), interpolation=cv2.INTER_CUBIC)


def run(
    image: np.ndarray,
    params: ColorizeParams,
    mask: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    runtime: Runtime | None = None,
) -> np.ndarray:
    """Colour ``image`` (or, with ``params.use_mask``, the region ``mask`` selects), blended by the strength.

    A grey image comes back RGB (with its alpha); alpha is never changed, and strength 0 returns the photo as it was.
    """
    check_image(image)
    _check_params(params)
    runtime = runtime or Runtime()
    model = find_model(params.model, "colorize")
    if model.is_classic:
        raise ValueError(f"{model.title} is not a colourisation model")
    if params.strength == 0:
        return image.copy()
    colour, alpha = split_alpha(image)
    if params.use_mask:
        bounds, weights = masked_region(mask, image, params.feather, "colour")
    else:
        bounds = (slice(None), slice(None))
        weights = np.ones(colour.shape[:2], np.float32)
    rgb = to_rgb(colour)
    lab = rgb_to_lab(to_float(rgb[bounds]))

    check(cancel)
    report(progress, 0.0, f"loading {model.title}")
    module, device, dtype = load_module(model, runtime)
    check(cancel)
    report(progress, 0.2, "colouring")
    predicted = predict_ab(module, lab[..., 0], _working_size(model.card), model.multiple_of, device, dtype)
    check(cancel)
    report(progress, 0.8, "keeping the lightness" if params.keep_lightness else "converting")
    weight = (params.strength * weights)[..., None]
    lab[..., 1:] += weight * (predicted - lab[..., 1:])
    coloured = from_float(lab_to_rgb_keeping_lightness(lab) if params.keep_lightness else lab_to_rgb(lab),
                          image.dtype)
    result = rgb.copy()
    changed = weights > 0  # pixels the tool may not touch keep their exact values, not a Lab round trip's
    result[bounds][changed] = coloured[changed]
    report(progress, 1.0, "done")
    return merge_alpha(result, alpha)


TOOL = ToolSpec("colorize", "Colourise", "colorize", ColorizeParams, run, preferred_models=PREFERRED_MODELS,
                input_note=input_note)
