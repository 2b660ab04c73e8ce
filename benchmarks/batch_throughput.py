"""Batch throughput: the pipelined BatchRunner (reader and writer threads around the device stage) against a naive
one-file-at-a-time loop (read, run the chain, write), both measured here in the same run on the same files.

Prints files/s for each, the ratio (goal: at least 1.3x on the 2-core CPU) and the device stage's busy share
(goal: over 90 % where a GPU is lent).

    python benchmarks/batch_throughput.py [--files 200] [--size 384] [--chain superres:model=lanczos,scale=2]
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ganstudio.batch import BatchOptions, BatchRunner, ChainStep, find_inputs, output_path
from ganstudio.engine import Runtime, describe_device
from ganstudio.imaging import read_image, write_image
from ganstudio.tools import get_tool


def make_photos(folder: Path, count: int, size: int) -> None:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size] / size
    for i in range(count):
        phase = rng.random(3) * 6
        image = np.stack([np.sin(6 * x + phase[c]) * np.cos(4 * y - phase[c]) for c in range(3)], axis=2)
        image = (image * 0.4 + 0.5 + rng.normal(0, 0.03, image.shape)).clip(0, 1)
        Image.fromarray((image * 255).astype(np.uint8)).save(folder / f"photo{i:04d}.jpg", quality=90)


def naive(options: BatchOptions, runtime: Runtime) -> float:
    steps = [(get_tool(s.tool), s.build_params()) for s in options.chain]
    start = time.perf_counter()
    for source in find_inputs(options):
        image = read_image(source)
        pixels = image.pixels
        for spec, params in steps:
            pixels = spec.run(pixels, params, runtime=runtime)
        write_image(output_path(options, source), pixels, image.meta, quality=options.quality, overwrite=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--chain", action="append", help="as for `ganstudio batch` (repeatable)")
    parser.add_argument("--format", default="png")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    chain = [ChainStep.parse(c) for c in (args.chain or ["superres:model=lanczos,scale=2"])]
    runtime = Runtime(device=args.device)

    work = Path(tempfile.mkdtemp(prefix="ganstudio-batch-bench-"))
    try:
        (work / "in").mkdir()
        make_photos(work / "in", args.files, args.size)
        naive_opts = BatchOptions(work / "in", work / "naive", chain, format=args.format)
        piped_opts = BatchOptions(work / "in", work / "piped", chain, format=args.format)
        for folder in (work / "naive", work / "piped"):
            folder.mkdir()
        # warm-up: loads models into the cache and pages in the codecs for both contestants alike
        warm = BatchOptions(work / "in", work / "warm", chain, format=args.format, patterns=("photo0000.*",))
        (work / "warm").mkdir()
        BatchRunner(warm, runtime).run()

        naive_s = naive(naive_opts, runtime)
        report = BatchRunner(piped_opts, runtime).run()
        assert report.ok, [f for f in report.files if f.status != "done"]
        piped_s = report.elapsed_s
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"{args.files} photos {args.size}x{args.size} JPEG -> {args.format.upper()}, chain "
          f"{' | '.join(map(str, chain))}, device {describe_device(args.device)}")
    print(f"naive loop   {args.files / naive_s:7.2f} files/s  ({naive_s:.1f} s)")
    print(f"pipelined    {args.files / piped_s:7.2f} files/s  ({piped_s:.1f} s)")
    print(f"speed-up     {naive_s / piped_s:7.2f}x   (goal >= 1.3x on the 2-core CPU)")
    print(f"device busy  {report.device_busy:7.1%}   (goal > 90 % on a GPU)")


if __name__ == "__main__":
    main()
