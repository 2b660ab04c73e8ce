"""PSNR / SSIM of ×4 super-resolution on Set5, Set14 and BSD100, measured as the SRGAN paper reports them.

Y channel of MATLAB's rgb2ycbcr, ``scale`` pixels of border cropped, outputs rounded to 8 bits. Bicubic is
Pillow's bicubic upscale of the LR image. Models are given as ``.safetensors`` (model card beside it) or as a
training checkpoint ``.pt`` of our own run folder (never a downloaded one: it is a pickle).

    python benchmarks/superres_quality.py --model pretrained/srresnet-x4.safetensors --sets Set5 Set14
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

from ganstudio.models.arch import build_arch
from ganstudio.train.checkpoint import load_checkpoint
from ganstudio.train.metrics import psnr_y, ssim_y

Upscaler = Callable[[Image.Image], torch.Tensor]

REPO = Path(__file__).resolve().parents[1]
DEFAULT_EVAL = REPO.parent / "shared" / "eval" / "sr"
SCALE = 4


@dataclass
class Score:
    psnr: float
    ssim: float
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


def evaluate(folder: Path, upscale: Upscaler) -> Score:
    psnrs, ssims, seconds = [], [], 0.0
    for hr_path in sorted((folder / "HR").glob("*.png")):
        hr = Image.open(hr_path)
        lr = Image.open(folder / f"LR_x{SCALE}" / hr_path.name)
        started = time.perf_counter()
        sr = upscale(lr)
        seconds += time.perf_counter() - started
        hr_t = _tensor(hr)
        psnrs.append(psnr_y(sr, hr_t, border=SCALE))
        ssims.append(ssim_y(sr, hr_t, border=SCALE))
    return Score(float(np.mean(psnrs)), float(np.mean(ssims)), seconds)


def bicubic(lr: Image.Image) -> torch.Tensor:
    return _tensor(lr.convert("RGB").resize((lr.width * SCALE, lr.height * SCALE), Image.Resampling.BICUBIC))


def model_upscaler(model: nn.Module) -> Upscaler:
    @torch.no_grad()
    def upscale(lr: Image.Image) -> torch.Tensor:
        x = _tensor(lr)[None].contiguous(memory_format=torch.channels_last)
        return model(x)[0].clamp(0.0, 1.0)

    return upscale


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append", default=[], help=".safetensors or our run's .pt")
    parser.add_argument("--sets", nargs="+", default=["Set5", "Set14", "BSD100"])
    parser.add_argument("--eval-root", type=Path, default=DEFAULT_EVAL)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here, keyed by model then set")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    methods: dict[str, Upscaler] = {"bicubic": bicubic}
    for path in args.model:
        methods[path.name] = model_upscaler(load_model(path))

    results: dict[str, dict[str, dict[str, float]]] = {}
    print(f"{'method':32} " + " ".join(f"{s + ' PSNR/SSIM':>22}" for s in args.sets))
    for name, upscale in methods.items():
        results[name] = {}
        for set_name in args.sets:
            score = evaluate(args.eval_root / set_name, upscale)
            results[name][set_name] = {"psnr_y": round(score.psnr, 2), "ssim_y": round(score.ssim, 4),
                                       "seconds": round(score.seconds, 1)}
        row = " ".join(f"{results[name][s]['psnr_y']:>13.2f} / {results[name][s]['ssim_y']:.4f}" for s in args.sets)
        print(f"{name:32} {row}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
