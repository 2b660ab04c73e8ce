"""The head locator on the heads marked by hand (``tests/test_heads.py``: held-out ``../shared/eval/cat2dog``) and
on views of them unlike the training photos: a 128 px JPEG thumbnail at quality 30, the photo turned 30 degrees
about the head, a close-up whose frame the head fills, and the photo at a third of its size inside a Kodak scene.
A head counts as found when its centre is within half the marked side and its side within 2x; plus the share of
Kodak photos (no animals) where a head is reported.

    python benchmarks/head_locator.py [--model head-locator]
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from ganstudio.tools.heads import HeadBox, locate_head
from ganstudio.train.data import list_images, load_rgb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from test_heads import EVAL, MARKED  # noqa: E402  (the marks live beside the test that checks them)

KODAK = REPO.parent / "shared" / "eval" / "photos"


def found(head: HeadBox | None, cx: float, cy: float, side: float) -> bool:
    return head is not None and bool(np.hypot(head.cx - cx, head.cy - cy) <= 0.5 * side
                                     and 0.5 <= head.side / side <= 2.0)


def views(rgb: np.ndarray, cx: float, cy: float, side: float, scene: np.ndarray):
    """(case, image, cx, cy, side) for each view of one marked photo."""
    height, width = rgb.shape[:2]
    yield "as it is", rgb, cx, cy, side
    f = 128 / max(height, width)
    small = cv2.resize(rgb, (round(width * f), round(height * f)), interpolation=cv2.INTER_AREA)
    buffer = io.BytesIO()
    Image.fromarray(small).save(buffer, "JPEG", quality=30)
    yield "thumbnail 128 px, JPEG q30", np.asarray(Image.open(buffer).convert("RGB")), cx * f, cy * f, side * f
    turn = cv2.getRotationMatrix2D((cx, cy), 30, 1.0)
    yield "turned 30 degrees", cv2.warpAffine(rgb, turn, (width, height), borderMode=cv2.BORDER_REFLECT), cx, cy, side
    half = int(side * 0.65)
    x0, y0 = max(0, int(cx) - half), max(0, int(cy) - half)
    yield "close-up", rgb[y0:int(cy) + half, x0:int(cx) + half], cx - x0, cy - y0, side
    canvas = cv2.resize(scene, (width * 2, height * 2))
    third = cv2.resize(rgb, (round(width / 3), round(height / 3)), interpolation=cv2.INTER_AREA)
    ox, oy = width // 2, height // 2
    canvas[oy:oy + third.shape[0], ox:ox + third.shape[1]] = third
    yield "a third of the size, in a Kodak scene", canvas, ox + cx / 3, oy + cy / 3, side / 3


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="head-locator")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    kodak = list_images(KODAK)
    scene = load_rgb(kodak[4])
    hits: dict[str, list[bool]] = {}
    for name, (cx, cy, side) in MARKED.items():
        for case, image, x, y, s in views(load_rgb(EVAL / name), cx, cy, side, scene):
            hits.setdefault(case, []).append(found(locate_head(image, args.model), x, y, s))
    for case, row in hits.items():
        print(f"{case:40} {sum(row)} of {len(row)} heads found")
    false = sum(locate_head(load_rgb(p), args.model) is not None for p in kodak)
    print(f"{'Kodak photos (no animals), a head reported':40} {false} of {len(kodak)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
