"""Self-supervised training of the pose-edit refiner (``pose_refiner``) on the people photos.

No photo of the same person in two poses is needed: each view warps the person to a random nearby pose and back
with the editor's own warp and OpenCV Telea fill, as the tool does. The round trip leaves the artifacts an edit
leaves (blur from resampling twice, seams at the joints, a smeared fill where the moved limb was) while the
original photo is the target; the refiner learns to remove them inside the region the round trip changed.

Losses: L1 over the edited region, LPIPS on the crop (when the AlexNet weights are there) and, from ``adv_start``
on, a hinge loss against a PatchGAN whose patches count by how much of the edited region they cover. Validation
scores the refined and the degraded crops of held-out photos against the originals, so one sees whether the
refiner helps at all; the best validation LPIPS picks the exported weights.

A run folder (``--out``) holds ``checkpoints/``, ``best.safetensors``, ``samples/`` (degraded | refined | original)
and ``config.json``; progress goes to stdout as JSON lines (:mod:`ganstudio.train.events`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file
from torch.utils.data import DataLoader

from ganstudio.models.arch.pose_refiner import PoseRefiner
from ganstudio.train import checkpoint as ckpt
from ganstudio.train import engine
from ganstudio.train.common import (device_of, load_lpips, load_weights_for_export, psnr, save_grid,
                                    split_validation)
from ganstudio.train.discriminators import PatchGANDiscriminator, hinge_d_loss, hinge_g_loss
from ganstudio.train.events import EventWriter
from ganstudio.train.lpips import LPIPS
from ganstudio.train.people import PEOPLE_LICENCE, load_people
from ganstudio.train.round_trips import RefinerDataset, validation_views

TASK = "pose_refine"
ARCH = "pose_refiner"
#: Long side the tool shrinks a crop around the edited region to before running the model (the card's).
WORKING_SIZE = 512


@dataclass(kw_only=True)
class RefinerConfig(engine.RunSettings):
    data: str  # the people folder: photos/, pose_landmarks.json, masks/
    out: str
    channels: int = 24
    levels: int = 3
    bottleneck: int = 2
    disc_channels: int = 64
    #: Square training crop, placed so its centre lies in the edited region.
    crop: int = 160
    #: Photos are first shrunk by a random factor down to this (at least to the crop), so people come in several
    #: sizes, as crops of large photos shrunk to the working size show them.
    min_scale: float = 0.6
    #: Swings of the round trip as a fraction of the detector's training swings (arms 150 degrees, legs 60).
    reach: float = 1.0
    #: Share of a masked person's pixels a round trip may lose (a dropped limb) before its swing is drawn again.
    max_lost: float = 0.1
    batch: int = 8
    steps: int = 20_000
    lr: float = 2e-4
    disc_lr: float = 2e-4
    l1_weight: float = 1.0
    perceptual_weight: float = 1.0
    adv_weight: float = 0.05
    adv_start: int = 2_000
    #: Autocast on CUDA (:class:`ganstudio.train.common.Precision`); the CPU always trains in fp32.
    precision: str = "bf16"
    #: Data loader processes: a view costs two warps (~0.1-0.3 s on a CPU core), so a GPU needs several.
    workers: int = 0
    #: Photos held out as the detector holds them out (every 10th of the 2,096 with landmarks).
    val_images: int = 200
    val_every: int = 500
    #: .safetensors refiner weights of the same architecture to start a fresh run from; ignored on resume.
    init: str = ""

    def __post_init__(self) -> None:
        self.require(("steps", "batch", "crop", "val_every", "checkpoint_every", "log_every", "keep_checkpoints"),
                     ("sample_every", "adv_start", "val_images", "workers"))
        if self.crop % 2**self.levels:
            raise ValueError(f"crop {self.crop} must be a multiple of {2 ** self.levels} (2 ** levels)")
        if not 0.0 < self.min_scale <= 1.0 or self.reach <= 0.0 or not 0.0 <= self.max_lost <= 1.0:
            raise ValueError("need 0 < min_scale <= 1, reach > 0 and 0 <= max_lost <= 1")


def arch_params(cfg: RefinerConfig) -> dict[str, Any]:
    return {"channels": cfg.channels, "levels": cfg.levels, "bottleneck": cfg.bottleneck}


def build_refiner(cfg: RefinerConfig) -> PoseRefiner:
    return PoseRefiner(**arch_params(cfg))


# ----------------------------------------------------------------------------------------------------- data


# --------------------------------------------------------------------------------------------------- losses

def region_l1(pred: torch.Tensor, target: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the edited pixels (region > 0); the rest is the input's, equal to the target."""
    inside = (region > 0).float()
    return ((pred - target).abs() * inside).sum() / (3 * inside.sum()).clamp_min(1)


