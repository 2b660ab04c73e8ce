"""SRResNet and SRGAN training: the pixel-loss phase (the "faithful" model) and the adversarial fine-tune that
starts from it (the "sharp" model: ``--adv-weight`` > 0, usually with ``--perceptual-weight`` and ``--init``).

A run lives in one folder (``--out``): ``checkpoints/`` (full training state, newest few), ``best.safetensors``
(the weights with the best validation PSNR so far), ``samples/`` (bicubic | output | ground truth grids) and
``config.json``. Progress goes to stdout as JSON lines (:mod:`ganstudio.train.events`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file
from torch.utils.data import DataLoader

from ganstudio.models.arch.srresnet import SRResNet
from ganstudio.train import checkpoint as ckpt
from ganstudio.train import engine
from ganstudio.train.common import (BEST_WEIGHTS, data_licence, device_of, load_matching, load_weights_for_export,
                                    save_grid, split_validation)
from ganstudio.train.data import (AUGMENT_TEXT, SRCropDataset, SRValidationSet, check_augment, degradation_text,
                                  check_degradation, list_images, load_folder)
from ganstudio.train.events import EventWriter
from ganstudio.train.discriminators import Adversary
from ganstudio.train.lpips import LPIPS, perceptual_views
from ganstudio.train.metrics import psnr_y

#: AlexNet's smallest input (32 px) plus the up to 3 pixels :func:`perceptual_views` cuts off.
PERCEPTUAL_MIN_CROP = 36
#: ``--discriminator`` of the adversarial phase.
SR_DISCRIMINATORS = ("srgan", "patch", "projected")


@dataclass(kw_only=True)
class SuperResConfig(engine.RunSettings):
    data: str
    out: str
    scale: int = 4
    blocks: int = 16
    channels: int = 64
    bicubic_residual: bool = False
    crop: int = 96
    #: Of the training crops (:data:`ganstudio.train.data.AUGMENTS`): flips and quarter turns by default.
    augment: str = "dihedral"
    #: How the LR side is made (:data:`ganstudio.train.data.DEGRADATIONS`); validation crops get the same, seeded.
    degradation: str = "bicubic"
    #: Of "real" training pairs, the share left a plain downscale: more of them keeps clean sources sharp.
    clean_share: float = 0.1
    batch: int = 16
    steps: int = 100_000
    lr: float = 2e-4
    lr_schedule: str = "cosine"  # "cosine" (to lr_min at `steps`) or "step" (halved every `lr_step` steps)
    lr_min: float = 1e-6
    lr_step: int = 200_000
    warmup: int = 100
    val_images: int = 16
    val_crop: int = 256
    val_every: int = 500
    checkpoint_every: int = 1000
    #: .safetensors weights of the same architecture to start a fresh run from (fine-tuning); ignored on resume.
    init: str = ""
    #: Take only the tensors of ``init`` that fit (a ×4 model's body for a ×2 model); the rest start fresh.
    init_partial: bool = False
    # The SRGAN phase: the generator's loss is l1_weight * L1 + perceptual_weight * LPIPS + adv_weight * the
    # non-saturating GAN loss. With adv_weight 0 no discriminator exists and this is plain SRResNet training.
    l1_weight: float = 1.0
    #: LPIPS (AlexNet) stands in for the paper's VGG content loss: its weights are already in ../shared/weights.
    perceptual_weight: float = 0.0
    adv_weight: float = 0.0
    #: Sigma in pixels of the low-pass before the AlexNet-based losses (:func:`perceptual_views`); 0 = none.
    perceptual_blur: float = 0.0
    #: "srgan": the paper's VGG-style D on pixels; "patch": a 70x70 PatchGAN on pixels (a quarter of its cost at
    #: 32 channels); "projected": small heads on the LPIPS AlexNet's features (cheapest, but blind to what
    #: AlexNet's stride-4 first layer aliases).
    discriminator: str = "srgan"
    disc_channels: int = 64
    disc_lr: float = 1e-4
    #: The AlexNet/LPIPS .npz (default: ../shared/weights/lpips_alexnet.npz, or $GANSTUDIO_LPIPS_WEIGHTS).
    lpips_weights: str = ""

    def __post_init__(self) -> None:
        self.require(("steps", "batch", "crop", "val_every", "checkpoint_every", "log_every", "keep_checkpoints"),
                     ("sample_every",))
        check_augment(self.augment)
        check_degradation(self.degradation)
        if not 0.0 <= self.clean_share <= 1.0:
            raise ValueError(f"clean share must be between 0 and 1, not {self.clean_share}")
        if self.discriminator not in SR_DISCRIMINATORS:
            raise ValueError(f"discriminator must be one of {', '.join(SR_DISCRIMINATORS)}, not {self.discriminator!r}")
        if min(self.l1_weight, self.perceptual_weight, self.adv_weight) < 0:
            raise ValueError("loss weights must be 0 or more")
        if self.l1_weight == self.perceptual_weight == self.adv_weight == 0:
            raise ValueError("at least one loss weight must be above 0")
        if self.perceptual and self.crop < PERCEPTUAL_MIN_CROP:
            raise ValueError(f"the perceptual and adversarial losses need crops of at least {PERCEPTUAL_MIN_CROP} px")

    @property
    def perceptual(self) -> bool:
        """A run judged by how it looks (validation LPIPS picks the best weights), not by PSNR."""
        return self.adv_weight > 0 or self.perceptual_weight > 0


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


@torch.no_grad()
def validate(model: nn.Module, pairs: SRValidationSet, scale: int, lpips: LPIPS | None = None) -> dict[str, float]:
    """Mean PSNR-Y of the held-out crops and, given ``lpips``, their mean LPIPS (8-bit rounded, as shipped)."""
    model.eval()
    psnrs, distances = [], []
    for lr, hr in pairs:
        sr = model(lr[None].to(device_of(model), memory_format=torch.channels_last))[0].cpu()
        psnrs.append(psnr_y(sr, hr, border=scale))
        if lpips is not None:
            rounded = sr.clamp(0, 1).mul(255).round().div(255)
            distances.append(lpips(rounded[None].to(device_of(lpips)), hr[None].to(device_of(lpips))).item())
    model.train()
    scores = {"psnr": float(np.mean(psnrs))}
    if distances:
        scores["lpips"] = float(np.mean(distances))
    return scores


@torch.no_grad()
def save_sample_grid(model: nn.Module, pairs: SRValidationSet, scale: int, path: Path, rows: int = 4) -> Path:
    """Rows of bicubic | model | ground truth, for a person to judge what PSNR does not show."""
    model.eval()
    tiles = []
    for lr, hr in list(pairs)[:rows]:
        sr = model(lr[None].to(device_of(model), memory_format=torch.channels_last))[0].cpu().clamp(0, 1)
        bicubic = F.interpolate(lr[None], scale_factor=scale, mode="bicubic", align_corners=False)[0].clamp(0, 1)
        tiles.append(torch.cat([bicubic, sr, hr], dim=2))
    model.train()
    width = max(t.shape[2] for t in tiles)
    grid = torch.cat([F.pad(t, (0, width - t.shape[2])) for t in tiles], dim=1)
    return save_grid(grid, path)


class SuperRes(engine.Family):
    """SRResNet on L1 and, with ``adv_weight`` > 0, its SRGAN fine-tune against an :class:`Adversary`."""

    task = "superres"
    run_defining = ("scale", "blocks", "channels", "bicubic_residual", "crop", "augment", "degradation",
                    "clean_share", "batch", "lr", "lr_schedule", "lr_min", "lr_step", "warmup", "seed", "val_images",
                    "val_crop", "l1_weight", "perceptual_weight", "adv_weight", "perceptual_blur", "discriminator",
                    "disc_channels", "disc_lr")

    def setup(self, state: dict[str, Any] | None) -> dict[str, Any]:
        cfg, run, device = self.cfg, self.run, self.run.device
        train_paths, val_paths = split_validation(list_images(Path(cfg.data)), cfg.val_images)
        train_images, skipped = load_folder(train_paths, min_side=cfg.crop)
        val_images, val_skipped = load_folder(val_paths, min_side=cfg.scale * 8)
        for item in skipped + val_skipped:
            run.events.emit("warning", message=f"skipped {item.path}: {item.reason}")
        dataset = SRCropDataset(train_images, cfg.crop, cfg.scale, cfg.augment, cfg.degradation, cfg.clean_share)
        self.val_pairs = SRValidationSet(val_images, cfg.val_crop, cfg.scale, cfg.degradation)
        self.loader = DataLoader(dataset, batch_size=cfg.batch, shuffle=True, drop_last=len(dataset) >= cfg.batch)
        self.model = build_model(cfg).to(device, memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
        self.lpips = (LPIPS(cfg.lpips_weights or None).to(device, memory_format=torch.channels_last)
                      if cfg.perceptual else None)
        self.adversary = (Adversary(cfg, device, self.lpips) if cfg.adv_weight > 0 and self.lpips is not None
                          else None)
        self.track(model=self.model, optimizer=self.optimizer)
        if self.adversary is not None:
            self.track(discriminator=self.adversary.net, disc_optimizer=self.adversary.optimizer)
        self.best = {"psnr": -math.inf, "lpips": math.inf, "step": 0, **(state["best"] if state else {})}
        if state is None and cfg.init and cfg.init_partial:
            taken, fresh = load_matching(self.model, cfg.init)
            run.events.emit("warning", message=f"--init-partial: {len(taken)} tensors taken from {cfg.init}, "
                                               f"{len(fresh)} start fresh ({', '.join(fresh) or 'none'})")
        elif state is None and cfg.init:
            # strict: weights of another size or layout must fail here, not train a half-initialised model.
            self.model.load_state_dict(load_file(cfg.init), strict=True)
        # LambdaLR is rebuilt from the step rather than restored, so a resumed run may change --steps.
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(s, cfg),
                                                           last_epoch=run.step - 1)
        self.model.train()
        return {"train_images": len(train_images), "val_images": len(val_images),
                "skipped": len(skipped) + len(val_skipped), "bicubic_psnr": bicubic_psnr(self.val_pairs, cfg.scale),
                "params": sum(p.numel() for p in self.model.parameters())}

    def before_training(self) -> None:
        if self.run.step == 0 and self.cfg.init and self.val_pairs and self.run.dist.main:
            # A fine-tune's starting point is the figure to beat; it is also the best so far until a step beats it.
            self.run.events.emit("validation", step=0, **self.validate())

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return engine.endless(self.loader)

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        cfg, run, adversary = self.cfg, self.run, self.adversary
        lr_batch, hr_batch = (t.to(run.device, memory_format=torch.channels_last, non_blocking=True) for t in batch)
        losses: dict[str, float] = {}
        with run.precision.autocast():
            sr_batch = run.trained(self.model)(lr_batch)
            l1 = F.l1_loss(sr_batch, hr_batch)
            loss = cfg.l1_weight * l1
            losses["l1"] = l1.item()
            if cfg.perceptual:
                sr_view, hr_view = perceptual_views(sr_batch, hr_batch, cfg.perceptual_blur)
            if cfg.perceptual_weight > 0 and self.lpips is not None:
                distance = self.lpips(sr_view, hr_view).mean()
                loss = loss + cfg.perceptual_weight * distance
                losses["lpips"] = distance.item()
            if adversary is not None:
                adversary.net.requires_grad_(False)
                g_adv = adversary.generator_loss(sr_view, run)
                adversary.net.requires_grad_(True)
                loss = loss + cfg.adv_weight * g_adv
                losses["g_adv"] = g_adv.item()
        run.update(loss, self.optimizer)
        if adversary is not None:
            with run.precision.autocast():
                losses["d"] = adversary.discriminator_step(hr_view, sr_view, run)
        run.precision.update()
        self.scheduler.step()
        return losses

    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def validate(self) -> dict[str, Any] | None:
        if not self.val_pairs:
            return None
        cfg, best = self.cfg, self.best
        scores = validate(self.model, self.val_pairs, cfg.scale, self.lpips)
        # A perceptual run trades PSNR for detail on purpose, so its best weights are those that look closest.
        improved = scores["lpips"] < best["lpips"] if cfg.perceptual else scores["psnr"] > best["psnr"]
        if improved:
            best.update(scores, step=self.run.step)
            ckpt.save_weights(self.model, self.run.run_dir / BEST_WEIGHTS)
        extra = {"lpips": scores["lpips"], "best_lpips": best["lpips"]} if cfg.perceptual else {}
        return {"psnr": scores["psnr"], "best_psnr": best["psnr"], "best_step": best["step"], **extra}

    def sample(self, path: Path) -> Path | None:
        return save_sample_grid(self.model, self.val_pairs, self.cfg.scale, path) if self.val_pairs else None

    def state(self) -> dict[str, Any]:
        return {"best": self.best}

    def done_fields(self) -> dict[str, Any]:
        best = self.best
        return {"best_psnr": best["psnr"], "best_step": best["step"],
                **({"best_lpips": best["lpips"]} if self.cfg.perceptual else {})}


def train(cfg: SuperResConfig, resume: bool = False, events: EventWriter | None = None) -> int:
    """Train until ``cfg.steps`` or a stop signal; returns a process exit code."""
    return engine.train(SuperRes, cfg, resume, events)


def loss_text(cfg: SuperResConfig) -> str:
    """The generator's loss as the model card states it."""
    if not cfg.perceptual:
        return "L1"
    terms = [f"{cfg.l1_weight:g} × L1"] if cfg.l1_weight else []
    if cfg.perceptual_weight:
        terms.append(f"{cfg.perceptual_weight:g} × LPIPS (AlexNet)")
    if cfg.adv_weight:
        kind = {"projected": "heads on frozen AlexNet features",
                "patch": f"70×70 PatchGAN on pixels, {cfg.disc_channels} ch",
                "srgan": f"SRGAN VGG-style, {cfg.disc_channels} ch, spectral norm"}[cfg.discriminator]
        terms.append(f"{cfg.adv_weight:g} × non-saturating GAN loss (discriminator: {kind})")
    return " + ".join(terms)


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
        "training": {"loss": loss_text(cfg), "optimizer": "Adam", "batch": cfg.batch, "hr_crop": cfg.crop,
                     "augment": AUGMENT_TEXT[cfg.augment], "degradation": degradation_text(cfg.degradation, cfg.clean_share),
                     "lr": cfg.lr, "lr_schedule": cfg.lr_schedule, **training},
        "metrics": metrics or {},
    }


def export(run_dir: Path, weights_path: Path, name: str, title: str, machine: str, use_best: bool = True,
           metrics: dict[str, Any] | None = None) -> Path:
    """Write the run's best (or latest) weights as ``weights_path`` (.safetensors) plus its model card."""
    state = ckpt.load_latest(run_dir)
    cfg = SuperResConfig.from_dict(state["config"])
    model = build_model(cfg)
    best = state["best"]
    if load_weights_for_export(model, run_dir, state, "model", use_best):
        steps, val_psnr, val_lpips = best["step"], best["psnr"], best.get("lpips")
    else:
        steps, val_psnr, val_lpips = state["step"], None, None
    training = {"machine": machine, "steps": steps, "steps_run": state["step"],
                "wall_time_s": round(state["wall_time_s"]), "validation_psnr_y": val_psnr,
                **({"validation_lpips": val_lpips} if cfg.perceptual else {}),
                "validation": f"{cfg.val_images} images held out of the training folder, {cfg.val_crop} px centre crops"}
    return ckpt.export_safetensors(model, Path(weights_path), build_card(cfg, name, title, training, metrics))

