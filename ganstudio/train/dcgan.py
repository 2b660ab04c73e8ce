"""An unconditional DCGAN on one folder of pictures: a generator of new pictures like them (registry task
``generate``; architecture :mod:`ganstudio.models.arch.dcgan`).

Sized for the folders users have, tens to a few thousand pictures, on small machines:

- a spectral-norm discriminator and the hinge loss (or the non-saturating one, ``--loss``);
- DiffAugment (Zhao et al. 2020): the same kind of random translation and colour change (and, optionally, cutout)
  is applied to real and generated pictures before the discriminator sees them, and it is differentiable, so the
  discriminator cannot memorise a small folder while the generator still learns un-augmented pictures;
- an exponential moving average of the generator's weights, which the sample grids and the export use: it
  averages out the step-to-step wobble of GAN training.

A run folder (``--out``) holds ``checkpoints/`` (full training state, newest few), ``samples/`` (a grid made from
the same latent vectors every time, so successive grids show the same pictures taking shape) and
``config.json``. Progress goes to stdout as JSON lines (:mod:`ganstudio.train.events`).
"""
from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ganstudio.engine import resolve_device
from ganstudio.models.arch.dcgan import DCGANGenerator, stage_count
from ganstudio.train import checkpoint as ckpt
from ganstudio.train.common import (LossWindow, Precision, RunClock, RunConfig, StopRequest, data_licence,
                                    losses_finite, open_run, save_grid)
from ganstudio.train.data import list_images, load_folder, resize_short_side, to_tensor
from ganstudio.train.discriminators import DCGANDiscriminator, hinge_d_loss, hinge_g_loss
from ganstudio.train.events import EventWriter

TASK = "generate"
ARCH = "dcgan"
LOSSES = ("hinge", "nonsaturating")
AUGMENTS = ("color", "translation", "cutout")


@dataclass
class DCGANConfig(RunConfig):
    data: str
    out: str
    #: Pictures are this many pixels square (4 x a power of 2; 64 is the wizard's).
    size: int = 64
    latent_dim: int = 128
    ngf: int = 64
    ndf: int = 64
    batch: int = 32
    steps: int = 20_000
    lr: float = 2e-4
    disc_lr: float = 2e-4
    # beta1 0.5: DCGAN's; momentum slows the reaction to an opponent that keeps moving
    beta1: float = 0.5
    beta2: float = 0.999
    loss: str = "hinge"
    #: DiffAugment policies, comma-separated (color, translation, cutout); empty or ``none`` for none.
    augment: str = "color,translation"
    ema_decay: float = 0.999
    threads: int = 2
    device: str = "auto"  # "auto" takes CUDA when present, so the same recipe runs on a lent GPU
    #: Autocast on CUDA (:class:`ganstudio.train.common.Precision`); the CPU always trains in fp32.
    precision: str = "fp32"
    seed: int = 0
    #: Pictures in each sample grid.
    sample_count: int = 16
    sample_every: int = 500
    checkpoint_every: int = 500
    log_every: int = 10
    keep_checkpoints: int = 3

    def __post_init__(self) -> None:
        self.require(("latent_dim", "ngf", "ndf", "batch", "steps", "sample_count", "checkpoint_every", "log_every",
                      "keep_checkpoints"), ("sample_every",))
        stage_count(self.size)
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        unknown = set(self.augment_policies) - set(AUGMENTS)
        if unknown:
            raise ValueError(f"unknown augmentation {', '.join(sorted(unknown))} (known: {', '.join(AUGMENTS)})")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), not {self.ema_decay}")

    @property
    def augment_policies(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.augment.split(",") if p.strip() and p.strip() != "none")



# What is being trained: on --resume these come from the checkpoint; the length, cadence, threads and data folder
# from the command line.
_RUN_DEFINING = ("size", "latent_dim", "ngf", "ndf", "batch", "lr", "disc_lr", "beta1", "beta2", "loss", "augment",
                 "ema_decay", "seed", "sample_count")


