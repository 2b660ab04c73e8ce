"""Adversarial training of the inpainting generator (``inpaint_gated``) on a folder of photos.

Each step draws square crops with fresh free-form masks (strokes and boxes, 5-45 % of the area). The generator is
trained with a hole-weighted L1 loss, an LPIPS perceptual loss on the composite (when the AlexNet weights are
available) and, from ``adv_start`` on, a hinge loss against an SN-PatchGAN discriminator (DeepFill v2). Pixel
losses alone first: TRAINING.md's advice for CPU budgets, since the discriminator has nothing to teach a generator
that cannot yet produce the right colours.

A run folder (``--out``) holds ``checkpoints/`` (full state, newest few), ``best.safetensors`` (the generator with
the best validation score so far), ``samples/`` (masked input | result | original) and ``config.json``; progress
goes to stdout as JSON lines (:mod:`ganstudio.train.events`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file
from torch.utils.data import DataLoader

from ganstudio.models.arch.inpaint_gated import GatedInpaintNet
from ganstudio.train import checkpoint as ckpt
from ganstudio.train import engine
from ganstudio.train.data import AUGMENT_TEXT, check_augment, list_images, load_folder
from ganstudio.train.discriminators import SNPatchGANDiscriminator, hinge_d_loss, hinge_g_loss
from ganstudio.train.events import EventWriter
from ganstudio.train.lpips import LPIPS
from ganstudio.train.masks import InpaintCropDataset, validation_pairs
from ganstudio.train.common import (data_licence, device_of, load_lpips, load_weights_for_export, psnr,
                                    save_grid, split_validation)

TASK = "inpaint"
ARCH = "inpaint_gated"
#: Long side the tool shrinks a crop to before running the model (the card's ``working_size``).
WORKING_SIZE = 512


@dataclass(kw_only=True)
class InpaintConfig(engine.RunSettings):
    data: str
    out: str
    channels: int = 16
    levels: int = 3
    dilations: tuple[int, ...] = (2, 4, 8, 2, 4, 8)
    #: The generator corrects a push-pull fill of the hole instead of filling it from zeros
    #: (:func:`ganstudio.models.arch.inpaint_gated.push_pull`).
    prefill: bool = True
    disc_channels: int = 64
    crop: int = 256
    #: The source window is 1 to ``max_zoom`` times ``crop`` (limited by the photo) and resized to ``crop``, so
    #: the model sees textures at several scales, as it will in crops of photos larger than its working size.
    max_zoom: float = 1.5
    #: Of the source windows (:data:`ganstudio.train.data.AUGMENTS`): flips and quarter turns by default.
    augment: str = "dihedral"
    batch: int = 8
    steps: int = 50_000
    lr: float = 2e-4
    disc_lr: float = 2e-4
    hole_weight: float = 6.0
    l1_weight: float = 1.0
    perceptual_weight: float = 1.0
    adv_weight: float = 0.1
    adv_start: int = 2_000
    min_area: float = 0.05
    max_area: float = 0.45
    #: Autocast on CUDA (:class:`ganstudio.train.common.Precision`); the CPU always trains in fp32 (bf16 is ~50x
    #: slower on this CPU, TRAINING.md).
    precision: str = "bf16"
    workers: int = 0
    val_images: int = 16
    val_every: int = 500
    #: .safetensors generator weights of the same architecture to start a fresh run from (fine-tuning); ignored
    #: on resume. The discriminator always starts fresh: only generators are shipped.
    init: str = ""

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> InpaintConfig:
        # a run saved before the prefill existed trained a generator without it
        return super().from_dict({"prefill": False, **values})

    def __post_init__(self) -> None:
        self.dilations = tuple(int(d) for d in self.dilations)
        self.require(("steps", "batch", "crop", "val_every", "checkpoint_every", "log_every", "keep_checkpoints"))
        if self.crop % 2**self.levels:
            raise ValueError(f"crop {self.crop} must be a multiple of {2 ** self.levels} (2 ** levels)")
        if not 0.0 < self.min_area <= self.max_area < 1.0:
            raise ValueError("need 0 < min_area <= max_area < 1")
        if self.max_zoom < 1.0 or self.sample_every < 0 or self.adv_start < 0:
            raise ValueError("max_zoom must be >= 1, sample_every and adv_start >= 0")
        check_augment(self.augment)


def arch_params(cfg: InpaintConfig) -> dict[str, Any]:
    return {"channels": cfg.channels, "levels": cfg.levels, "dilations": list(cfg.dilations), "prefill": cfg.prefill}


def build_generator(cfg: InpaintConfig) -> GatedInpaintNet:
    return GatedInpaintNet(cfg.channels, cfg.levels, cfg.dilations, cfg.prefill)


# ---------------------------------------------------------------------------------------------------- masks


# ----------------------------------------------------------------------------------------------------- data


# --------------------------------------------------------------------------------------------------- losses

def generator_input(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.cat([image * (1 - mask), mask], dim=1)


def hole_weighted_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, hole_weight: float) -> torch.Tensor:
    """L1 over the whole image with hole pixels counting ``hole_weight`` times (Liu et al. 2018 use 6).

    The known pixels are kept in the loss on purpose: the tool matches colours by comparing the model's output
    with the original just outside the hole, which needs the model to reproduce what it was shown.
    """
    return ((pred - target).abs() * (1 + (hole_weight - 1) * mask)).mean()


@torch.no_grad()
def validate(generator: nn.Module, pairs: list[tuple[torch.Tensor, torch.Tensor]],
             lpips: LPIPS | None) -> dict[str, float]:
    """Mean L1 inside the holes, PSNR of the composite and, when available, its LPIPS distance to the original."""
    generator.eval()
    device = device_of(generator)
    l1s, psnrs, distances = [], [], []
    for image, mask in pairs:
        image, mask = image[None].to(device), mask[None].to(device)
        pred = generator(generator_input(image, mask).contiguous(memory_format=torch.channels_last)).float()
        composite = pred * mask + image * (1 - mask)
        l1s.append(((composite - image).abs().sum() / (3 * mask.sum()).clamp_min(1)).item())
        psnrs.append(psnr(composite, image))
        if lpips is not None:
            distances.append(lpips(composite, image).item())
    generator.train()
    scores = {"hole_l1": float(np.mean(l1s)), "psnr": float(np.mean(psnrs))}
    if distances:
        scores["lpips"] = float(np.mean(distances))
    return scores


@torch.no_grad()
def save_sample_grid(generator: nn.Module, pairs: list[tuple[torch.Tensor, torch.Tensor]], path: Path,
                     rows: int = 4) -> Path:
    """Rows of masked input (hole in grey) | result | original, for the eye: a blurry or seamed fill shows here."""
    generator.eval()
    device = device_of(generator)
    tiles = []
    for image, mask in pairs[:rows]:
        pred = generator(generator_input(image[None], mask[None]).to(device))[0].float().cpu()
        composite = pred * mask + image * (1 - mask)
        shown = image * (1 - mask) + 0.5 * mask
        tiles.append(torch.cat([shown, composite, image], dim=2))
    generator.train()
    return save_grid(torch.cat(tiles, dim=1), path)


class Inpaint(engine.Family):
    """The gated generator on hole-weighted L1 and LPIPS, then also against an SN-PatchGAN from ``adv_start``."""

    task = TASK
    run_defining = ("channels", "levels", "dilations", "prefill", "disc_channels", "crop", "max_zoom", "augment",
                    "batch", "lr", "disc_lr", "hole_weight", "l1_weight", "perceptual_weight", "adv_weight",
                    "adv_start", "min_area", "max_area", "seed", "val_images")

    def setup(self, state: dict[str, Any] | None) -> dict[str, Any]:
        cfg, run, device = self.cfg, self.run, self.run.device
        train_paths, val_paths = split_validation(list_images(Path(cfg.data)), cfg.val_images)
        # Photos down to half the crop are usable: their windows are enlarged, which costs little detail.
        train_images, skipped = load_folder(train_paths, min_side=cfg.crop // 2)
        val_images, val_skipped = load_folder(val_paths, min_side=cfg.crop // 2)
        for item in skipped + val_skipped:
            run.events.emit("warning", message=f"skipped {item.path}: {item.reason}")
        self.loader = DataLoader(InpaintCropDataset(train_images, cfg), batch_size=cfg.batch, shuffle=True,
                                 drop_last=len(train_images) >= cfg.batch, num_workers=cfg.workers,
                                 persistent_workers=cfg.workers > 0)
        self.val_pairs = validation_pairs(val_images, cfg)
        self.generator = build_generator(cfg).to(device, memory_format=torch.channels_last)
        self.discriminator = SNPatchGANDiscriminator(cfg.disc_channels).to(device, memory_format=torch.channels_last)
        # beta1 0.5 as in most GAN recipes (DeepFill v2 among them): momentum slows the reaction to a moving target.
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=cfg.disc_lr, betas=(0.5, 0.999))
        self.lpips = load_lpips(run.events, device)
        self.track(generator=self.generator, discriminator=self.discriminator, opt_g=self.opt_g, opt_d=self.opt_d)
        self.best = engine.LowestScore(run, state["best"] if state is not None else None)
        if state is None and cfg.init:
            # strict: weights of another size or layout must fail here, not train a half-initialised model.
            self.generator.load_state_dict(load_file(cfg.init), strict=True)
        self.generator.train()
        self.discriminator.train()
        return {"train_images": len(train_images), "val_images": len(val_images),
                "skipped": len(skipped) + len(val_skipped),
                "params": sum(p.numel() for p in self.generator.parameters()),
                "disc_params": sum(p.numel() for p in self.discriminator.parameters()),
                "perceptual": self.lpips is not None}

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return engine.endless(self.loader)

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        cfg, run = self.cfg, self.run
        generator, discriminator = run.trained(self.generator), run.trained(self.discriminator)
        images, masks = (t.to(run.device, memory_format=torch.channels_last, non_blocking=True) for t in batch)
        adversarial = run.step >= cfg.adv_start
        losses: dict[str, torch.Tensor] = {}
        with run.precision.autocast():
            pred = generator(generator_input(images, masks))
        composite = pred.float() * masks + images * (1 - masks)
        if adversarial:
            with run.precision.autocast():
                real = discriminator(torch.cat([images, masks], dim=1)).float()
                fake = discriminator(torch.cat([composite.detach(), masks], dim=1)).float()
            losses["d"] = hinge_d_loss(real, fake)
            run.update(losses["d"], self.opt_d)
            losses["d"] = losses["d"].detach()
        losses["l1"] = hole_weighted_l1(pred.float(), images, masks, cfg.hole_weight)
        g_loss = cfg.l1_weight * losses["l1"]
        if self.lpips is not None and cfg.perceptual_weight > 0:
            with run.precision.autocast():
                losses["lpips"] = self.lpips(composite, images).float().mean()
            g_loss = g_loss + cfg.perceptual_weight * losses["lpips"]
        if adversarial:
            # the discriminator's weights get gradients here too, but only opt_g steps them away
            with run.precision.autocast():
                losses["g_adv"] = hinge_g_loss(discriminator(torch.cat([composite, masks], dim=1)).float())
            g_loss = g_loss + cfg.adv_weight * losses["g_adv"]
        run.update(g_loss, self.opt_g)
        run.precision.update()
        return {name: value.item() for name, value in losses.items()}

    def validate(self) -> dict[str, Any] | None:
        if not self.val_pairs:
            return None
        scores = validate(self.generator, self.val_pairs, self.lpips)
        return self.best.offer(self.generator, scores, "lpips" if "lpips" in scores else "hole_l1")

    def sample(self, path: Path) -> Path | None:
        return save_sample_grid(self.generator, self.val_pairs, path) if self.val_pairs else None

    def state(self) -> dict[str, Any]:
        return {"best": self.best.values}

    def done_fields(self) -> dict[str, Any]:
        return self.best.done_fields()


def train(cfg: InpaintConfig, resume: bool = False, events: EventWriter | None = None) -> int:
    """Train until ``cfg.steps`` or a stop signal (SIGTERM/SIGINT checkpoint first); returns an exit code."""
    return engine.train(Inpaint, cfg, resume, events)


def build_card(cfg: InpaintConfig, name: str, title: str, training: dict[str, Any],
               metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "title": title,
        "task": TASK,
        "architecture": {"name": ARCH, "params": arch_params(cfg)},
        "multiple_of": 2**cfg.levels,
        "working_size": WORKING_SIZE,
        # the whole crop is one input: tiles would cut the hole off from its context
        "tiling": False,
        "supports_half": False,
        "supports_bf16": False,
        "recipe": "training/inpaint/README.md",
        "data": {"folder": cfg.data, "licence": data_licence(cfg.data, cfg.init)},
        "training": {"losses": f"hole-weighted L1 (x{cfg.hole_weight} in the hole), LPIPS (AlexNet) x"
                               f"{cfg.perceptual_weight}, hinge SN-PatchGAN x{cfg.adv_weight} from step "
                               f"{cfg.adv_start}",
                     "optimizer": "Adam (0.5, 0.999)", "batch": cfg.batch, "crop": cfg.crop,
                     "augment": AUGMENT_TEXT[cfg.augment], "lr": cfg.lr,
                     "masks": f"free-form strokes and boxes, {cfg.min_area:.0%}-{cfg.max_area:.0%} of the area",
                     **training},
        "metrics": metrics or {},
    }


def export(run_dir: Path, weights_path: Path, name: str, title: str, machine: str, use_best: bool = True,
           metrics: dict[str, Any] | None = None) -> Path:
    """Write the run's best (or latest) generator as ``weights_path`` (.safetensors) plus its model card."""
    state = ckpt.load_latest(run_dir)
    cfg = InpaintConfig.from_dict(state["config"])
    generator = build_generator(cfg)
    if load_weights_for_export(generator, run_dir, state, "generator", use_best):
        steps = state["best"]["step"]
        validation = {state["best"]["metric"]: state["best"]["score"]}
    else:
        steps, validation = state["step"], {}
    training = {"machine": machine, "steps": steps, "steps_run": state["step"],
                "wall_time_s": round(state["wall_time_s"]), "validation": validation,
                "validation_set": f"{cfg.val_images} photos held out of the training folder, {cfg.crop} px centre "
                                  "crops with seeded masks"}
    return ckpt.export_safetensors(generator, Path(weights_path), build_card(cfg, name, title, training, metrics))
