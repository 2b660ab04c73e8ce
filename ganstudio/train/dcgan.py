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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ganstudio.models.arch.dcgan import DCGANGenerator, stage_count
from ganstudio.train import checkpoint as ckpt
from ganstudio.train import engine
from ganstudio.train.common import data_licence, ema_decay_at, save_grid, tile, update_ema
from ganstudio.train.data import SquareCrops, list_images, load_folder
from ganstudio.train.diffaugment import diff_augment, parse_policies
from ganstudio.train.discriminators import DCGANDiscriminator, hinge_d_loss, hinge_g_loss
from ganstudio.train.events import EventWriter

TASK = "generate"
ARCH = "dcgan"
LOSSES = ("hinge", "nonsaturating")


@dataclass(kw_only=True)
class DCGANConfig(engine.RunSettings):
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
    #: Pictures in each sample grid.
    sample_count: int = 16

    def __post_init__(self) -> None:
        self.require(("latent_dim", "ngf", "ndf", "batch", "steps", "sample_count", "checkpoint_every", "log_every",
                      "keep_checkpoints"), ("sample_every",))
        stage_count(self.size)
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        parse_policies(self.augment)
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), not {self.ema_decay}")

    @property
    def augment_policies(self) -> tuple[str, ...]:
        return parse_policies(self.augment)


def arch_params(cfg: DCGANConfig) -> dict[str, Any]:
    return {"latent_dim": cfg.latent_dim, "ngf": cfg.ngf, "size": cfg.size}


def build_generator(cfg: DCGANConfig) -> DCGANGenerator:
    return DCGANGenerator(cfg.latent_dim, cfg.ngf, cfg.size)


def discriminator_loss(real: torch.Tensor, fake: torch.Tensor, loss: str) -> torch.Tensor:
    if loss == "hinge":
        return hinge_d_loss(real, fake)
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def generator_loss(fake: torch.Tensor, loss: str) -> torch.Tensor:
    return hinge_g_loss(fake) if loss == "hinge" else F.softplus(-fake).mean()


def sample_latents(cfg: DCGANConfig) -> torch.Tensor:
    """The fixed latent vectors of the sample grids, from their own generator: the same in every grid of a run
    and after a resume, and untouched by the training's random stream."""
    return torch.randn(cfg.sample_count, cfg.latent_dim, generator=torch.Generator().manual_seed(cfg.seed))


@torch.no_grad()
def save_sample_grid(generator: nn.Module, latents: torch.Tensor, path: Path) -> Path:
    device = next(generator.parameters()).device
    return save_grid(tile(generator(latents.to(device)).float().cpu()), path)


class DCGAN(engine.Family):
    """A generator and a spectral-norm discriminator, alternating: D on augmented real and fake, then G."""

    task = TASK
    run_defining = ("size", "latent_dim", "ngf", "ndf", "batch", "lr", "disc_lr", "beta1", "beta2", "loss",
                    "augment", "ema_decay", "seed", "sample_count")

    def setup(self, state: dict[str, Any] | None) -> dict[str, Any]:
        cfg, device = self.cfg, self.run.device
        images, skipped = load_folder(list_images(Path(cfg.data)), min_side=cfg.size)
        for item in skipped:
            self.run.events.emit("warning", message=f"skipped {item.path}: {item.reason}")
        dataset = SquareCrops(images, cfg.size)
        self.loader = DataLoader(dataset, batch_size=cfg.batch, shuffle=True, drop_last=len(dataset) >= cfg.batch)
        self.generator = build_generator(cfg).to(device)
        self.discriminator = DCGANDiscriminator(cfg.ndf, cfg.size).to(device)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=cfg.disc_lr, betas=(cfg.beta1, cfg.beta2))
        self.track(generator=self.generator, discriminator=self.discriminator, opt_g=self.opt_g, opt_d=self.opt_d)
        self.generator_ema = copy.deepcopy(self.generator).eval().requires_grad_(False)
        self.track(generator_ema=self.generator_ema)
        self.latents = sample_latents(cfg)
        self.generator.train()
        self.discriminator.train()
        return {"train_images": len(images), "skipped": len(skipped),
                "params": {"generator": sum(p.numel() for p in self.generator.parameters()),
                           "discriminator": sum(p.numel() for p in self.discriminator.parameters())}}

    def batches(self) -> Iterator[torch.Tensor]:
        return engine.endless(self.loader)

    def train_step(self, batch: torch.Tensor) -> dict[str, float]:
        cfg, run, policies = self.cfg, self.run, self.cfg.augment_policies
        real = batch.to(run.device, non_blocking=True) * 2 - 1  # both players work in [-1, 1]
        z = torch.randn(real.shape[0], cfg.latent_dim, device=run.device)
        generator, discriminator = run.trained(self.generator), run.trained(self.discriminator)
        with run.precision.autocast():
            fake = generator(z) * 2 - 1
            d_loss = discriminator_loss(discriminator(diff_augment(real, policies)),
                                        discriminator(diff_augment(fake.detach(), policies)), cfg.loss)
        run.update(d_loss, self.opt_d)
        # the discriminator's weights get gradients here too, but only opt_g steps them away
        with run.precision.autocast():
            g_loss = generator_loss(discriminator(diff_augment(fake, policies)), cfg.loss)
        run.update(g_loss, self.opt_g)
        run.precision.update()
        update_ema(self.generator_ema, self.generator, ema_decay_at(run.step, cfg.ema_decay))
        return {"d": d_loss.item(), "g": g_loss.item()}

    def sample(self, path: Path) -> Path:
        return save_sample_grid(self.generator_ema, self.latents, path)


def train(cfg: DCGANConfig, resume: bool = False, events: EventWriter | None = None) -> int:
    """Train until ``cfg.steps`` or a stop signal (SIGTERM/SIGINT checkpoint first); returns an exit code."""
    return engine.train(DCGAN, cfg, resume, events)


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
