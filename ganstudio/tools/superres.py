"""Super-resolution: upscale an image ×2 or ×4 with a learned model or a classic resampler."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..engine import CancelToken, ProgressCallback, Runtime, run_rgb_model
from ..engine.cancel import check, report
from ..imaging.color import resize
from ..models import get_registry
from .base import ToolSpec, best_model, check_image, find_model, load_module, rank_models

SCALES = (2, 3, 4)
#: The models the tool starts on, best first: photos as people have them (JPEG, noise, softness) are what gets
#: enlarged most, so the real-world model leads; the classic resampler is the last resort, never the first choice.
PREFERRED_MODELS = ("real-x4", "real-x2", "srresnet-x4", "srgan-x4", "bicubic")


def default_model(scale: int | None = None) -> str:
    """The first of :data:`PREFERRED_MODELS` that is installed, else any other learned model (ours before the
    user's), and bicubic only when no model is installed: the panel's and the CLI's default. With ``scale``, the
    best model made for that scale, when one is installed."""
    if scale:
        ranked = rank_models(get_registry().for_task("superres"), PREFERRED_MODELS)
        fitting = [model.name for model in ranked if model.scale == scale and not model.is_classic]
        if fitting:
            return fitting[0]
    return best_model("superres", PREFERRED_MODELS, "bicubic")


@dataclass
class SuperResParams:
    model: str = field(default_factory=default_model)
    scale: int = 4


def run(
    image: np.ndarray,
    params: SuperResParams,
    mask: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    runtime: Runtime | None = None,
) -> np.ndarray:
    """Upscale ``image`` by ``params.scale``. A model of another fixed scale runs at its own scale and the result is
    resampled to the one asked for (area for reducing, Lanczos for enlarging)."""
    check_image(image)
    if params.scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(map(str, SCALES))}, not {params.scale}")
    runtime = runtime or Runtime()
    model = find_model(params.model, "superres")
    height, width = image.shape[:2]
    target = (width * params.scale, height * params.scale)
    check(cancel)
    if model.is_classic:
        report(progress, 0.0, f"{model.title} ×{params.scale}")
        result = resize(image, target, model.name)
        report(progress, 1.0, "done")
        return result

    report(progress, 0.0, f"loading {model.title}")
    module, device, dtype = load_module(model, runtime)
    result = run_rgb_model(image, module, scale=model.scale, multiple_of=model.multiple_of, device=device,
                           dtype=dtype, tile=runtime.tile if model.tiling else max(height, width),
                           progress=progress, cancel=cancel)
    if model.scale != params.scale:
        result = resize(result, target, "area" if model.scale > params.scale else "lanczos")
    return result


# A tiled model gives the same pixels on a crop as on the whole image (away from the crop's own border).
TOOL = ToolSpec("superres", "Super-resolution", "superres", SuperResParams, run, previewable=True,
                preferred_models=PREFERRED_MODELS)
