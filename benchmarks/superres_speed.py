"""Super-resolution speed: seconds per output megapixel for a 512x512 -> 2048x2048 upscale through the app's own
path (tool -> engine tiling), on the CPU and, where CUDA is present, on the GPU in fp32 and fp16; plus peak memory.
Bicubic is measured in the same run as the baseline. Goal on a 2-core CPU: under 4 s per output megapixel for
srresnet-x4.

    python benchmarks/superres_speed.py [--model srresnet-x4] [--size 512] [--repeats 2]
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from ganstudio.engine import Runtime, describe_device
from ganstudio.tools.superres import SuperResParams, run


def photo(size: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size] / size
    image = np.stack([np.sin(9 * x + c) * np.cos(7 * y - c) for c in range(3)], axis=2) * 0.4 + 0.5
    return ((image + rng.normal(0, 0.02, image.shape)).clip(0, 1) * 255).astype(np.uint8)


def measure(image: np.ndarray, params: SuperResParams, runtime: Runtime, repeats: int) -> float:
    run(image, params, runtime=runtime)  # warm-up: loads the model, first allocations
    if runtime.device == "cuda":
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run(image, params, runtime=runtime)
        if runtime.device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="srresnet-x4")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--tile", type=int, default=0, help="0: the engine's automatic tile size")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    image = photo(args.size)
    megapixels = (args.size * 4) ** 2 / 1e6
    settings = [("cpu", "fp32")]
    if torch.cuda.is_available():
        settings += [("cuda", "fp32"), ("cuda", "fp16")]
    print(f"{args.size}x{args.size} -> {args.size * 4}x{args.size * 4} ({megapixels:.1f} MP out), best of "
          f"{args.repeats}, tile {args.tile or 'auto'}")
    print(f"{'model':<14} {'device':<34} {'precision':<9} {'seconds':>8} {'s / MP':>8} {'peak MB':>8}")
    for device, precision in settings:
        runtime = Runtime(device=device, precision=precision, tile=args.tile)
        for model in ("bicubic", args.model):
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            seconds = measure(image, SuperResParams(model=model, scale=4), runtime, args.repeats)
            if device == "cuda":
                peak = torch.cuda.max_memory_allocated() / 2**20
            else:
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process high-water mark
            print(f"{model:<14} {describe_device(device):<34} {precision:<9} {seconds:8.2f} "
                  f"{seconds / megapixels:8.2f} {peak:8.0f}")


if __name__ == "__main__":
    main()
