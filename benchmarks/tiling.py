"""Tiled vs untiled inference: speed, and the error tiling leaves at the seams.

Runs a randomly initialised SRResNet ×4 (the shipped super-resolution architecture; random weights have the same
receptive field and cost as trained ones) on a photo-like image, untiled and with several tile sizes and overlaps.
Prints seconds per run, the ratio to untiled, and the largest and mean absolute difference to the untiled output
(0-255 scale) away from the image border. First it prints the automatic layout's cost: input pixels computed over
the image's pixels for 512², 1000² and 2000² photos, for the even layout the engine uses and for the layout it
replaced (full tiles from the top/left edge, the last pushed back to fit).

    python benchmarks/tiling.py [--size 256] [--blocks 16] [--channels 64] [--layout-only]
"""
from __future__ import annotations

import argparse
import time

import torch

from ganstudio.engine import run_tiled
from ganstudio.engine.tiling import DEFAULT_OVERLAP, computed_ratio
from ganstudio.models.arch import build_arch


def edge_layout_ratio(side: int, tile: int, overlap: int) -> float:
    """The replaced layout's computed-to-image ratio for a square of ``side``: full tiles every ``tile - overlap``
    pixels from the edge and one last full tile pushed back to end at the border."""
    count = 1 if side <= tile else len(range(0, side - tile, max(tile - overlap, 1))) + 1
    size = min(side, tile)
    return (count * size / side) ** 2


def print_layouts(tile: int = 512, overlap: int = DEFAULT_OVERLAP) -> None:
    print(f"automatic layout, {tile} px tiles, overlap {overlap}: input pixels computed / image pixels")
    print(f"{'image':<12} {'edge layout':>12} {'even layout':>12}")
    for side in (512, 1000, 2000, 4000):
        print(f"{f'{side}²':<12} {edge_layout_ratio(side, tile, overlap):11.2f}x "
              f"{computed_ratio(side, side, tile, overlap):11.2f}x")
    print()


def photo_like(size: int) -> torch.Tensor:
    torch.manual_seed(0)
    coarse = torch.rand(1, 3, size // 16, size // 16)
    image = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    return (image + 0.05 * torch.randn_like(image)).clamp(0, 1)


def timed(fn) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--blocks", type=int, default=16)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--layout-only", action="store_true", help="print the layout table and stop")
    args = parser.parse_args()
    print_layouts()
    if args.layout_only:
        return

    torch.manual_seed(0)
    model = build_arch("srresnet", {"num_blocks": args.blocks, "channels": args.channels, "scale": 4}).eval()
    model = model.to(memory_format=torch.channels_last)
    image = photo_like(args.size)
    border = 16 * 4

    def run(tile: int, overlap: int = 32) -> torch.Tensor:
        return run_tiled(model, image, scale=4, tile=tile, overlap=overlap)

    run(64)  # warm-up: first-call allocations
    base_time, base = timed(lambda: run(args.size * 2))
    print(f"SRResNet {args.blocks}x{args.channels} x4, {args.size}x{args.size} -> {args.size * 4}x{args.size * 4}, "
          f"CPU threads {torch.get_num_threads()}")
    print(f"{'tiles':<22} {'seconds':>8} {'vs untiled':>11} {'max err':>9} {'mean err':>9}")
    print(f"{'untiled':<22} {base_time:8.2f} {1.0:10.2f}x {0.0:9.3f} {0.0:9.4f}")
    inner = (..., slice(border, -border), slice(border, -border))
    for tile, overlap in ((128, 16), (128, 32), (128, 64), (96, 32), (64, 32)):
        seconds, out = timed(lambda: run(tile, overlap))
        diff = (out - base)[inner].abs() * 255
        print(f"{f'{tile} px, overlap {overlap}':<22} {seconds:8.2f} {seconds / base_time:10.2f}x "
              f"{diff.max().item():9.3f} {diff.mean().item():9.4f}")


if __name__ == "__main__":
    main()
