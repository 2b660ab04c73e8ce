"""PSNR / SSIM / LPIPS of inpainting on held-out photos, with a fixed, seeded set of masks in three size buckets.

Every model runs through the inpaint tool itself (crop, working size, paste-back, colour match), as a user gets it.
Masks come from the training mask generator (strokes and boxes) with bucket-specific area limits and a seed per
(bucket, image), so every run and every model sees the same holes. PSNR is on RGB over the whole image, SSIM on
the Y channel (Wang et al. window), LPIPS is the AlexNet variant; outputs are rounded to 8 bits first. Speed is the
median time of the tool on a 512×512 photo with a medium mask, after one warm-up run. The learned models run
with no feather (``--feather``): the pixels under a benchmark mask are the ground truth, and a feather fades them
back in at the hole's edge, which would flatter the learned models against OpenCV's, which have none.

    nice -n 10 python benchmarks/inpaint_quality.py                       # the registry's inpaint models
    python benchmarks/inpaint_quality.py --weights pretrained/inpaint-gan.safetensors --json metrics.json

Never train or tune on this data (../shared/eval).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from ganstudio.models import get_registry
from ganstudio.models.registry import descriptor_from_card
from ganstudio.tools import get_tool
from ganstudio.tools.inpaint import InpaintParams
from ganstudio.train.masks import random_mask
from ganstudio.train.lpips import LPIPS
from ganstudio.train.metrics import ssim_y

REPO = Path(__file__).resolve().parents[1]
DEFAULT_EVAL = REPO.parent / "shared" / "eval" / "photos"
BUCKETS = {"small": (0.05, 0.10), "medium": (0.10, 0.25), "large": (0.25, 0.45)}
SEED = 2024


def masks_for(image_index: int, height: int, width: int) -> dict[str, np.ndarray]:
    return {name: random_mask(height, width, np.random.default_rng([SEED, bucket, image_index]), low, high)
            for bucket, (name, (low, high)) in enumerate(BUCKETS.items())}


def _tensor(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(pixels)).permute(2, 0, 1).float().div(255.0)


def psnr_rgb(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def seconds_per_512(model: str, photo: np.ndarray) -> float:
    image = cv2.resize(photo, (512, 512), interpolation=cv2.INTER_CUBIC)
    mask = random_mask(512, 512, np.random.default_rng([SEED, 99]), 0.10, 0.25)
    run = get_tool("inpaint").run
    run(image, InpaintParams(model=model), mask=mask)  # loads the model and warms the allocator
    times = []
    for _ in range(3):
        started = time.perf_counter()
        run(image, InpaintParams(model=model), mask=mask)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], help="registry name (default: every inpaint model)")
    parser.add_argument("--weights", type=Path, action="append", default=[],
                        help="a .safetensors with its model card beside it, added to the registry for this run")
    parser.add_argument("--eval-root", type=Path, default=DEFAULT_EVAL)
    parser.add_argument("--limit", type=int, default=0, help="only the first N photos (quick checks)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here, keyed by model then bucket")
    parser.add_argument("--feather", type=int, default=0,
                        help="the learned models' feather (default 0: under the masks lies the ground truth, which a "
                             "feather would fade back in at the hole's edge; the tool's own default is 4)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    registry = get_registry()
    for path in args.weights:
        registry.register(descriptor_from_card(path.with_suffix(".json"), "user"))
    names = args.model or [m.name for m in registry.for_task("inpaint")]
    paths = sorted(args.eval_root.glob("*.png"))[: args.limit or None]
    if not paths:
        raise SystemExit(f"no PNG photos in {args.eval_root}")
    photos = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    lpips = LPIPS()

    results: dict[str, dict[str, dict[str, float]]] = {}
    header = " ".join(f"{b + ' PSNR/SSIM/LPIPS':>26}" for b in BUCKETS)
    print(f"{len(photos)} photos from {args.eval_root}")
    print(f"{'model':16} {header} {'s/512²':>8}")
    for name in names:
        scores: dict[str, list[tuple[float, float, float]]] = {b: [] for b in BUCKETS}
        for index, photo in enumerate(photos):
            for bucket, mask in masks_for(index, *photo.shape[:2]).items():
                out = get_tool("inpaint").run(photo, InpaintParams(model=name, feather=args.feather), mask=mask)
                truth, result = _tensor(photo), _tensor(out)
                with torch.no_grad():
                    distance = lpips(result[None], truth[None]).item()
                scores[bucket].append((psnr_rgb(out, photo), ssim_y(result, truth, border=0), distance))
        results[name] = {b: {"psnr": round(float(np.mean([s[0] for s in v])), 2),
                             "ssim_y": round(float(np.mean([s[1] for s in v])), 4),
                             "lpips": round(float(np.mean([s[2] for s in v])), 4)} for b, v in scores.items()}
        results[name]["seconds_per_512"] = round(seconds_per_512(name, photos[0]), 3)  # type: ignore[assignment]
        row = " ".join(f"{r['psnr']:>10.2f} / {r['ssim_y']:.4f} / {r['lpips']:.4f}"
                       for b, r in results[name].items() if b in BUCKETS)
        print(f"{name:16} {row} {results[name]['seconds_per_512']:>8.3f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
