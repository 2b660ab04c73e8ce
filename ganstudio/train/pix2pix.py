"""pix2pix on the user's before/after pairs (Isola et al. 2017): two folders whose files pair by name (sketches and
their paintings, scans and their retouched versions), a U-Net learning the change and a PatchGAN judging the
(before, after) pair. The exported model is a Translate model, run at the size it learnt at.

Pairs match as :func:`ganstudio.train.folder_check.pair_paths` says (the wizard's Data page lists the same); a pair
of one aspect ratio at two sizes is trained with the after picture resized to the before one, a pair of different
shapes is left out with a warning. Losses: L1 (the paper's x100 against a BCE GAN is x1 against our hinge x0.01)
and, from ``adv_start``, the conditional PatchGAN.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from ganstudio.models.arch.colorize import Pix2PixUNet
from ganstudio.train import checkpoint as ckpt
from ganstudio.train import engine
from ganstudio.train.common import centre_square, data_licence, device_of, load_weights_for_export, save_rows
from ganstudio.train.data import AUGMENT_TEXT, SkippedFile, augment, check_augment, list_images, load_rgb
from ganstudio.train.discriminators import PatchGANDiscriminator, hinge_gan_step
from ganstudio.train.events import EventWriter
from ganstudio.train.folder_check import pair_paths, same_picture

TASK = "pix2pix"
MODEL_TASK = "translate"
ARCH = "pix2pix_unet"


@dataclass(kw_only=True)
class Pix2PixConfig(engine.RunSettings):
    before: str
    after: str
    out: str
    channels: int = 32
    levels: int = 4
    disc_channels: int = 32
    crop: int = 128
    augment: str = "hflip"
    batch: int = 4
    steps: int = 5_000
    lr: float = 2e-4
    disc_lr: float = 2e-4
    l1_weight: float = 1.0
    adv_weight: float = 0.01
    adv_start: int = 500
    val_images: int = 4
    val_every: int = 500
    init: str = ""

    def __post_init__(self) -> None:
        self.require(("steps", "batch", "crop", "val_every", "checkpoint_every", "log_every", "keep_checkpoints"),
                     ("sample_every", "adv_start", "val_images"))
        if self.crop % 2**self.levels:
            raise ValueError(f"crop {self.crop} must be a multiple of {2 ** self.levels} (2 ** levels)")
        if min(self.l1_weight, self.adv_weight) < 0:
            raise ValueError("loss weights must be 0 or more")
        check_augment(self.augment)


def load_pairs(before: Path, after: Path, min_side: int) -> tuple[list[np.ndarray], list[SkippedFile]]:
    """Each usable pair as one H x W x 6 array (before | after), the after side resized to the before side where
    the two are one shape at two sizes; unmatched, unreadable, mismatched and small pairs are reported."""
    pairs, only_before, only_after = pair_paths(list_images(before), before, list_images(after), after)
    skipped = [SkippedFile(p, "no file of the same name in the other folder") for p in only_before + only_after]
    stacked = []
    for before_path, after_path in pairs:
        try:
            first, second = load_rgb(before_path), load_rgb(after_path)
        except (OSError, ValueError) as exc:
            skipped.append(SkippedFile(before_path, f"unreadable pair: {exc}"))
            continue
        sizes = (first.shape[1], first.shape[0]), (second.shape[1], second.shape[0])
        if not same_picture(*sizes):
            skipped.append(SkippedFile(before_path, f"{sizes[0][0]}x{sizes[0][1]} but its after picture is "
                                                    f"{sizes[1][0]}x{sizes[1][1]}: not one picture"))
            continue
        if min(first.shape[:2]) < min_side:
            skipped.append(SkippedFile(before_path, f"smaller than {min_side} px"))
            continue
        if sizes[0] != sizes[1]:
            second = cv2.resize(second, sizes[0], interpolation=cv2.INTER_AREA if second.shape[0] > first.shape[0]
                                else cv2.INTER_CUBIC)
        stacked.append(np.concatenate([first, second], axis=2))
    return stacked, skipped


def _tensors(stack: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    tensor = torch.from_numpy(np.ascontiguousarray(stack)).permute(2, 0, 1).float() / 255.0
    return tensor[:3], tensor[3:]


class PairCrops(Dataset):
    """The same random crop (and flip) of both sides of a pair; item ``i`` draws from pair ``i``."""

    def __init__(self, pairs: list[np.ndarray], crop: int, augment_kind: str) -> None:
        if not pairs:
            raise ValueError("no usable before/after pairs")
        self.pairs, self.crop, self.augment = pairs, crop, augment_kind

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        stack = self.pairs[index]
        height, width = stack.shape[:2]
        top = int(torch.randint(0, height - self.crop + 1, ()).item())
        left = int(torch.randint(0, width - self.crop + 1, ()).item())
        return _tensors(augment(stack[top : top + self.crop, left : left + self.crop], self.augment))


def validation_pairs(pairs: list[np.ndarray], crop: int, multiple: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [_tensors(centre_square(stack, crop * 2, multiple)) for stack in pairs]


@torch.no_grad()
def validate(generator: nn.Module, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
    """Mean L1 of the result against the after picture, and of the before picture (doing nothing) against it."""
    generator.eval()
    device = device_of(generator)
    l1s, identity = [], []
    for before, after in pairs:
        out = generator(before[None].to(device)).float().cpu()[0]
        l1s.append((out - after).abs().mean().item())
        identity.append((before - after).abs().mean().item())
    generator.train()
    return {"l1": float(np.mean(l1s)), "unchanged_l1": float(np.mean(identity))}


class Pix2Pix(engine.Family):
    task = TASK
    run_defining = ("channels", "levels", "disc_channels", "crop", "augment", "batch", "lr", "disc_lr", "l1_weight",
                    "adv_weight", "adv_start", "seed", "val_images")

    def setup(self, state: dict[str, Any] | None) -> dict[str, Any]:
        cfg, run = self.cfg, self.run
        pairs, skipped = load_pairs(Path(cfg.before), Path(cfg.after), cfg.crop)
        for item in skipped:
            run.events.emit("warning", message=f"skipped {item.path}: {item.reason}")
        held = set(range(0, len(pairs), max(1, len(pairs) // cfg.val_images))) if cfg.val_images and \
            len(pairs) >= 2 * cfg.val_images else set()
        held = set(sorted(held)[: cfg.val_images])
        train_pairs = [p for i, p in enumerate(pairs) if i not in held]
        self.val_pairs = validation_pairs([p for i, p in enumerate(pairs) if i in held], cfg.crop, 2**cfg.levels)
        #: the short side the model learnt at, for its card: the Translate tool runs it there
        self.median_side = int(statistics.median(min(p.shape[:2]) for p in pairs)) if pairs else cfg.crop
        self.loader = DataLoader(PairCrops(train_pairs, cfg.crop, cfg.augment), batch_size=cfg.batch, shuffle=True,
                                 drop_last=len(train_pairs) >= cfg.batch)
        self.generator = Pix2PixUNet(cfg.channels, cfg.levels).to(run.device, memory_format=torch.channels_last)
        # conditional: the discriminator sees before and after side by side (6 channels)
        self.discriminator = PatchGANDiscriminator(cfg.disc_channels, in_channels=6).to(
            run.device, memory_format=torch.channels_last)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=cfg.disc_lr, betas=(0.5, 0.999))
        self.track(generator=self.generator, discriminator=self.discriminator, opt_g=self.opt_g, opt_d=self.opt_d)
        self.best = engine.LowestScore(run, state["best"] if state is not None else None)
        if state is None and cfg.init:
            from safetensors.torch import load_file

            self.generator.load_state_dict(load_file(cfg.init), strict=True)
        return {"train_pairs": len(train_pairs), "val_pairs": len(self.val_pairs), "skipped": len(skipped),
                "working_size": self.median_side, "params": sum(p.numel() for p in self.generator.parameters())}

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return engine.endless(self.loader)

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        cfg, run = self.cfg, self.run
        generator, discriminator = run.trained(self.generator), run.trained(self.discriminator)
        before, after = (t.to(run.device, memory_format=torch.channels_last, non_blocking=True) for t in batch)
        losses: dict[str, torch.Tensor] = {}
        with run.precision.autocast():
            out = generator(before).float()
        adversarial = cfg.adv_weight > 0 and run.step >= cfg.adv_start
        if adversarial:
            losses["d"], losses["g_adv"] = hinge_gan_step(run, discriminator, self.opt_d,
                                                          torch.cat([before, after], 1), torch.cat([before, out], 1))
        losses["l1"] = (out - after).abs().mean()
        g_loss = cfg.l1_weight * losses["l1"]
        if adversarial:
            g_loss = g_loss + cfg.adv_weight * losses["g_adv"]
        run.update(g_loss, self.opt_g)
        run.precision.update()
        return {name: value.item() for name, value in losses.items()}

    def validate(self) -> dict[str, Any] | None:
        if not self.val_pairs:
            return None
        return self.best.offer(self.generator, validate(self.generator, self.val_pairs), "l1")

    @torch.no_grad()
    def sample(self, path: Path) -> Path | None:
        """Rows of before | result | after."""
        if not self.val_pairs:
            return None
        self.generator.eval()
        device = device_of(self.generator)
        rows = [torch.cat([before, self.generator(before[None].to(device)).float().cpu()[0], after], dim=2)
                for before, after in self.val_pairs[:4]]
        self.generator.train()
        return save_rows(rows, path)

    def state(self) -> dict[str, Any]:
        return {"best": self.best.values, "working_size": self.median_side}

    def done_fields(self) -> dict[str, Any]:
        return self.best.done_fields()


def train(cfg: Pix2PixConfig, resume: bool = False, events: EventWriter | None = None) -> int:
    return engine.train(Pix2Pix, cfg, resume, events)


def export(run_dir: Path, weights_path: Path, name: str, title: str, machine: str, use_best: bool = True,
           metrics: dict[str, Any] | None = None) -> Path:
    """The run's best (or latest) generator as a Translate model, run at the short side its pairs had."""
    state = ckpt.load_latest(run_dir)
    cfg = Pix2PixConfig.from_dict(state["config"])
    generator = Pix2PixUNet(cfg.channels, cfg.levels)
    used_best = load_weights_for_export(generator, run_dir, state, "generator", use_best)
    multiple = 2**cfg.levels
    working = min(2048, max(64, round(state.get("working_size", cfg.crop) / multiple) * multiple))
    card = {
        "name": name, "title": title, "task": MODEL_TASK, "scale": 1,
        "architecture": {"name": ARCH, "params": {"channels": cfg.channels, "levels": cfg.levels}},
        # the model learnt a change at the pairs' scale: the tool enlarges the change, not the picture
        "multiple_of": multiple, "working_size": working, "tiling": False, "keeps_detail": True,
        "supports_half": False, "supports_bf16": False,
        "summary": f"Learnt from before/after pairs in {Path(cfg.before).name} and {Path(cfg.after).name}",
        "recipe": "training/pix2pix/README.md",
        "data": {"folders": [cfg.before, cfg.after], "licence": data_licence([cfg.before, cfg.after], cfg.init)},
        "training": {"losses": f"L1 x{cfg.l1_weight:g}, hinge PatchGAN on (before, after) x{cfg.adv_weight:g} "
                               f"from step {cfg.adv_start}",
                     "optimizer": "Adam (0.5, 0.999)", "batch": cfg.batch, "crop": cfg.crop,
                     "augment": AUGMENT_TEXT[cfg.augment], "lr": cfg.lr, "machine": machine,
                     "steps": state["best"]["step"] if used_best else state["step"],
                     "steps_run": state["step"], "wall_time_s": round(state["wall_time_s"])},
        "metrics": metrics or {},
    }
    return ckpt.export_safetensors(generator, Path(weights_path), card)
