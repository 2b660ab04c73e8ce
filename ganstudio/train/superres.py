"""SRResNet pixel-loss training: the first phase of SRGAN, and the "faithful" super-resolution model on its own.

A run lives in one folder (``--out``): ``checkpoints/`` (full training state, newest few), ``best.safetensors``
(the weights with the best validation PSNR so far), ``samples/`` (bicubic | output | ground truth grids) and
``config.json``. Progress goes to stdout as JSON lines (:mod:`ganstudio.train.events`).
"""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file
from torch.utils.data import DataLoader

from ganstudio.engine import resolve_device
from ganstudio.models.arch.srresnet import SRResNet
from ganstudio.train import checkpoint as ckpt
from ganstudio.train.common import (BEST_WEIGHTS, LossWindow, Precision, RunConfig, StopRequest, data_licence,
                                    load_weights_for_export, open_run, save_grid, split_validation)
from ganstudio.train.data import (AUGMENT_TEXT, SRCropDataset, SRValidationSet, check_augment, list_images,
                                  load_folder)
from ganstudio.train.events import EventWriter
from ganstudio.train.metrics import psnr_y



@dataclass
class SuperResConfig(RunConfig):
    data: str
    out: str
    scale: int = 4
    blocks: int = 16
    channels: int = 64
    bicubic_residual: bool = False
    crop: int = 96
    #: Of the training crops (:data:`ganstudio.train.data.AUGMENTS`): flips and quarter turns by default.
    augment: str = "dihedral"
    batch: int = 16
    steps: int = 100_000
    lr: float = 2e-4
    lr_schedule: str = "cosine"  # "cosine" (to lr_min at `steps`) or "step" (halved every `lr_step` steps)
    lr_min: float = 1e-6
    lr_step: int = 200_000
    warmup: int = 100
    threads: int = 2
    device: str = "auto"  # "auto" takes CUDA when present, so the same recipe runs on a lent GPU
    #: Autocast on CUDA (:class:`ganstudio.train.common.Precision`); the CPU always trains in fp32.
    precision: str = "fp32"
    seed: int = 0
    val_images: int = 16
    val_crop: int = 256
    val_every: int = 500
    sample_every: int = 500
    checkpoint_every: int = 1000
    log_every: int = 10
    keep_checkpoints: int = 3
    #: .safetensors weights of the same architecture to start a fresh run from (fine-tuning); ignored on resume.
    init: str = ""

    def __post_init__(self) -> None:
        self.require(("steps", "batch", "crop", "val_every", "checkpoint_every", "log_every", "keep_checkpoints"),
                     ("sample_every",))
        check_augment(self.augment)



# Fields that define what is being trained; on --resume they come from the checkpoint, and the rest (how long,
# how often, how many threads, where the data is) from the command line.
_RUN_DEFINING = ("scale", "blocks", "channels", "bicubic_residual", "crop", "augment", "batch", "lr", "lr_schedule",
                 "lr_min", "lr_step", "warmup", "seed", "val_images", "val_crop")


