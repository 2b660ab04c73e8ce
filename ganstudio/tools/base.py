"""What every tool shares: its spec, and the checks on the image and mask it is given."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import cv2
import numpy as np
import torch

from ..engine import Runtime, resolve_device, resolve_dtype
from ..imaging.color import split_alpha, to_rgb
from ..models import ModelDescriptor, get_registry, model_cache


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    #: The registry task whose models this tool offers.
    task: str
    params_type: type
    run: Callable[..., np.ndarray]
    needs_mask: bool = False
    #: Whether the tool makes sense over a folder with one set of parameters (a pose edit is per photo).
    batchable: bool = True
    #: Whether a run on a crop shows what the whole run gives there (super-resolution: yes; a tool that looks at
    #: the whole picture or resizes it to a working size: no), so the panel can offer a preview of the view.
    previewable: bool = False
    #: The models the tool starts on, best first (see :func:`rank_models`); the CLI's default and the panel's.
    preferred_models: tuple[str, ...] = ()
    #: ``(image, params) -> str``: a line for the user about what the tool makes of this input ("" for nothing),
    #: e.g. that a colour photo given to Colourise is made grey first.
    input_note: Callable[[np.ndarray, Any], str] | None = None

    def uses_mask(self, params: Any) -> bool:
        """Whether a run with ``params`` takes the mask: always for inpainting, and for a tool with a ``use_mask``
        option when it is on."""
        return self.needs_mask or bool(getattr(params, "use_mask", False))

    def note_for(self, image: np.ndarray, params: Any) -> str:
        return self.input_note(image, params) if self.input_note is not None else ""


def check_image(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected an H x W x C image with 1-4 channels, got shape {image.shape}")
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected 8- or 16-bit pixels, got {image.dtype}")


def as_rgb8(image: np.ndarray) -> np.ndarray:
    """The colour of any image the tools take, as contiguous 8-bit RGB: what the detecting networks see."""
    colour, _ = split_alpha(image)
    rgb = to_rgb(colour)
    if rgb.dtype == np.uint16:
        rgb = (rgb >> 8).astype(np.uint8)
    return np.ascontiguousarray(rgb)


def boolean_mask(mask: np.ndarray | None, image: np.ndarray) -> np.ndarray:
    """The mask as H x W booleans: True (the tool changes this pixel) where it is at least half white, so the soft
    edge of an anti-aliased mask file does not grow the area."""
    if mask is None:
        raise ValueError("this tool needs a mask: paint or load one first")
    if mask.ndim == 3:
        mask = mask[..., 0]
    if mask.shape != image.shape[:2]:
        raise ValueError(f"the mask is {mask.shape[1]}x{mask.shape[0]} but the image is {image.shape[1]}x{image.shape[0]}")
    if mask.dtype == bool:
        return mask
    half = (np.iinfo(mask.dtype).max + 1) // 2 if np.issubdtype(mask.dtype, np.integer) else 0.5
    return mask >= half


def mask_bounds(mask: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    """The mask's bounding box grown by ``margin`` and clipped to the image, or None for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    height, width = mask.shape
    return (slice(max(rows[0] - margin, 0), min(rows[-1] + margin + 1, height)),
            slice(max(cols[0] - margin, 0), min(cols[-1] + margin + 1, width)))


def feather_weights(mask: np.ndarray, feather: int) -> np.ndarray:
    """Float weights in [0, 1]: 0 outside the mask, rising over ``feather`` pixels inside its edge to 1.

    The ramp lies inside the mask, so a pixel the user did not select is never touched.
    """
    inside = mask.astype(np.uint8)
    if feather == 0:
        return inside.astype(np.float32)
    # distance of each mask pixel to the nearest unselected one; a border of ones keeps the image's edge from
    # counting as unselected
    padded = cv2.copyMakeBorder(inside, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=1)
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    return np.minimum(distance / feather, 1.0).astype(np.float32) * inside


