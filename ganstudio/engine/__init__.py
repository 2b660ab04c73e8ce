"""Running generators on images: device and precision, tiling, cancellation and progress. No Qt."""
from .cancel import CancelToken, Cancelled, ProgressCallback
from .device import Runtime, cuda_available, describe_device, resolve_device, resolve_dtype
from .pipeline import run_rgb_model
from .tiling import TilingError, run_tiled

__all__ = [
    "CancelToken",
    "Cancelled",
    "ProgressCallback",
    "Runtime",
    "TilingError",
    "cuda_available",
    "describe_device",
    "resolve_device",
    "resolve_dtype",
    "run_rgb_model",
    "run_tiled",
]
