"""Checking a folder of training photos before a run: what is usable, what is broken, too small or duplicated.

Shared by the training wizard (which runs it off the UI thread) and anyone scripting a run. Every file is fully
decoded, so a truncated file is caught here rather than skipped silently minutes into training.
"""
from __future__ import annotations

import hashlib
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from PIL import Image

from ganstudio.train.data import SkippedFile, list_images

#: Fewer usable photos than this and a run mostly memorises them.
MIN_IMAGES = 20


@dataclass(frozen=True)
class ImageInfo:
    path: Path
    width: int
    height: int
    digest: str

    @property
    def short_side(self) -> int:
        return min(self.width, self.height)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    usable: int
    text: str


@dataclass
class FolderReport:
    folder: Path
    #: Readable images, in the training loader's (sorted) order.
    images: list[ImageInfo] = field(default_factory=list)
    broken: list[SkippedFile] = field(default_factory=list)

    @property
    def duplicates(self) -> list[list[Path]]:
        """Groups of byte-identical files; the first of each group is the one that counts as usable."""
        groups: dict[str, list[Path]] = {}
        for info in self.images:
            groups.setdefault(info.digest, []).append(info.path)
        return [paths for paths in groups.values() if len(paths) > 1]

    def too_small(self, min_side: int) -> list[Path]:
        return [info.path for info in self.images if info.short_side < min_side]

    def usable(self, min_side: int) -> list[ImageInfo]:
        """Readable, at least ``min_side`` on the short side, and the first copy of any duplicate."""
        seen: set[str] = set()
        usable = []
        for info in self.images:
            if info.short_side >= min_side and info.digest not in seen:
                usable.append(info)
            seen.add(info.digest)
        return usable

    def size_summary(self) -> str:
        if not self.images:
            return "no readable images"
        sides = [info.short_side for info in self.images]
        return f"short side {min(sides)} px at the smallest, {round(statistics.median(sides))} px median"

    def verdict(self, min_side: int, min_images: int = MIN_IMAGES) -> Verdict:
        count = len(self.usable(min_side))
        if count >= min_images:
            return Verdict(True, count, f"Enough to train on: {count} usable photos.")
        return Verdict(False, count, f"Too few: {count} usable, at least {min_images} photos of {min_side} px or "
                                     "more are needed.")


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def check_folder(folder: Path, progress: Callable[[int, int], None] | None = None,
                 cancelled: Callable[[], bool] | None = None) -> FolderReport:
    """Decode and hash every image under ``folder`` (recursively). ``progress(done, total)`` after each file;
    ``cancelled()`` is asked between files, so an abandoned check of a big folder stops early."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    report = FolderReport(folder)
    paths = list_images(folder)
    for index, path in enumerate(paths):
        if cancelled is not None and cancelled():
            break
        try:
            with Image.open(path) as image:
                image.load()  # the header alone would pass a truncated file
                width, height = image.size
            report.images.append(ImageInfo(path, width, height, _digest(path)))
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            report.broken.append(SkippedFile(path, f"unreadable: {error}"))
        if progress is not None:
            progress(index + 1, len(paths))
    return report