def masked_region(mask: np.ndarray | None, image: np.ndarray, feather: int, action: str
                  ) -> tuple[tuple[slice, slice], np.ndarray]:
    """For a tool that changes only what the mask selects: the part of the image to give the model (the mask's box
    with context around it, so the model sees what the thing is, not only the painted pixels) and, over that part,
    the feathered weights of the change. ``action`` completes the message for an empty mask."""
    selected = boolean_mask(mask, image)
    tight = mask_bounds(selected, margin=0)
    if tight is None:
        raise ValueError(f"the mask is empty: select the region to {action} first")
    extent = max(tight[0].stop - tight[0].start, tight[1].stop - tight[1].start)
    bounds = mask_bounds(selected, margin=max(16, extent // 4))
    assert bounds is not None
    return bounds, feather_weights(selected[bounds], feather)


def working_shape(height: int, width: int, short_side: int, multiple_of: int) -> tuple[int, int]:
    """(width, height) with the short side at ``short_side``, the aspect kept and both a multiple of ``multiple_of``."""
    return _snapped(width * short_side / min(height, width), height * short_side / min(height, width), multiple_of)


def working_shape_long(height: int, width: int, long_side: int, multiple_of: int) -> tuple[int, int]:
    """(width, height) with the long side at ``long_side``, the aspect kept and both a multiple of ``multiple_of``."""
    return _snapped(width * long_side / max(height, width), height * long_side / max(height, width), multiple_of)


def _snapped(width: float, height: float, multiple_of: int) -> tuple[int, int]:
    return (max(multiple_of, round(width / multiple_of) * multiple_of),
            max(multiple_of, round(height / multiple_of) * multiple_of))


def preview_region(shape: tuple[int, ...], visible: tuple[float, float, float, float],
                   limit: int) -> tuple[slice, slice]:
    """The rows and columns to preview: the visible part ``(x, y, width, height)`` of an image of ``shape``, cut to
    at most ``limit`` pixels a side around its centre. Raises ValueError when none of the image is visible."""
    height, width = shape[:2]
    x, y, w, h = visible
    left, top = max(int(np.floor(x)), 0), max(int(np.floor(y)), 0)
    right, bottom = min(int(np.ceil(x + w)), width), min(int(np.ceil(y + h)), height)
    if right <= left or bottom <= top:
        raise ValueError("none of the image is in view: scroll it into view to preview")

    def cut(start: int, stop: int) -> slice:
        if stop - start <= limit:
            return slice(start, stop)
        begin = (start + stop) // 2 - limit // 2
        return slice(begin, begin + limit)

    return cut(top, bottom), cut(left, right)


def rank_models(models: Iterable[ModelDescriptor], preferred: Sequence[str] = ()) -> list[ModelDescriptor]:
    """``models`` best first: the tool's ``preferred`` names in their order, then our other shipped models, then the
    user's own and imported ones, and the classic baselines (no model at all) last; the registry's order within each."""
    def rank(model: ModelDescriptor) -> tuple[int, int]:
        place = preferred.index(model.name) if model.name in preferred else len(preferred)
        if model.is_classic:
            return 3, place
        if model.name in preferred:
            return 0, place
        return (1 if model.source == "pretrained" else 2), place

    return sorted(models, key=rank)


def best_model(task: str, preferred: Sequence[str] = (), fallback: str = "") -> str:
    """The name of the best installed model for ``task`` (:func:`rank_models`), or ``fallback`` when there is none."""
    ranked = rank_models(get_registry().for_task(task), preferred)
    return ranked[0].name if ranked else fallback


def find_model(name: str, task: str) -> ModelDescriptor:
    return get_registry().get(name, task)


def load_module(model: ModelDescriptor, runtime: Runtime) -> tuple[Any, torch.device, torch.dtype]:
    """The model's module on the runtime's device, in the precision both allow, from the shared cache."""
    device = resolve_device(runtime.device)
    dtype = resolve_dtype(device, runtime.precision, supports_half=model.supports_half,
                          supports_bf16=model.supports_bf16)
    return model_cache.get(model, device, dtype), device, dtype
