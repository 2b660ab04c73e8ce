"""Training throughput at 1 and N processes (``torchrun``, :mod:`ganstudio.train.engine`), as ratios.

    python benchmarks/train_scaling.py [--kind superres|dcgan|inpaint] [--processes 1 2] [--steps 30]

Each run is the real command line (``ganstudio train KIND``, under ``torch.distributed.run`` above one process) on
a generated folder, with the machine's cores shared out: one process gets all the threads, N processes a share
each. Steps per second are the medians of the step events after the first few (start-up and the first epoch's
allocations left out). Images per second count every process's batch, so on N GPUs the ideal ratio is N; on a
CPU whose cores one process already uses, a ratio near or below 1 is the cost of the gradient all-reduce.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent

#: Per kind: its data flag and a small model at a size a CPU steps through in well under a second.
KINDS = {
    "superres": ("--data", ["--blocks", "8", "--channels", "32", "--crop", "64", "--batch", "8", "--val-images", "0"]),
    "dcgan": ("--data", ["--size", "32", "--ngf", "32", "--ndf", "32", "--batch", "16"]),
    "inpaint": ("--data", ["--channels", "16", "--crop", "96", "--batch", "4", "--val-images", "0",
                           "--adv-start", "0", "--precision", "fp32"]),
}


def write_photos(folder: Path, count: int = 24, side: int = 160) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        base = rng.integers(0, 256, (side // 16, side // 16, 3), dtype=np.uint8)
        pixels = np.kron(base, np.ones((16, 16, 1), np.uint8)) // 2 + rng.integers(0, 128, (side, side, 3),
                                                                                    dtype=np.uint8)
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{index:03d}.png")
    return folder


def run(kind: str, processes: int, steps: int, threads: int, work: Path) -> dict[str, float]:
    data_flag, args = KINDS[kind]
    out = work / f"{kind}-{processes}"
    command = [sys.executable, "-m", *(["torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                                        "-m"] if processes > 1 else []),
               "ganstudio", "train", kind, data_flag, str(work / "photos"), "--out", str(out), *args,
               "--steps", str(steps), "--threads", str(threads), "--log-every", "1", "--sample-every", "0",
               "--checkpoint-every", str(10**9), "--keep-checkpoints", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0:
        raise RuntimeError(f"{kind} at {processes} processes failed:\n{done.stderr[-2000:]}")
    rates = [e["it_per_s"] for e in events if e["event"] == "step" and e["step"] > 5]
    batch = int(args[args.index("--batch") + 1])
    steps_per_s = statistics.median(rates)
    return {"steps_per_s": steps_per_s, "images_per_s": steps_per_s * batch * processes}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=sorted(KINDS), default="superres")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="CPU threads shared out")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ganstudio-scaling-") as folder:
        work = Path(folder)
        write_photos(work / "photos")
        results = {n: run(args.kind, n, args.steps, max(1, args.cores // n), work) for n in args.processes}
    base = results[args.processes[0]]
    print(f"{args.kind}: {args.steps} steps, {args.cores} CPU threads shared out, device auto")
    print(f"{'processes':>9}  {'steps/s':>8}  {'images/s':>9}  {'ratio (images/s)':>16}")
    for n, result in results.items():
        print(f"{n:>9}  {result['steps_per_s']:>8.2f}  {result['images_per_s']:>9.1f}  "
              f"{result['images_per_s'] / base['images_per_s']:>16.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
