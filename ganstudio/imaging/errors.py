"""Typed errors for reading and writing images; ``str(error)`` is a one-line message for the user."""

from __future__ import annotations

from pathlib import Path


class ImageError(Exception):
    """An image could not be read or written; the message names the file."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class ImageNotFoundError(ImageError):
    pass


class UnreadableImageError(ImageError):
    """Zero bytes, not an image, a format or pixel mode we do not support, or damaged data."""


class TruncatedImageError(ImageError):
    pass


class ImageTooLargeError(ImageError):
    """More pixels than the caller's limit (guards against decompression bombs)."""


class OutputExistsError(ImageError):
    """The target file exists and overwriting was not asked for."""
