"""Colourisation quality: how close the colours of a grey photo come to the photo's own, and how colourful they are.

Every photo is made grey (its CIE L*, as an RGB grey) and coloured back by each method through the Colourise tool
itself (working size, colour enlarged to the photo, lightness kept), as a user gets it. Against the original colour
photo: PSNR on RGB, LPIPS (AlexNet; lower is closer) and the colourfulness of Hasler & Süsstrunk (2003) as a share
of the original's. Methods:

- ``grey``: the grey photo itself (what a colouriser must beat);
- ``lut``: a baseline without a network: each lightness level gets the mean a*b* that level has in the training
  photos (``../shared/data/photos``, a seeded sample), which is about what an L1-trained model falls back to;
- every ``colorize`` model of the registry, and any ``--weights`` file.

Sets: ``kodak`` (``../shared/eval/photos``, clean), and out of distribution: ``old`` (the Kodak photos made to look
like old prints: faded contrast, film grain, softness, a JPEG of the scan), ``set14+5`` (the Set14 and Set5 photos
of ``../shared/eval/sr``: other sources, faces, a comic, a slide; not BSD100, whose photos are among the training
ones) and ``cats`` (cats filling the frame, from
``../shared/eval/cat2dog``). Speed: the median of three runs of the tool on a 1024 px photo after a warm-up.

    python benchmarks/colorize_quality.py --threads 2 [--weights run/best.safetensors] [--sheet /tmp/sheets]

Never train or tune on this data (../shared/eval).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from ganstudio.imaging.color import lab_to_rgb, rgb_to_lab
from ganstudio.models import get_registry
from ganstudio.models.registry import descriptor_from_card
from ganstudio.tools import get_tool
from ganstudio.tools.colorize import ColorizeParams
from ganstudio.train.lpips import LPIPS

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SEED = 2026


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003): spread and mean of the opponent channels rg and yb, on 8-bit RGB."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean()))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def grey_of(rgb: np.ndarray) -> np.ndarray:
    """The photo's L* as an RGB grey: what a black-and-white print of it shows."""
    lab = rgb_to_lab(rgb.astype(np.float32) / 255)
    lab[..., 1:] = 0
    return np.rint(lab_to_rgb(lab) * 255).astype(np.uint8)


def make_old(rgb: np.ndarray, seed: int) -> np.ndarray:
    """A grey photo as an old print looks scanned: faded (blacks lifted, whites dimmed), grain, softness, JPEG."""
    rng = np.random.default_rng([SEED, seed])
    grey = grey_of(rgb).astype(np.float32)
    faded = 40 + grey * (190 - 40) / 255
    grain = cv2.GaussianBlur(rng.normal(0, 9, grey.shape[:2]).astype(np.float32), (0, 0), 0.8)
    soft = cv2.GaussianBlur(faded + grain[..., None], (0, 0), 1.0)
    encoded = cv2.imencode(".jpg", np.clip(soft, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 60])[1]
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)  # grey in all three channels


def lightness_lut(photos: Path, count: int = 200) -> np.ndarray:
    """101 x 2: the mean a*b* of each whole L* level over a seeded sample of the training photos."""
    paths = sorted(photos.glob("*"))
    rng = np.random.default_rng(SEED)
    sums, counts = np.zeros((101, 2)), np.zeros(101)
    for path in rng.choice(paths, size=min(count, len(paths)), replace=False):
        with Image.open(path) as image:
            image.thumbnail((256, 256))
            lab = rgb_to_lab(np.asarray(image.convert("RGB"), np.float32) / 255).reshape(-1, 3)
        levels = np.clip(np.rint(lab[:, 0]), 0, 100).astype(int)
        np.add.at(sums, levels, lab[:, 1:])
        np.add.at(counts, levels, 1)
    return sums / np.maximum(counts, 1)[:, None]


def colour_by_lut(grey: np.ndarray, lut: np.ndarray) -> np.ndarray:
    lab = rgb_to_lab(grey.astype(np.float32) / 255)
    lab[..., 1:] = lut[np.clip(np.rint(lab[..., 0]), 0, 100).astype(int)]
    return np.rint(lab_to_rgb(lab) * 255).astype(np.uint8)