def patch_weight(region: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """How much of each discriminator patch is edited region: patches of untouched photo (the same in the real
    and the refined crop) teach nothing."""
    return F.adaptive_avg_pool2d(region, logits.shape[-2:])


@torch.no_grad()
def validate(refiner: nn.Module, views: list[tuple[torch.Tensor, ...]], lpips: LPIPS | None) -> dict[str, float]:
    """L1 (over the edited pixels), PSNR and LPIPS of the refined crops and of the degraded inputs, both against
    the original photos: the refiner helps where its figures beat the ``degraded_`` ones."""
    refiner.eval()
    device = device_of(refiner)
    scores: dict[str, list[float]] = {}
    for x, region, original in views:
        x, region, original = x[None].to(device), region[None].to(device), original[None].to(device)
        refined = refiner(torch.cat([x, region], dim=1)).float().clamp(0, 1)
        for prefix, image in (("", refined), ("degraded_", x)):
            scores.setdefault(prefix + "l1", []).append(region_l1(image, original, region).item())
            scores.setdefault(prefix + "psnr", []).append(psnr(image, original))
            if lpips is not None:
                scores.setdefault(prefix + "lpips", []).append(lpips(image, original).item())
    refiner.train()
    return {name: float(np.mean(values)) for name, values in scores.items()}


@torch.no_grad()
def save_sample_grid(refiner: nn.Module, views: list[tuple[torch.Tensor, ...]], path: Path, rows: int = 4) -> Path:
    """Rows of degraded | refined | original, for the eye: seams and smears show in the first column."""
    refiner.eval()
    device = device_of(refiner)
    tiles = []
    for x, region, original in views[:rows]:
        refined = refiner(torch.cat([x, region])[None].to(device))[0].float().clamp(0, 1).cpu()
        tiles.append(torch.cat([x, refined, original], dim=2))
    refiner.train()
    return save_grid(torch.cat(tiles, dim=1), path)


# ----------------------------------------------------------------------------------------------------- loop

class Refiner(engine.Family):
    """The refiner on L1 over the edited region and LPIPS, then also against a region-weighted PatchGAN."""

    task = TASK
    run_defining = ("channels", "levels", "bottleneck", "disc_channels", "crop", "min_scale", "reach", "max_lost",
                    "batch", "lr", "disc_lr", "l1_weight", "perceptual_weight", "adv_weight", "adv_start", "seed",
                    "val_images")

    def setup(self, state: dict[str, Any] | None) -> dict[str, Any]:
        cfg, run, device = self.cfg, self.run, self.run.device
        samples, skipped = load_people(Path(cfg.data))
        for item in skipped:
            run.events.emit("warning", message=f"skipped {item}")
        train_idx, val_idx = split_validation(list(range(len(samples))), cfg.val_images)
        train_samples = [samples[i] for i in train_idx]
        self.views = validation_views([samples[i] for i in val_idx], cfg)
        self.loader = DataLoader(RefinerDataset(train_samples, cfg), batch_size=cfg.batch, shuffle=True,
                                 drop_last=len(train_samples) >= cfg.batch, num_workers=cfg.workers,
                                 persistent_workers=cfg.workers > 0)
        self.refiner = build_refiner(cfg).to(device, memory_format=torch.channels_last)
        self.discriminator = PatchGANDiscriminator(cfg.disc_channels).to(device, memory_format=torch.channels_last)
        self.opt_g = torch.optim.Adam(self.refiner.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=cfg.disc_lr, betas=(0.5, 0.999))
        self.lpips = load_lpips(run.events, device)
        self.track(refiner=self.refiner, discriminator=self.discriminator, opt_g=self.opt_g, opt_d=self.opt_d)
        self.best = engine.LowestScore(run, state["best"] if state is not None else None)
        if state is None and cfg.init:
            self.refiner.load_state_dict(load_file(cfg.init), strict=True)
        self.refiner.train()
        self.discriminator.train()
        return {"train_images": len(train_samples), "val_images": len(self.views), "skipped": len(skipped),
                "params": sum(p.numel() for p in self.refiner.parameters()),
                "disc_params": sum(p.numel() for p in self.discriminator.parameters()),
                "perceptual": self.lpips is not None}

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        return engine.endless(self.loader)

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> dict[str, float]:
        cfg, run = self.cfg, self.run
        refiner, discriminator = run.trained(self.refiner), run.trained(self.discriminator)
        degraded, region, original = (t.to(run.device, memory_format=torch.channels_last, non_blocking=True)
                                      for t in batch)
        losses: dict[str, torch.Tensor] = {}
        with run.precision.autocast():
            refined = refiner(torch.cat([degraded, region], dim=1)).float()
        if run.step >= cfg.adv_start and cfg.adv_weight > 0:
            with run.precision.autocast():
                real = discriminator(original).float()
                fake = discriminator(refined.detach()).float()
            d_loss = hinge_d_loss(real, fake, patch_weight(region, real))
            run.update(d_loss, self.opt_d)
            losses["d"] = d_loss.detach()
            with run.precision.autocast():
                fake = discriminator(refined).float()
            losses["g_adv"] = hinge_g_loss(fake, patch_weight(region, fake))
        losses["l1"] = region_l1(refined, original, region)
        g_loss = cfg.l1_weight * losses["l1"]
        if "g_adv" in losses:
            g_loss = g_loss + cfg.adv_weight * losses["g_adv"]
        if self.lpips is not None and cfg.perceptual_weight > 0:
            with run.precision.autocast():
                losses["lpips"] = self.lpips(refined, original).float().mean()
            g_loss = g_loss + cfg.perceptual_weight * losses["lpips"]
        run.update(g_loss, self.opt_g)
        run.precision.update()
        return {name: value.item() for name, value in losses.items()}

    def validate(self) -> dict[str, Any] | None:
        if not self.views:
            return None
        scores = validate(self.refiner, self.views, self.lpips)
        return self.best.offer(self.refiner, scores, "lpips" if "lpips" in scores else "l1", keep_scores=True)

    def sample(self, path: Path) -> Path | None:
        return save_sample_grid(self.refiner, self.views, path) if self.views else None

    def state(self) -> dict[str, Any]:
        return {"best": self.best.values}

    def done_fields(self) -> dict[str, Any]:
        return self.best.done_fields()


def train(cfg: RefinerConfig, resume: bool = False, events: EventWriter | None = None) -> int:
    """Train until ``cfg.steps`` or a stop signal (SIGTERM/SIGINT checkpoint first); returns an exit code."""
    return engine.train(Refiner, cfg, resume, events)


# --------------------------------------------------------------------------------------------------- export

def build_card(cfg: RefinerConfig, name: str, title: str, training: dict[str, Any],
               metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "title": title,
        "task": TASK,
        "architecture": {"name": ARCH, "params": arch_params(cfg)},
        "multiple_of": 2**cfg.levels,
        "working_size": WORKING_SIZE,
        # one crop around the edited region: it is small, and a tile edge through a seam would leave a seam
        "tiling": False,
        # the correction is added to the photo: half precision would round away the small ones
        "supports_half": False,
        "supports_bf16": False,
        "input": {"channels": "RGB in [0, 1], then the edited region's weight map (0-1)",
                  "region": "ganstudio.pose.refine.edit_region of the warp's changed pixels",
                  "pasted": "ganstudio.pose.refine.paste_weight: the region less the filled background"},
        "recipe": "training/pose/README.md",
        "data": {"folder": cfg.data, "licence": PEOPLE_LICENCE},
        "training": {"data": f"self-supervised: each person warped to a random nearby pose (reach {cfg.reach:g}) "
                             "and back with Telea fill (redrawn when more than "
                             f"{cfg.max_lost:.0%} of a masked person was lost; person pixels that did not come "
                             "back keep their original); the original photo is the target",
                     "losses": f"L1 over the edited region x{cfg.l1_weight}, LPIPS (AlexNet) x"
                               f"{cfg.perceptual_weight}, hinge PatchGAN x{cfg.adv_weight} from step {cfg.adv_start}",
                     "optimizer": "Adam (0.5, 0.999)", "batch": cfg.batch, "crop": cfg.crop, "lr": cfg.lr,
                     "started_from": Path(cfg.init).name if cfg.init else None, **training},
        "metrics": metrics or {},
    }


def export(run_dir: Path, weights_path: Path, name: str, title: str, machine: str, use_best: bool = True,
           metrics: dict[str, Any] | None = None) -> Path:
    """Write the run's best (or latest) refiner as ``weights_path`` (.safetensors) plus its model card."""
    state = ckpt.load_latest(run_dir)
    cfg = RefinerConfig.from_dict(state["config"])
    refiner = build_refiner(cfg)
    if load_weights_for_export(refiner, run_dir, state, "refiner", use_best):
        steps = state["best"]["step"]
        validation = {k: v for k, v in state["best"].items() if k not in ("step", "score", "metric")}
    else:
        steps, validation = state["step"], {}
    training = {"machine": machine, "steps": steps, "steps_run": state["step"],
                "wall_time_s": round(state["wall_time_s"]), "validation": validation,
                "validation_set": f"{cfg.val_images} people photos held out (every 10th), one seeded round trip "
                                  f"each, {cfg.crop} px crops around the edited region"}
    return ckpt.export_safetensors(refiner, Path(weights_path), build_card(cfg, name, title, training, metrics))
