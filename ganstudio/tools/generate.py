"""Generating a new picture with a ``generate`` model (a DCGAN the training wizard trained on a user's folder).

Unlike the other tools it takes no image: the job's ``image`` is ignored, and the seed alone decides the picture,
so the same model and seed give the same picture again.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..engine import CancelToken, ProgressCallback, Runtime
from ..engine.cancel import check, report
from .base import ToolSpec, find_model, load_module

MAX_SEED = 2**31 - 1


@dataclass
class GenerateParams:
    model: str = ""
    seed: int = 0


def latent(seed: int, latent_dim: int) -> torch.Tensor:
    """The picture's latent vector: standard-normal, from a generator of its own seeded with ``seed``."""
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"the seed must be from 0 to {MAX_SEED}, not {seed}")
    return torch.randn(1, latent_dim, generator=torch.Generator().manual_seed(seed))


def run(
    image: np.ndarray | None,
    params: GenerateParams,
    mask: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    runtime: Runtime | None = None,
) -> np.ndarray:
    """A new H x W x 3 uint8 picture from ``params.model`` at ``params.seed``."""
    model = find_model(params.model, "generate")
    report(progress, 0.0, f"loading {model.title}")
    module, device, dtype = load_module(model, runtime or Runtime())
    check(cancel)
    with torch.inference_mode():
        picture = module(latent(params.seed, module.latent_dim).to(device, dtype))[0]
    pixels = picture.float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    report(progress, 1.0, "done")
    return np.ascontiguousarray(pixels)


#: Not in :data:`ganstudio.tools.TOOLS`: that list is of tools that change an image (the tools panel, batches and
#: ``ganstudio apply`` offer those); this one makes a new image from nothing.
TOOL = ToolSpec("generate", "Generate", "generate", GenerateParams, run)