def lr_factor(step: int, cfg: SuperResConfig) -> float:
    """Multiplier of ``cfg.lr`` at ``step``; a pure function of the step so that a resumed run with a longer
    ``--steps`` simply stretches the schedule."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    if cfg.lr_schedule == "step":
        return 0.5 ** (step // cfg.lr_step)
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    floor = cfg.lr_min / cfg.lr
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_model(cfg: SuperResConfig) -> SRResNet:
    return SRResNet(cfg.blocks, cfg.channels, cfg.scale, cfg.bicubic_residual)


def arch_params(cfg: SuperResConfig) -> dict[str, Any]:
    return {"num_blocks": cfg.blocks, "channels": cfg.channels, "scale": cfg.scale,
            "bicubic_residual": cfg.bicubic_residual}


def bicubic_psnr(pairs: SRValidationSet, scale: int) -> float:
    """The validation PSNR a plain bicubic upscale gets: the floor any trained model must clear."""
    scores = [psnr_y(F.interpolate(lr[None], scale_factor=scale, mode="bicubic", align_corners=False)[0], hr, scale)
              for lr, hr in pairs]
    return float(np.mean(scores)) if scores else math.nan


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def validate(model: nn.Module, pairs: SRValidationSet, scale: int) -> float:
    model.eval()
    scores = []
    for lr, hr in pairs:
        sr = model(lr[None].to(_device_of(model), memory_format=torch.channels_last))[0].cpu()
        scores.append(psnr_y(sr, hr, border=scale))
    model.train()
    return float(np.mean(scores))


@torch.no_grad()
def save_sample_grid(model: nn.Module, pairs: SRValidationSet, scale: int, path: Path, rows: int = 4) -> Path:
    """Rows of bicubic | model | ground truth, for a person to judge what PSNR does not show."""
    model.eval()
    tiles = []
    for lr, hr in list(pairs)[:rows]:
        sr = model(lr[None].to(_device_of(model), memory_format=torch.channels_last))[0].cpu().clamp(0, 1)
        bicubic = F.interpolate(lr[None], scale_factor=scale, mode="bicubic", align_corners=False)[0].clamp(0, 1)
        tiles.append(torch.cat([bicubic, sr, hr], dim=2))
    model.train()
    width = max(t.shape[2] for t in tiles)
    grid = torch.cat([F.pad(t, (0, width - t.shape[2])) for t in tiles], dim=1)
    return save_grid(grid, path)


def train(cfg: SuperResConfig, resume: bool = False, events: EventWriter | None = None) -> int:
    """Train until ``cfg.steps`` or a stop signal; returns a process exit code."""
    events = events or EventWriter()
    cfg, state, run_dir = open_run(cfg, resume, events, _RUN_DEFINING)

    paths = list_images(Path(cfg.data))
    train_paths, val_paths = split_validation(paths, cfg.val_images)
    train_images, skipped = load_folder(train_paths, min_side=cfg.crop)
    val_images, val_skipped = load_folder(val_paths, min_side=cfg.scale * 8)
    for item in skipped + val_skipped:
        events.emit("warning", message=f"skipped {item.path}: {item.reason}")
    dataset = SRCropDataset(train_images, cfg.crop, cfg.scale, cfg.augment)
    val_pairs = SRValidationSet(val_images, cfg.val_crop, cfg.scale)
    loader = DataLoader(dataset, batch_size=cfg.batch, shuffle=True, drop_last=len(dataset) >= cfg.batch,
                        num_workers=0)

    device = resolve_device(cfg.device)
    model = build_model(cfg).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
    precision = Precision(cfg.precision, device, events)
    step, wall_time, best = 0, 0.0, {"psnr": -math.inf, "step": 0}
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        precision.load_state(state)
        step, wall_time, best = state["step"], state["wall_time_s"], state["best"]
        ckpt.set_rng_state(state["rng"])
    elif cfg.init:
        # strict: weights of another size or layout must fail here, not train a half-initialised model.
        model.load_state_dict(load_file(cfg.init), strict=True)
    # LambdaLR is rebuilt from the step rather than restored, so a resumed run may change --steps.
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg), last_epoch=step - 1)
    (run_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")

    events.emit("start", step=step, total=cfg.steps, train_images=len(train_images), val_images=len(val_images),
                skipped=len(skipped) + len(val_skipped), bicubic_psnr=bicubic_psnr(val_pairs, cfg.scale),
                params=sum(p.numel() for p in model.parameters()), device=str(device), precision=precision.name,
                config=asdict(cfg))

    saved_step = step

    def save() -> None:
        nonlocal saved_step
        payload = {"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                   "scheduler": scheduler.state_dict(), "rng": ckpt.rng_state(), "config": asdict(cfg),
                   "wall_time_s": wall_time, "best": best, **precision.state()}
        path = ckpt.save_checkpoint(run_dir, payload, keep=cfg.keep_checkpoints)
        saved_step = step
        events.emit("checkpoint", path=str(path), step=step)

    def run_validation() -> None:
        psnr = validate(model, val_pairs, cfg.scale)
        improved = psnr > best["psnr"]
        if improved:
            best.update(psnr=psnr, step=step)
            ckpt.save_weights(model, run_dir / BEST_WEIGHTS)
        events.emit("validation", step=step, psnr=psnr, best_psnr=best["psnr"], best_step=best["step"])

    model.train()
    log = LossWindow(events, cfg.log_every, cfg.steps)
    # Wall time covers validation, samples and checkpoints too, but not the pauses between sessions.
    last_tick = time.perf_counter()
    stopped = False
    with StopRequest() as stop:
        try:
            while step < cfg.steps and not stop.requested:
                for lr_batch, hr_batch in loader:
                    lr_batch = lr_batch.to(device, memory_format=torch.channels_last, non_blocking=True)
                    hr_batch = hr_batch.to(device, memory_format=torch.channels_last, non_blocking=True)
                    with precision.autocast():
                        loss = F.l1_loss(model(lr_batch), hr_batch)
                    optimizer.zero_grad(set_to_none=True)
                    precision.backward(loss)
                    precision.step(optimizer)
                    precision.update()
                    scheduler.step()
                    step += 1
                    loss_value = loss.item()
                    if not math.isfinite(loss_value):
                        events.error(f"loss became {loss_value} at step {step}; resume from the last checkpoint "
                                     "with a lower --lr")
                        return 1
                    log.add(step, {"l1": loss_value}, optimizer.param_groups[0]["lr"])
                    if val_pairs and (step % cfg.val_every == 0 or step == cfg.steps):
                        run_validation()
                    if val_pairs and cfg.sample_every and step % cfg.sample_every == 0:
                        path = save_sample_grid(model, val_pairs, cfg.scale, run_dir / "samples" / f"step_{step:08d}.png")
                        events.emit("sample", path=str(path), step=step)
                    if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                        save()
                    now = time.perf_counter()
                    wall_time += now - last_tick
                    last_tick = now
                    if step >= cfg.steps or stop.requested:
                        break
        except KeyboardInterrupt:
            stop.requested = True
        stopped = stop.requested
    if stopped and saved_step != step:
        save()
    events.emit("done", step=step, total=cfg.steps, stopped=stopped, wall_time_s=wall_time,
                best_psnr=best["psnr"], best_step=best["step"])
    return 0


def build_card(cfg: SuperResConfig, name: str, title: str, training: dict[str, Any],
               metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "title": title,
        "task": "superres",
        "scale": cfg.scale,
        "architecture": {"name": "srresnet", "params": arch_params(cfg)},
        "multiple_of": 1,
        "supports_half": True,
        "supports_bf16": True,
        "recipe": "training/superres/README.md",
        "data": {"folder": cfg.data, "licence": data_licence(cfg.data, cfg.init)},
        "training": {"loss": "L1", "optimizer": "Adam", "batch": cfg.batch, "hr_crop": cfg.crop,
                     "augment": AUGMENT_TEXT[cfg.augment], "lr": cfg.lr, "lr_schedule": cfg.lr_schedule, **training},
        "metrics": metrics or {},
    }


def export(run_dir: Path, weights_path: Path, name: str, title: str, machine: str, use_best: bool = True,
           metrics: dict[str, Any] | None = None) -> Path:
    """Write the run's best (or latest) weights as ``weights_path`` (.safetensors) plus its model card."""
    state = ckpt.load_latest(run_dir)
    cfg = SuperResConfig.from_dict(state["config"])
    model = build_model(cfg)
    if load_weights_for_export(model, run_dir, state, "model", use_best):
        steps, val_psnr = state["best"]["step"], state["best"]["psnr"]
    else:
        steps, val_psnr = state["step"], None
    training = {"machine": machine, "steps": steps, "steps_run": state["step"],
                "wall_time_s": round(state["wall_time_s"]), "validation_psnr_y": val_psnr,
                "validation": f"{cfg.val_images} images held out of the training folder, {cfg.val_crop} px centre crops"}
    return ckpt.export_safetensors(model, Path(weights_path), build_card(cfg, name, title, training, metrics))


if __name__ == "__main__":
    from ganstudio.train.cli import main

    sys.exit(main(sys.argv[1:]))
