"""Domain translation (e.g. cat -> dog) of a whole image, of a masked region or of an animal's head, blended with
the original.

A model whose card says ``"region": "head"`` learnt heads alone, cropped around the head locator's box
(``head_context`` times its side) at its working size. The tool crops the photo the same way, translates the crop,
brings it to the photo's scale (through the best installed x4 super-resolution model when the crop is much larger
than the working size, so the new head is sharp) and pastes it back with a round feather: the body and background
keep their pixels.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..engine import CancelToken, ProgressCallback, Runtime, run_rgb_model
from ..engine.cancel import check, report
from ..imaging.color import resize
from .base import ToolSpec, best_model, check_image, find_model, load_module, masked_region, working_shape
from .heads import HeadBox, locate_head

MIN_WORKING_SIZE, MAX_WORKING_SIZE = 64, 2048
#: The short side a model runs at when neither the user nor its card (``working_size``) says otherwise.
DEFAULT_WORKING_SIZE = 256


#: The models the tool starts on, best first.
PREFERRED_MODELS = ("cat2dog", "dog2cat")
#: A head crop this many times larger than the model's working size is enlarged by super-resolution, not resampled.
ENLARGE_ABOVE = 1.5


def default_model() -> str:
    """The best installed translation model; ``cat2dog`` (which then fails with a clear error) when none is."""
    return best_model("translate", PREFERRED_MODELS, "cat2dog")


@dataclass
class TranslateParams:
    model: str = field(default_factory=default_model)
    #: 0 keeps the original, 1 is the model's output; in between blends the two.
    strength: float = 1.0
    #: The short side, in pixels, that the model runs at (the whole image, or the region around the mask); 0 = the
    #: model's own: the size its card gives (the scale it saw animals at in training), else 256.
    working_size: int = 0
    #: Change only the masked region; everything outside the mask keeps its original pixels.
    use_mask: bool = False
    #: Width in pixels of the ramp inside the mask's edge over which the result fades into the original (a head
    #: model's square always fades over the outer quarter of its inscribed disc).
    feather: int = 8


def _check_params(params: TranslateParams) -> None:
    if not 0.0 <= params.strength <= 1.0:
        raise ValueError(f"strength must be between 0 and 1, not {params.strength}")
    size = params.working_size
    if size and not _usable_working_size(size):
        raise ValueError(f"the working size must be a multiple of 4 from {MIN_WORKING_SIZE} to {MAX_WORKING_SIZE} "
                         f"(or 0 for the model's own), not {size}")
    if params.feather < 0:
        raise ValueError(f"feather must be 0 or more pixels, not {params.feather}")


def model_working_size(card: dict) -> int:
    """The short side a model's card asks to run at, or :data:`DEFAULT_WORKING_SIZE`."""
    size = card.get("working_size", DEFAULT_WORKING_SIZE)
    # a card is user data: a bad value must not break the tool
    return size if isinstance(size, int) and _usable_working_size(size) else DEFAULT_WORKING_SIZE


def _usable_working_size(size: int) -> bool:
    return size % 4 == 0 and MIN_WORKING_SIZE <= size <= MAX_WORKING_SIZE


def run(
    image: np.ndarray,
    params: TranslateParams,
    mask: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    runtime: Runtime | None = None,
) -> np.ndarray:
    """Translate ``image`` (or, with ``params.use_mask``, the region ``mask`` selects) and blend by the strength.

    The model runs at the working size and its output is brought back to the photo's size; alpha is never changed.
    """
    check_image(image)
    _check_params(params)
    runtime = runtime or Runtime()
    model = find_model(params.model, "translate")
    if model.is_classic:
        raise ValueError(f"{model.title} is not a translation model")
    if model.card.get("region") == "head" and not params.use_mask:
        return _translate_head(image, model, params, progress, cancel, runtime)
    weights: np.ndarray | float
    if params.use_mask:
        bounds, region_weights = masked_region(mask, image, params.feather, "translate")
        weights = region_weights[..., None]
    else:
        bounds = (slice(None), slice(None))
        weights = 1.0
    crop = image[bounds]
    short_side = params.working_size or model_working_size(model.card)
    size = working_shape(*crop.shape[:2], short_side, model.multiple_of)

    check(cancel)
    report(progress, 0.0, f"loading {model.title}")
    module, device, dtype = load_module(model, runtime)
    translated = run_rgb_model(crop, module, multiple_of=model.multiple_of, device=device, dtype=dtype,
                               tile=runtime.tile if model.tiling else max(size), model_size=size,
                               keep_detail=model.card.get("keeps_detail") is True, progress=progress, cancel=cancel)
    check(cancel)
    result = _blend(image, bounds, translated, params.strength, weights)
    report(progress, 1.0, "done")
    return result


