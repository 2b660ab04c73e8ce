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
#: Fewer before/after pairs than this: each pair gives many crops, but a handful teaches only those pictures.
MIN_PAIRS = 10
#: Two sides of a pair whose aspect ratios differ by less than this are the same picture at two sizes.
ASPECT_TOLERANCE = 0.01
_ORIENTATION = 0x0112
_TURNED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


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
                if image.getexif().get(_ORIENTATION, 1) in _TURNED:
                    width, height = height, width  # as training sees it: EXIF orientation applied
            report.images.append(ImageInfo(path, width, height, _digest(path)))
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            report.broken.append(SkippedFile(path, f"unreadable: {error}"))
        if progress is not None:
            progress(index + 1, len(paths))
    return report


def pair_key(path: Path, folder: Path) -> str:
    """What pairs a file with its partner: its path under the folder without the extension, in lower case (so
    ``street/01.jpg`` before pairs with ``street/01.png`` after)."""
    return path.relative_to(folder).with_suffix("").as_posix().lower()


def pair_paths(before: list[Path], before_folder: Path, after: list[Path],
               after_folder: Path) -> tuple[list[tuple[Path, Path]], list[Path], list[Path]]:
    """(pairs in ``before``'s order, before files without a partner, after files without one). A key two files of
    one folder share (``01.jpg`` and ``01.png``) pairs its first file; the others count as unmatched."""
    after_by_key: dict[str, Path] = {}
    only_after: list[Path] = []
    for path in after:
        if after_by_key.setdefault(pair_key(path, after_folder), path) is not path:
            only_after.append(path)
    pairs, only_before, taken = [], [], set()
    for path in before:
        key = pair_key(path, before_folder)
        if key in after_by_key and key not in taken:
            pairs.append((path, after_by_key[key]))
            taken.add(key)
        else:
            only_before.append(path)
    only_after += [path for key, path in after_by_key.items() if key not in taken]
    return pairs, only_before, sorted(only_after)


def same_picture(before: tuple[int, int], after: tuple[int, int]) -> bool:
    """Whether (width, height) sizes ``before`` and ``after`` can be one aligned picture: equal, or the same aspect
    ratio (the after side is then resized to the before side's size)."""
    if before == after:
        return True
    return abs(before[0] / before[1] - after[0] / after[1]) <= ASPECT_TOLERANCE * before[0] / before[1]


@dataclass
class PairReport:
    """Two checked folders matched into before/after pairs by file name (:func:`pair_key`)."""
    before: FolderReport
    after: FolderReport
    pairs: list[tuple[ImageInfo, ImageInfo]] = field(default_factory=list)
    only_before: list[Path] = field(default_factory=list)
    only_after: list[Path] = field(default_factory=list)

    @property
    def resized(self) -> list[tuple[ImageInfo, ImageInfo]]:
        """Pairs of one aspect ratio at two sizes: trained on, the after side resized to the before side."""
        return [(b, a) for b, a in self.pairs if (b.width, b.height) != (a.width, a.height)
                and same_picture((b.width, b.height), (a.width, a.height))]

    @property
    def mismatched(self) -> list[tuple[ImageInfo, ImageInfo]]:
        """Pairs whose shapes differ: not one picture, left out."""
        return [(b, a) for b, a in self.pairs if not same_picture((b.width, b.height), (a.width, a.height))]

    def usable(self, min_side: int) -> list[tuple[ImageInfo, ImageInfo]]:
        return [(b, a) for b, a in self.pairs if same_picture((b.width, b.height), (a.width, a.height))
                and b.short_side >= min_side]

    def too_small(self, min_side: int) -> list[tuple[ImageInfo, ImageInfo]]:
        return [(b, a) for b, a in self.pairs if same_picture((b.width, b.height), (a.width, a.height))
                and b.short_side < min_side]

    def verdict(self, min_side: int, min_pairs: int = MIN_PAIRS) -> Verdict:
        count = len(self.usable(min_side))
        if count >= min_pairs:
            return Verdict(True, count, f"Enough to train on: {count} usable pairs.")
        return Verdict(False, count, f"Too few: {count} usable pairs, at least {min_pairs} pairs of {min_side} px or "
                                     "more are needed.")

    def problem_lines(self, min_side: int) -> list[str]:
        """What the Data page lists: files without a partner, pairs of different shapes or sizes, small pairs."""
        lines: list[str] = []

        def listed(title: str, items: list[str]) -> None:
            if items:
                lines.append(f"{title} ({len(items)}):")
                lines.extend(f"  {item}" for item in items)

        def name(info: ImageInfo, report: FolderReport) -> str:
            return f"{info.path.relative_to(report.folder)} ({info.width}×{info.height})"

        listed("Before, with no after file of the same name, left out",
               [str(path.relative_to(self.before.folder)) for path in self.only_before])
        listed("After, with no before file of the same name, left out",
               [str(path.relative_to(self.after.folder)) for path in self.only_after])
        listed("Pairs of different shapes, left out",
               [f"{name(b, self.before)} ≠ {name(a, self.after)}" for b, a in self.mismatched])
        listed("Pairs of one shape at two sizes, the after picture resized to the before one",
               [f"{name(b, self.before)} ← {name(a, self.after)}" for b, a in self.resized])
        listed(f"Pairs smaller than {min_side} px, left out",
               [name(b, self.before) for b, _ in self.too_small(min_side)])
        return lines


def match_pairs(before: FolderReport, after: FolderReport) -> PairReport:
    """Pair the readable images of two checked folders by name; an unreadable file counts as missing."""
    infos = {info.path: info for info in before.images + after.images}
    pairs, only_before, only_after = pair_paths([i.path for i in before.images], before.folder,
                                                [i.path for i in after.images], after.folder)
    return PairReport(before, after, [(infos[b], infos[a]) for b, a in pairs], only_before, only_after)
