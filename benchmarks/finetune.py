"""Fine-tuning ``srresnet-x4`` on one kind of picture, and what the training wizard's child process costs.

(a) Quality: fine-tunes ``pretrained/srresnet-x4`` for ``--minutes`` on a folder of one kind of picture (default
    ``../shared/data/people/photos``, full-body fashion photos) with the wizard's fine-tuning settings, keeping
    ``--held-out`` of them out of training, and prints PSNR-Y on those (×4; MATLAB-style bicubic LR, Y of
    rgb2ycbcr, 4 px border, 8-bit outputs) for bicubic, the shipped model and the fine-tuned one. The step count is
    sized from a measured step so the learning-rate schedule spans the time given.
(b) Overhead: steps/s of the bare loop (``ganstudio.train.superres.train`` in this process, events to a null
    stream, no validation, sample grids or checkpoints until the end) against the child process the wizard starts
    (``python -m ganstudio train superres`` with the wizard's own arguments: events on a pipe, validation and sample
    grids ten times a run, twenty checkpoints), the same number of steps. Both rates are measured from the first
    ``step`` event to the ``done`` event, past each process's warm-up; the child's start-up (Python, torch,
    decoding the folder) is printed apart.
    Goal: under 5 % slower.

    python benchmarks/finetune.py --json finetune.json    # 5 min, then 2 x 300 steps (~15 min on 2 cores)
    python benchmarks/finetune.py --minutes 0.3 --overhead-steps 6 --held-out 3     # a smoke run
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

from ganstudio.models.arch import build_arch
from ganstudio.train import checkpoint as ckpt
from ganstudio.train import superres
from ganstudio.train.cli import add_train_parser
from ganstudio.train.common import split_validation
from ganstudio.train.data import SRCropDataset, bicubic_downscale, list_images, load_rgb, to_tensor
from ganstudio.train.events import EventWriter
from ganstudio.train.metrics import psnr_y
from ganstudio.train.recipes import RECIPES, Machine, checkpoint_every

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "people" / "photos"
BASE = REPO / "pretrained" / "srresnet-x4.safetensors"
SCALE = 4
RECIPE = RECIPES["superres"]


# ------------------------------------------------------------------------------------------------ the recipe

def wizard_config(data: Path, run_dir: Path, steps: int, usable: int, threads: int) -> tuple[list[str],
                                                                                            superres.SuperResConfig]:
    """The arguments the wizard gives a fine-tune of ``steps`` steps (balanced preset, from the shipped model), and
    the config the loop makes of them."""
    settings = replace(RECIPE.preset("balanced", Machine.detect(), from_base=True), steps=steps,
                       checkpoint_every=checkpoint_every(steps))
    args = RECIPE.build_spec([data], settings, True, run_dir, usable, []).args
    args[args.index("--threads") + 1] = str(threads)
    parser = argparse.ArgumentParser()
    add_train_parser(parser.add_subparsers(dest="command"))
    parsed = parser.parse_args(["train", "superres", *args])
    fields = superres.SuperResConfig.__dataclass_fields__
    return args, superres.SuperResConfig(**{name: getattr(parsed, name) for name in fields})


def linked_folder(paths: list[Path], folder: Path) -> Path:
    """A folder of links to ``paths``: the training loops take a folder, and the held-out pictures stay out."""
    folder.mkdir(parents=True)
    for index, path in enumerate(paths):
        (folder / f"{index:05d}{path.suffix.lower()}").symlink_to(path.resolve())
    return folder


# ------------------------------------------------------------------------------------------------ (a) quality

def seconds_per_step(cfg: superres.SuperResConfig, images: list[np.ndarray], steps: int = 3) -> float:
    """One training step's time with this model, batch and crop (the first, warm-up step not counted)."""
    model = superres.build_model(cfg).to(memory_format=torch.channels_last)
    model.load_state_dict(load_file(cfg.init))
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    dataset = SRCropDataset(images, cfg.crop, cfg.scale)
    times = []
    for _ in range(steps + 1):
        lr, hr = (torch.stack(t) for t in zip(*(dataset[i % len(dataset)] for i in range(cfg.batch))))
        started = time.perf_counter()
        loss = F.l1_loss(model(lr.contiguous(memory_format=torch.channels_last)), hr)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    return float(np.median(times[1:]))


