"""Pack the cat and dog training folders small enough to travel with the repository to a lent GPU.

The device machine gets the working tree and up to 8 carried paths, 64 MiB in all, and nothing of ``../shared``.
Training resizes every photo to its short side ``--load-size`` (143) before cropping, so photos stored at that size
lose nothing the run would have seen but WebP's quantisation; quality 80 makes 3,600 photos 17 MiB, which fits
beside the repository (42 MiB). Usage, from the repository root:

    echo /.gpu-data/ >> .git/info/exclude
    python training/translate/pack_data.py --out .gpu-data

The command prints the pack's size and the working tree's, and fails when the two together would not travel.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from PIL import Image

from ganstudio.train.data import list_images, load_rgb

TRAVEL_LIMIT = 64 * 2**20


def pack_folder(source: Path, target: Path, short_side: int, quality: int) -> tuple[int, int]:
    """Every image of ``source``, shrunk to ``short_side`` (never enlarged), into ``target`` as WebP; returns
    (files written, bytes). Files that cannot be decoded are left out and named on stderr, as training would."""
    target.mkdir(parents=True, exist_ok=True)
    written = size = 0
    for path in list_images(source):
        try:
            image = Image.fromarray(load_rgb(path))
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            print(f"skipped {path}: {error}", file=sys.stderr)
            continue
        factor = short_side / min(image.size)
        if factor < 1:
            image = image.resize((round(image.width * factor), round(image.height * factor)),
                                 Image.Resampling.LANCZOS)
        # Keep the relative path: training lists folders recursively and sorts, so the held-out sample photos
        # stay the same ones.
        out = (target / path.relative_to(source)).with_suffix(".webp")
        out.parent.mkdir(parents=True, exist_ok=True)
        image.save(out, quality=quality, method=6)
        written += 1
        size += out.stat().st_size
    return written, size


def working_tree_bytes(repo: Path) -> int:
    """Tracked and untracked-not-ignored files: what travels besides the carried paths."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                           check=True, capture_output=True).stdout.split(b"\0")
    return sum((repo / name.decode()).stat().st_size for name in names if name and (repo / name.decode()).is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data", help="folder holding cats/ and dogs/")
    parser.add_argument("--domains", nargs="+", default=["cats", "dogs"])
    parser.add_argument("--out", default=".gpu-data")
    parser.add_argument("--load-size", type=int, default=143, help="the run's --load-size")
    parser.add_argument("--quality", type=int, default=80, help="WebP quality: 80 keeps the pack under the limit")
    args = parser.parse_args(argv)

    total = 0
    for domain in args.domains:
        count, size = pack_folder(Path(args.data) / domain, Path(args.out) / domain, args.load_size, args.quality)
        print(f"{domain}: {count} photos, {size / 2**20:.1f} MiB")
        total += size
    tree = working_tree_bytes(Path.cwd())
    print(f"pack {total / 2**20:.1f} MiB + working tree {tree / 2**20:.1f} MiB = {(total + tree) / 2**20:.1f} MiB "
          f"of {TRAVEL_LIMIT / 2**20:.0f}")
    if total + tree > TRAVEL_LIMIT:
        print("too large to travel: lower --quality", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