def arch_params(cfg: DCGANConfig) -> dict[str, Any]:
    return {"latent_dim": cfg.latent_dim, "ngf": cfg.ngf, "size": cfg.size}


def build_generator(cfg: DCGANConfig) -> DCGANGenerator:
    return DCGANGenerator(cfg.latent_dim, cfg.ngf, cfg.size)


# ----------------------------------------------------------------------------------------------- DiffAugment

def _colour(x: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]

    def draw() -> torch.Tensor:
        return torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype)

    x = x + (draw() - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (draw() * 2) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (draw() + 0.5) + mean  # contrast


def _translate(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each picture by up to ``ratio`` of its size; what is shifted in is 0 (mid-grey in [-1, 1])."""
    n, _, height, width = x.shape
    max_dy, max_dx = int(height * ratio + 0.5), int(width * ratio + 0.5)
    dy = torch.randint(-max_dy, max_dy + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-max_dx, max_dx + 1, (n, 1, 1), device=x.device)
    rows = (torch.arange(height, device=x.device).view(1, height, 1) + dy + 1).clamp(0, height + 1)
    cols = (torch.arange(width, device=x.device).view(1, 1, width) + dx + 1).clamp(0, width + 1)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    padded = F.pad(x, (1, 1, 1, 1)).permute(0, 2, 3, 1)
    return padded[batch, rows, cols].permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Blank a square of ``ratio`` of the size at a random place in each picture."""
    n, _, height, width = x.shape
    cut_h, cut_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
    top = torch.randint(0, height + (1 - cut_h % 2), (n, 1, 1), device=x.device) - cut_h // 2
    left = torch.randint(0, width + (1 - cut_w % 2), (n, 1, 1), device=x.device) - cut_w // 2
    rows = torch.arange(height, device=x.device).view(1, height, 1)
    cols = torch.arange(width, device=x.device).view(1, 1, width)
    inside = (rows >= top) & (rows < top + cut_h) & (cols >= left) & (cols < left + cut_w)
    return x * (~inside).unsqueeze(1).to(x.dtype)


_AUGMENT_FUNCTIONS = {"color": _colour, "translation": _translate, "cutout": _cutout}


def diff_augment(x: torch.Tensor, policies: tuple[str, ...]) -> torch.Tensor:
    """DiffAugment of a batch in [-1, 1], a fresh random draw per picture, in the order colour, translation,
    cutout (the paper's). Randomness comes from torch's generator, so a checkpoint's RNG state resumes it."""
    for name in AUGMENTS:
        if name in policies:
            x = _AUGMENT_FUNCTIONS[name](x)
    return x


def discriminator_loss(real: torch.Tensor, fake: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "hinge":
        return hinge_d_loss(real, fake)
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def generator_loss(fake: torch.Tensor, loss: str) -> torch.Tensor:
    return hinge_g_loss(fake) if loss == "hinge" else F.softplus(-fake).mean()


# ------------------------------------------------------------------------------------------------------ data

class SquareCrops(Dataset):
    """Square windows of pictures resized once to the training size on the short side, each at a random place
    along the long side and flipped left-right half the time; item ``i`` draws from picture ``i``."""

    def __init__(self, images: list[np.ndarray], size: int) -> None:
        if not images:
            raise ValueError("no usable training images")
        self.images = [resize_short_side(image, size) for image in images]
        self.size = size

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        image = self.images[index]
        height, width = image.shape[:2]
        top = torch.randint(0, height - self.size + 1, ()).item()
        left = torch.randint(0, width - self.size + 1, ()).item()
        crop = image[top : top + self.size, left : left + self.size]
        if torch.randint(0, 2, ()).item():
            crop = crop[:, ::-1]  # left-right only: pictures upside down are not what the folder holds
        return to_tensor(np.ascontiguousarray(crop))


# --------------------------------------------------------------------------------------------------- samples

def sample_latents(cfg: DCGANConfig) -> torch.Tensor:
    """The fixed latent vectors of the sample grids, from their own generator: the same in every grid of a run
    and after a resume, and untouched by the training's random stream."""
    return torch.randn(cfg.sample_count, cfg.latent_dim, generator=torch.Generator().manual_seed(cfg.seed))


def tile(images: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W -> one 3 x (rows * H) x (columns * W) grid, as square as N allows; empty cells are black."""
    count, channels, height, width = images.shape
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    cells = torch.zeros(rows * columns, channels, height, width, dtype=images.dtype)
    cells[:count] = images
    return cells.view(rows, columns, channels, height, width).permute(2, 0, 3, 1, 4).reshape(
        channels, rows * height, columns * width)


@torch.no_grad()
def save_sample_grid(generator: nn.Module, latents: torch.Tensor, path: Path) -> Path:
    device = next(generator.parameters()).device
    return save_grid(tile(generator(latents.to(device)).float().cpu()), path)


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for averaged, current in zip(ema.parameters(), model.parameters()):
        averaged.lerp_(current, 1.0 - decay)
    # batch-norm running statistics are themselves averages: copied, not averaged again
    for averaged, current in zip(ema.buffers(), model.buffers()):
        averaged.copy_(current)


def ema_decay_at(step: int, decay: float) -> float:
    """The average's decay ramps up over the first steps, so a short run's average is not its random start."""
    return min(decay, (1 + step) / (10 + step))


# ----------------------------------------------------------------------------------------------------- train

def train(cfg: DCGANConfig, resume: bool = False, events: EventWriter | None = None) -> int:
    """Train until ``cfg.steps`` or a stop signal (SIGTERM/SIGINT checkpoint first); returns an exit code."""
    events = events or EventWriter()
    cfg, state, run_dir = open_run(cfg, resume, events, _RUN_DEFINING)

    images, skipped = load_folder(list_images(Path(cfg.data)), min_side=cfg.size)
    for item in skipped:
        events.emit("warning", message=f"skipped {item.path}: {item.reason}")
    dataset = SquareCrops(images, cfg.size)
    loader = DataLoader(dataset, batch_size=cfg.batch, shuffle=True, drop_last=len(dataset) >= cfg.batch,
                        num_workers=0)

    device = resolve_device(cfg.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed sizes: let cuDNN pick the fastest kernels once
    generator = build_generator(cfg).to(device)
    discriminator = DCGANDiscriminator(cfg.ndf, cfg.size).to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=cfg.disc_lr, betas=(cfg.beta1, cfg.beta2))
    precision = Precision(cfg.precision, device, events)
    clock, last_losses = RunClock(cfg.steps), {}
    if state is not None:
        generator.load_state_dict(state["generator"])
        discriminator.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        precision.load_state(state)
        clock, last_losses = RunClock(cfg.steps, state["step"], state["wall_time_s"]), state["last_losses"]
        ckpt.set_rng_state(state["rng"])
    generator_ema = copy.deepcopy(generator).eval().requires_grad_(False)
    if state is not None:
        generator_ema.load_state_dict(state["generator_ema"])
    latents = sample_latents(cfg)
    policies = cfg.augment_policies
    (run_dir / "config.json").write_text(json.dumps({"task": TASK, **asdict(cfg)}, indent=2) + "\n")

    events.emit("start", step=clock.step, total=cfg.steps, train_images=len(images), skipped=len(skipped),
                params={"generator": sum(p.numel() for p in generator.parameters()),
                        "discriminator": sum(p.numel() for p in discriminator.parameters())},
                device=str(device), precision=precision.name, config=asdict(cfg))

    def save() -> None:
        payload = {"step": clock.step, "generator": generator.state_dict(),
                   "generator_ema": generator_ema.state_dict(), "discriminator": discriminator.state_dict(),
                   "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "rng": ckpt.rng_state(),
                   "config": asdict(cfg), "wall_time_s": clock.wall_time, "last_losses": last_losses,
                   **precision.state()}
        path = ckpt.save_checkpoint(run_dir, payload, keep=cfg.keep_checkpoints)
        clock.saved_step = clock.step
        events.emit("checkpoint", path=str(path), step=clock.step)

    generator.train()
    discriminator.train()
    log = LossWindow(events, cfg.log_every, cfg.steps)
    clock.start()
    with StopRequest() as stop:
        try:
            while not clock.at_end and not stop.requested:
                for batch in loader:
                    real = batch.to(device, non_blocking=True) * 2 - 1  # both players work in [-1, 1]
                    z = torch.randn(real.shape[0], cfg.latent_dim, device=device)
                    with precision.autocast():
                        fake = generator(z) * 2 - 1
                        d_loss = discriminator_loss(discriminator(diff_augment(real, policies)),
                                                    discriminator(diff_augment(fake.detach(), policies)), cfg.loss)
                    opt_d.zero_grad(set_to_none=True)
                    precision.backward(d_loss)
                    precision.step(opt_d)

                    # the discriminator's weights get gradients here too, but only opt_g steps them away
                    with precision.autocast():
                        g_loss = generator_loss(discriminator(diff_augment(fake, policies)), cfg.loss)
                    opt_g.zero_grad(set_to_none=True)
                    precision.backward(g_loss)
                    precision.step(opt_g)
                    precision.update()
                    update_ema(generator_ema, generator, ema_decay_at(clock.step, cfg.ema_decay))
                    clock.step += 1

                    values = {"d": d_loss.item(), "g": g_loss.item()}
                    if not losses_finite(values, clock.step, events):
                        return 1
                    last_losses = log.add(clock.step, values, cfg.lr) or last_losses
                    if clock.due(cfg.sample_every):
                        path = save_sample_grid(generator_ema, latents,
                                                run_dir / "samples" / f"step_{clock.step:08d}.png")
                        events.emit("sample", path=str(path), step=clock.step)
                    if clock.end_step(stop, save, cfg.checkpoint_every):
                        break
        except KeyboardInterrupt:
            stop.requested = True
    return clock.finish(stop, save, events)


# ---------------------------------------------------------------------------------------------------- export

def build_card(cfg: DCGANConfig, name: str, title: str, training: dict[str, Any],
               metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "title": title,
        "task": TASK,
        "scale": 1,
        "architecture": {"name": ARCH, "params": arch_params(cfg)},
        "output_size": cfg.size,
        "tiling": False,
        "supports_half": False,
        "supports_bf16": False,
        "recipe": "ganstudio train dcgan (ganstudio/train/dcgan.py); the training wizard's “Generate new images”",
        "data": {"folder": cfg.data, "licence": data_licence(cfg.data)},
        "training": {"losses": f"{cfg.loss} GAN, spectral-norm discriminator, DiffAugment "
                               f"({', '.join(cfg.augment_policies) or 'off'})",
                     "augment": f"DiffAugment ({', '.join(cfg.augment_policies) or 'off'}); random left-right flips",
                     "optimizer": f"Adam ({cfg.beta1:g}, {cfg.beta2:g})", "batch": cfg.batch, "lr": cfg.lr,
                     "disc_lr": cfg.disc_lr, "weights": f"moving average of the generator (decay {cfg.ema_decay:g})",
                     **training},
        "metrics": metrics or {},
    }


def export(run_dir: Path, weights_path: Path, name: str, title: str, machine: str,
           metrics: dict[str, Any] | None = None) -> Path:
    """Write the latest checkpoint's averaged generator as ``weights_path`` (.safetensors) plus its model card."""
    state = ckpt.load_latest(run_dir)
    cfg = DCGANConfig.from_dict(state["config"])
    generator = build_generator(cfg)
    generator.load_state_dict(state["generator_ema"])
    training = {"machine": machine, "steps": state["step"], "wall_time_s": round(state["wall_time_s"]),
                "final_losses": state["last_losses"]}
    return ckpt.export_safetensors(generator, Path(weights_path), build_card(cfg, name, title, training, metrics))
