"""Pixels in and out: image files as H x W x C numpy arrays, and colour helpers. numpy, Pillow and OpenCV only."""

from .color import composite_over, from_float, from_rgb, merge_alpha, resize, rgb_to_y, split_alpha, to_float, to_rgb
from .errors import (
    ImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    OutputExistsError,
    TruncatedImageError,
    UnreadableImageError,
)
from .io import (
    DEFAULT_MAX_PIXELS,
    READ_SUFFIXES,
    SAVE_FORMATS,
    ImageMeta,
    LoadedImage,
    format_for_path,
    read_image,
    write_image,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "READ_SUFFIXES",
    "SAVE_FORMATS",
    "ImageError",
    "ImageMeta",
    "ImageNotFoundError",
    "ImageTooLargeError",
    "LoadedImage",
    "OutputExistsError",
    "TruncatedImageError",
    "UnreadableImageError",
    "composite_over",
    "format_for_path",
    "from_float",
    "from_rgb",
    "merge_alpha",
    "read_image",
    "resize",
    "rgb_to_y",
    "split_alpha",
    "to_float",
    "to_rgb",
    "write_image",
]