def held_out_pairs(paths: list[Path]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(LR, HR) of each held-out picture, whole, cut to a multiple of the scale."""
    pairs = []
    for path in paths:
        hr = load_rgb(path)
        hr = np.ascontiguousarray(hr[: hr.shape[0] // SCALE * SCALE, : hr.shape[1] // SCALE * SCALE])
        pairs.append((to_tensor(bicubic_downscale(hr, SCALE)), to_tensor(hr)))
    return pairs


def bicubic(lr: torch.Tensor) -> torch.Tensor:
    image = Image.fromarray(lr.mul(255).round().byte().permute(1, 2, 0).numpy())
    return to_tensor(np.array(image.resize((image.width * SCALE, image.height * SCALE), Image.Resampling.BICUBIC)))


@torch.no_grad()
def mean_psnr(upscale: Any, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    return float(np.mean([psnr_y(upscale(lr).clamp(0, 1), hr, border=SCALE) for lr, hr in pairs]))


def model_upscaler(model: nn.Module) -> Any:
    model = model.eval().to(memory_format=torch.channels_last)
    return lambda lr: model(lr[None].contiguous(memory_format=torch.channels_last))[0]


def quality(data: Path, data_paths: list[Path], held: list[Path], minutes: float, threads: int,
            work: Path) -> dict[str, Any]:
    train_dir = linked_folder(data_paths, work / "train")
    _, cfg = wizard_config(train_dir, work / "quality-run", 1, len(data_paths), threads)
    torch.set_num_threads(threads)
    sample = [load_rgb(p) for p in data_paths[:: max(1, len(data_paths) // 16)]]
    per_step = seconds_per_step(cfg, [s for s in sample if min(s.shape[:2]) >= cfg.crop])
    steps = max(1, int(minutes * 60 / per_step))
    # No validation of its own: the held-out pictures below are the measure, and never seen in training.
    cfg = replace(cfg, steps=steps, checkpoint_every=steps, val_images=0, sample_every=0, log_every=max(1, steps // 20))
    print(f"(a) fine-tuning {BASE.name} on {len(data_paths)} pictures of {data} for {minutes:g} min: {steps} steps "
          f"of {cfg.batch} x {cfg.crop} px crops at {per_step:.2f} s a step, lr {cfg.lr:g} (cosine)", flush=True)
    # The step count is an estimate on a machine that may be shared: stop at 1.5 x the time given in any case.
    timer = threading.Timer(minutes * 60 * 1.5, lambda: os.kill(os.getpid(), signal.SIGTERM))
    timer.start()
    started = time.perf_counter()
    with open(os.devnull, "w", encoding="utf-8") as null:
        superres.train(cfg, events=EventWriter(null))
    trained_s = time.perf_counter() - started
    timer.cancel()
    state = ckpt.load_latest(Path(cfg.out))

    pairs = held_out_pairs(held)
    card = json.loads(BASE.with_suffix(".json").read_text(encoding="utf-8"))
    shipped = build_arch(card["architecture"]["name"], card["architecture"]["params"])
    shipped.load_state_dict(load_file(str(BASE)), strict=True)
    tuned = superres.build_model(cfg)
    tuned.load_state_dict(state["model"], strict=True)
    scores = {"bicubic": mean_psnr(bicubic, pairs), "shipped": mean_psnr(model_upscaler(shipped), pairs),
              "fine_tuned": mean_psnr(model_upscaler(tuned), pairs)}
    return {"data": str(data), "train_images": len(data_paths), "held_out": len(held),
            "minutes_asked": minutes, "train_seconds": round(trained_s, 1), "steps": state["step"],
            "batch": cfg.batch, "crop": cfg.crop, "lr": cfg.lr, "psnr_y": {k: round(v, 3) for k, v in scores.items()},
            "gain_db": round(scores["fine_tuned"] - scores["shipped"], 3)}


# ----------------------------------------------------------------------------------------------- (b) overhead

class _EventClock:
    """A null stream for events that keeps only the first ``step`` record and the ``done`` one, for their times."""

    def __init__(self) -> None:
        self.kept: dict[str, dict[str, Any]] = {}

    def write(self, text: str) -> None:
        if text.startswith('{"event": "done"') or (text.startswith('{"event": "step"') and "step" not in self.kept):
            record = json.loads(text)
            self.kept[record["event"]] = record

    def flush(self) -> None:
        pass


def _rate(first_step: dict[str, Any], done: dict[str, Any]) -> float:
    return (done["step"] - first_step["step"]) / (done["time"] - first_step["time"])


def overhead(data_paths: list[Path], steps: int, threads: int, work: Path) -> dict[str, Any]:
    train_dir = work / "train" if (work / "train").is_dir() else linked_folder(data_paths, work / "train")
    args, wizard_cfg = wizard_config(train_dir, work / "child-run", steps, len(data_paths), threads)
    bare_cfg = replace(wizard_cfg, out=str(work / "bare-run"), val_images=0, sample_every=0, checkpoint_every=steps)
    print(f"(b) {steps} steps of {bare_cfg.batch} x {bare_cfg.crop} px, {threads} thread(s): bare loop, then the "
          f"wizard's child (validation and samples every {wizard_cfg.sample_every}, checkpoints every "
          f"{wizard_cfg.checkpoint_every} steps)", flush=True)
    clock = _EventClock()
    superres.train(bare_cfg, events=EventWriter(clock))  # type: ignore[arg-type]
    bare = _rate(clock.kept["step"], clock.kept["done"])

    launched = time.time()
    child = subprocess.run([sys.executable, "-m", "ganstudio", "train", "superres", *args], cwd=REPO,
                           capture_output=True, text=True, check=False)
    if child.returncode != 0:
        raise RuntimeError(f"the child failed ({child.returncode}): {child.stderr[-2000:]}")
    events = [json.loads(line) for line in child.stdout.splitlines() if line.startswith("{")]
    start = next(e for e in events if e["event"] == "start")
    done = next(e for e in events if e["event"] == "done")
    wizard = _rate(next(e for e in events if e["event"] == "step"), done)
    counts = {kind: sum(e["event"] == kind for e in events) for kind in ("step", "validation", "sample", "checkpoint")}
    return {"steps": steps, "batch": bare_cfg.batch, "crop": bare_cfg.crop, "threads": threads,
            "bare_steps_per_s": round(bare, 4), "wizard_steps_per_s": round(wizard, 4),
            "ratio": round(wizard / bare, 4), "slower_percent": round((1 - wizard / bare) * 100, 2),
            "child_startup_s": round(start["time"] - launched, 1), "child_events": counts,
            "wizard_args": args}


# -------------------------------------------------------------------------------------------------------- main

def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a folder of one kind of picture")
    parser.add_argument("--held-out", type=int, default=30, help="pictures kept out of training and measured")
    parser.add_argument("--minutes", type=float, default=5.0, help="fine-tuning time for (a)")
    parser.add_argument("--overhead-steps", type=int, help="steps of each run in (b) (default: the wizard's quick "
                                                           "preset, its shortest run: 300 on a CPU)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.overhead_steps is None:
        args.overhead_steps = RECIPE.preset("quick", Machine.detect(), from_base=True).steps

    data_paths, held = split_validation(list_images(args.data), args.held_out)
    if not held:
        parser.error(f"{args.data} has too few pictures to hold {args.held_out} out")
    results: dict[str, Any] = {"machine": Machine.detect().describe(), "torch": torch.__version__}
    with tempfile.TemporaryDirectory(prefix="finetune-") as work:
        if not args.skip_quality:
            results["quality"] = q = quality(args.data, data_paths, held, args.minutes, args.threads, Path(work))
            print(f"    PSNR-Y on {q['held_out']} held-out pictures after {q['steps']} steps "
                  f"({q['train_seconds']:.0f} s):")
            for name, value in q["psnr_y"].items():
                print(f"      {name:12} {value:7.2f} dB")
            print(f"    fine-tuned vs shipped: {q['gain_db']:+.2f} dB", flush=True)
        if not args.skip_overhead:
            results["overhead"] = o = overhead(data_paths, args.overhead_steps, args.threads, Path(work))
            print(f"    bare loop {o['bare_steps_per_s']:.3f} steps/s, wizard's child {o['wizard_steps_per_s']:.3f} "
                  f"steps/s: ratio {o['ratio']:.3f} ({o['slower_percent']:+.1f} % slower; goal < 5 %)")
            print(f"    child start-up before its first step: {o['child_startup_s']:.1f} s; events: "
                  f"{o['child_events']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