def load_sets(limit: int) -> dict[str, list[tuple[str, np.ndarray, np.ndarray]]]:
    """Set name -> (photo name, grey input, colour original)."""
    def read(path: Path) -> np.ndarray:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))

    kodak = [(p.stem, read(p)) for p in sorted((SHARED / "eval" / "photos").glob("*.png"))][:limit]
    # not BSD100: its photos are in BSDS500, which the training photos include
    others = (sorted((SHARED / "eval" / "sr" / "Set14" / "HR").glob("*")) +
              sorted((SHARED / "eval" / "sr" / "Set5" / "HR").glob("*")))[:limit]
    cats = sorted((SHARED / "eval" / "cat2dog" / "cats").glob("*"))[:limit]
    def coloured(items: list[tuple[str, np.ndarray, np.ndarray]]) -> list[tuple[str, np.ndarray, np.ndarray]]:
        # a grey original (Set14 has one) has nothing to colour and no colourfulness to compare with
        return [item for item in items if colourfulness(item[2]) >= 1.0]

    sets = {"kodak": [(name, grey_of(rgb), rgb) for name, rgb in kodak],
            "old": [(name, make_old(rgb, i), rgb) for i, (name, rgb) in enumerate(kodak)],
            "set14+5": [(p.stem, grey_of(read(p)), read(p)) for p in others],
            "cats": [(p.stem, grey_of(read(p)), read(p)) for p in cats]}
    return {name: coloured(items) for name, items in sets.items() if coloured(items)}


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1).float().div(255)[None]


def seconds_per_1024(model: str, photo: np.ndarray) -> float:
    height, width = photo.shape[:2]
    factor = 1024 / max(height, width)
    image = cv2.resize(grey_of(photo), (round(width * factor), round(height * factor)), interpolation=cv2.INTER_CUBIC)
    tool = get_tool("colorize")
    tool.run(image, ColorizeParams(model=model))
    times = []
    for _ in range(3):
        start = time.perf_counter()
        tool.run(image, ColorizeParams(model=model))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", type=Path, action="append", default=[],
                        help="a colorize .safetensors (card beside it) to measure too; repeatable")
    parser.add_argument("--only-weights", action="store_true", help="skip the registry's own colorize models")
    parser.add_argument("--limit", type=int, default=24, help="photos per set")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--sheet", type=Path, help="write grey | method... | original sheets here, one per set")
    parser.add_argument("--json", type=Path, help="write the figures as JSON")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    registry = get_registry()
    extra = []
    for path in args.weights:
        descriptor = descriptor_from_card(path.with_suffix(".json"), "user")
        registry.register(descriptor)
        extra.append(descriptor.name)
    models = extra + ([] if args.only_weights else
                      [m.name for m in registry.for_task("colorize") if m.name not in extra and not m.is_classic])
    lut = lightness_lut(SHARED / "data" / "photos")
    lpips = LPIPS()
    tool = get_tool("colorize")
    methods = ["grey", "lut", *models]
    figures: dict[str, dict[str, dict[str, float]]] = {}
    for set_name, items in load_sets(args.limit).items():
        scores: dict[str, list[tuple[float, float, float]]] = {m: [] for m in methods}
        sheet_rows = []
        for name, grey, original in items:
            results = {"grey": grey, "lut": colour_by_lut(grey, lut)}
            for model in models:
                results[model] = tool.run(grey, ColorizeParams(model=model))
            target_colour = colourfulness(original)
            for method, result in results.items():
                with torch.no_grad():
                    distance = lpips(_tensor(result), _tensor(original)).item()
                scores[method].append((psnr(result, original), distance,
                                       colourfulness(result) / max(target_colour, 1e-6)))
            if args.sheet and len(sheet_rows) < 6:
                row = [cv2.resize(results[m], (192, round(192 * grey.shape[0] / grey.shape[1])))
                       for m in methods] + [cv2.resize(original, (192, round(192 * grey.shape[0] / grey.shape[1])))]
                sheet_rows.append(np.concatenate(row, axis=1))
        figures[set_name] = {}
        grey_lpips = [s[1] for s in scores["grey"]]
        print(f"\n{set_name} ({len(items)} photos)    PSNR dB   LPIPS   colourfulness/original   LPIPS < grey's")
        for method in methods:
            values = scores[method]
            row = {"psnr": round(statistics.mean(v[0] for v in values), 2),
                   "lpips": round(statistics.mean(v[1] for v in values), 4),
                   "colourfulness_share": round(statistics.mean(v[2] for v in values), 3),
                   "lpips_below_grey": sum(v[1] < g for v, g in zip(values, grey_lpips))}
            figures[set_name][method] = row
            print(f"  {method:<22} {row['psnr']:>7.2f}  {row['lpips']:.4f}   {row['colourfulness_share']:>8.3f}"
                  f"              {row['lpips_below_grey']}/{len(values)}")
        if args.sheet and sheet_rows:
            args.sheet.mkdir(parents=True, exist_ok=True)
            width = max(r.shape[1] for r in sheet_rows)
            sheet = np.concatenate([np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0))) for r in sheet_rows])
            Image.fromarray(sheet).save(args.sheet / f"{set_name}.png")
    if models:
        kodak = load_sets(1)["kodak"][0][2]
        print("\nspeed, 1024 px photo:")
        figures["speed_s_per_1024px"] = {}
        for model in models:
            seconds = seconds_per_1024(model, kodak)
            figures["speed_s_per_1024px"][model] = round(seconds, 3)
            print(f"  {model:<22} {seconds:.3f} s")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
