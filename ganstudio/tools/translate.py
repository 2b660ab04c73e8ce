"""Domain translation (e.g. cat -> dog) of a whole image or of a masked region, blended with the original."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..engine import CancelToken, ProgressCallback, Runtime, run_rgb_model
from ..engine.cancel import check, report
from .base import ToolSpec, best_model, check_image, find_model, load_module, masked_region, working_shape

MIN_WORKING_SIZE, MAX_WORKING_SIZE = 64, 2048
#: The short side a model runs at when neither the user nor its card (``working_size``) says otherwise.
DEFAULT_WORKING_SIZE = 256


#: The models the tool starts on, best first.
PREFERRED_MODELS = ("cat2dog", "dog2cat")


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
    #: Width in pixels of the ramp inside the mask's edge over which the result fades into the original.
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
    # Blend the colour channels in the image's own integer scale, so a weight of 0 gives back the exact original.
    colour = image.shape[2] - (image.shape[2] in (2, 4))
    before = crop[..., :colour].astype(np.float32)
    after = translated[..., :colour].astype(np.float32)
    blended = before + params.strength * weights * (after - before)
    result = image.copy()
    result[bounds + (slice(0, colour),)] = np.rint(blended).astype(image.dtype)
    report(progress, 1.0, "done")
    return result


TOOL = ToolSpec("translate", "Translate", "translate", TranslateParams, run, preferred_models=PREFERRED_MODELS)
