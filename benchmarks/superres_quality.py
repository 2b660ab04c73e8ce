"""PSNR / SSIM / LPIPS of super-resolution on Set5, Set14 and BSD100, measured as the SRGAN paper reports them.

PSNR and SSIM: Y channel of MATLAB's rgb2ycbcr, ``scale`` pixels of border cropped, outputs rounded to 8 bits.
LPIPS (AlexNet, ``../shared/weights/lpips_alexnet.npz``; lower is closer): on the whole RGB image, same border
cropped, outputs rounded to 8 bits. Bicubic is Pillow's bicubic upscale of the LR image. ×4 uses the sets'
``LR_x4``; ×2 uses ``LR_x2`` where a set has it, else makes it from HR with Pillow's antialiased bicubic (the same
downscale the training data uses, close to MATLAB's ``imresize``). Models are given as ``.safetensors`` (model
card beside it) or as a training checkpoint ``.pt`` of our own run folder (never a downloaded one: it is a pickle).

    python benchmarks/superres_quality.py --model pretrained/srresnet-x4.safetensors --sets Set5 Set14
    python benchmarks/superres_quality.py --scale 2 --model pretrained/srresnet-x2.safetensors
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


def evaluate(folder: Path, upscale: Upscaler, scale: int, lpips: LPIPS | None) -> Score:
    psnrs, ssims, distances, seconds = [], [], [], 0.0
    for hr_path in sorted((folder / "HR").glob("*.png")):
        lr, hr = load_pair(folder, hr_path, scale)
        started = time.perf_counter()
        sr = upscale(lr, scale)
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
                 seconds)


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
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
