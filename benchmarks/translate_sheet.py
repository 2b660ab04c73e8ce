"""A sheet to look at: held-out photos of one direction through a translation model, each row the photo, its
translation, and the head's square of both (twice the head's side, where the head locator finds one).

    python benchmarks/translate_sheet.py --weights run/cat2dog-head.safetensors --source cats --out c2d.png
    python benchmarks/translate_sheet.py --model cat2dog --source cats --out shipped.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganstudio.imaging.color import resize
from ganstudio.models import get_registry
from ganstudio.models.registry import descriptor_from_card
from ganstudio.tools.heads import locate_head
from ganstudio.tools.translate import TranslateParams, head_square, run, square_crop
from ganstudio.train.data import list_images, load_rgb

SHARED = Path(__file__).resolve().parents[2] / "shared"
ROW = 160


def row(photo: np.ndarray, model: str) -> np.ndarray:
    try:
        translated = run(photo, TranslateParams(model=model))
    except ValueError:  # a head model that finds no head: the photo as it was
        translated = photo
    width = round(photo.shape[1] * ROW / photo.shape[0])
    tiles = [resize(photo, (width, ROW), "area"), resize(translated, (width, ROW), "area")]
    head = locate_head(photo)
    for image in (photo, translated):
        if head is None:
            tiles.append(np.zeros((ROW, ROW, 3), np.uint8))
        else:
            x0, y0, side = head_square(head, 2.0)
            tiles.append(resize(square_crop(image, x0, y0, side), (ROW, ROW), "area"))
    return np.concatenate(tiles, axis=1)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, help="<name>.safetensors with its card beside it")
    parser.add_argument("--model", help="an installed model's name (instead of --weights)")
    parser.add_argument("--source", choices=("cats", "dogs"), required=True)
    parser.add_argument("--eval-root", type=Path, default=SHARED / "eval" / "cat2dog")
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.weights:
        descriptor = descriptor_from_card(args.weights.with_suffix(".json"), "user")
        get_registry().register(descriptor)
        name = descriptor.name
    elif args.model:
        name = args.model
    else:
        parser.error("give --weights or --model")
    paths = list_images(args.eval_root / args.source)
    paths = paths[5::max(1, len(paths) // args.count)][: args.count]
    rows = [row(load_rgb(p), name) for p in paths]
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    half = (len(rows) + 1) // 2
    left, right = np.concatenate(rows[:half]), np.concatenate(rows[half:] or [np.zeros_like(rows[0])])
    right = np.pad(right, ((0, left.shape[0] - right.shape[0]), (0, 0), (0, 0)))
    Image.fromarray(np.concatenate([left, right], axis=1)).save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