def _blend(image: np.ndarray, bounds: tuple[slice, slice], translated: np.ndarray, strength: float,
           weights: np.ndarray | float) -> np.ndarray:
    # Blend the colour channels in the image's own integer scale, so a weight of 0 gives back the exact original.
    colour = image.shape[2] - (image.shape[2] in (2, 4))
    before = image[bounds][..., :colour].astype(np.float32)
    after = translated[..., :colour].astype(np.float32)
    blended = before + strength * weights * (after - before)
    result = image.copy()
    result[bounds + (slice(0, colour),)] = np.rint(blended).astype(image.dtype)
    return result


def head_square(head: HeadBox, context: float) -> tuple[int, int, int]:
    """The square a head model sees, ``(x0, y0, side)`` in photo pixels: ``context`` times the head's side about
    its centre (it may reach past the photo's edges)."""
    side = max(4, int(round(head.side * context)))
    return int(round(head.cx - side / 2)), int(round(head.cy - side / 2)), side


def square_crop(image: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """The ``side`` square at ``(x0, y0)``, its part outside the photo filled by the nearest edge pixels: how the
    head models' training crops were made, so the tool shows them the same."""
    height, width = image.shape[:2]
    rows = np.clip(np.arange(y0, y0 + side), 0, height - 1)
    cols = np.clip(np.arange(x0, x0 + side), 0, width - 1)
    return image[rows[:, None], cols[None, :]]


def round_feather(side: int, feather: float) -> np.ndarray:
    """Weights over a ``side`` square: 1 inside the inscribed disc less ``feather`` of its radius, falling to 0 at
    its edge (a square paste would show the crop's corners)."""
    centre = (side - 1) / 2
    ys, xs = np.ogrid[:side, :side]
    radius = np.hypot(xs - centre, ys - centre) / (side / 2)
    return np.clip((1.0 - radius) / max(feather, 1e-6), 0.0, 1.0).astype(np.float32)


def _translate_head(image: np.ndarray, model, params: TranslateParams, progress: ProgressCallback | None,
                    cancel: CancelToken | None, runtime: Runtime) -> np.ndarray:
    report(progress, 0.0, "finding the head")
    head = locate_head(image, runtime=runtime, cancel=cancel)
    if head is None:
        raise ValueError("no cat's or dog's head was found in this photo: paint a mask over the head and turn on "
                         "\"Use mask\" (the CLI's --mask)")
    x0, y0, side = head_square(head, float(model.card.get("head_context", 2.0)))
    height, width = image.shape[:2]
    inside = (slice(max(y0, 0), min(y0 + side, height)), slice(max(x0, 0), min(x0 + side, width)))
    square = square_crop(image, x0, y0, side)
    size = params.working_size or model_working_size(model.card)
    check(cancel)
    report(progress, 0.1, f"loading {model.title}")
    module, device, dtype = load_module(model, runtime)
    small = resize(square, (size, size), "area" if side > size else "bicubic")
    translated = run_rgb_model(small, module, multiple_of=model.multiple_of, device=device, dtype=dtype,
                               tile=size, progress=progress, cancel=cancel)
    check(cancel)
    translated = _enlarge(translated, side, runtime, cancel)
    weights = round_feather(side, 0.25)
    part = (slice(inside[0].start - y0, inside[0].stop - y0), slice(inside[1].start - x0, inside[1].stop - x0))
    result = _blend(image, inside, translated[part], params.strength, weights[part][..., None])
    report(progress, 1.0, "done")
    return result


def _enlarge(translated: np.ndarray, side: int, runtime: Runtime, cancel: CancelToken | None) -> np.ndarray:
    """The model's square at the crop's ``side``: super-resolved first when it is much smaller."""
    from . import superres

    if side > ENLARGE_ABOVE * translated.shape[0]:
        model = superres.default_model(4)
        if not find_model(model, "superres").is_classic:
            translated = superres.run(translated, superres.SuperResParams(model=model, scale=4), runtime=runtime,
                                      cancel=cancel)
    return resize(translated, (side, side), "area" if translated.shape[0] > side else "bicubic")


TOOL = ToolSpec("translate", "Translate", "translate", TranslateParams, run, preferred_models=PREFERRED_MODELS)
