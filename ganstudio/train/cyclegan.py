"""CycleGAN training (Zhu et al. 2017) between any two folders of photos: domain A and domain B.

Two generators (A->B, B->A) and two discriminators (one per domain), least-squares adversarial loss, cycle and
identity L1 losses, a pool of 50 past fakes per discriminator, Adam (2e-4, beta1 0.5) and a learning rate that
is constant for the first half of the steps and decays linearly to 0 over the second.

A run lives in one folder (``--out``): ``checkpoints/`` (full training state, newest few), ``samples/`` (rows of
input | translated | translated back, for held-out photos of each domain) and ``config.json``. Progress goes to
stdout as JSON lines (:mod:`ganstudio.train.events`). :func:`export` writes both generators as
``<a>2<b>.safetensors`` and ``<b>2<a>.safetensors`` with their model cards.

The classic recipe is the default. ``--discriminator projected`` (heads on frozen AlexNet features), a lighter
generator (``--ngf 32 --blocks 6``) and a low-resolution start (``--small-crop 64 --small-crop-steps N``) trade
some of it for far fewer steps, for machines where steps are scarce (see TRAINING.md).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file
from torch.utils.data import DataLoader

from ganstudio.models.arch.cyclegan import CycleGANGenerator, multiple_of
from ganstudio.train import checkpoint as ckpt
from ganstudio.train import engine
from ganstudio.train.data import (AUGMENT_TEXT, FLAT_CROP_SPREAD, UnpairedCrops, check_augment, list_images,
                                  load_folder, resize_short_side, to_tensor)
from ganstudio.train.diffaugment import diff_augment, parse_policies
from ganstudio.train.discriminators import ImagePool, PatchGANDiscriminator, ProjectedDiscriminator, lsgan_loss
from ganstudio.train.events import EventWriter
from ganstudio.train.common import save_grid, split_validation

DISCRIMINATORS = ("patch", "projected")
#: AlexNet's third stage needs this many input pixels (stride 4, then two 3x3 stride-2 max pools).
PROJECTED_MIN_CROP = 32
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(kw_only=True)
class CycleGANConfig(engine.RunSettings):
    domain_a: str
    domain_b: str
    out: str
    #: Short names of the domains: the exported models are ``<name_a>2<name_b>`` and ``<name_b>2<name_a>``.
    name_a: str = "a"
    name_b: str = "b"
    ngf: int = 64
    blocks: int = 9
    #: Stride-2 stages of the generators (the paper: 2).
    downsamplings: int = 2
    ndf: int = 64
    discriminator: str = "patch"  # "patch" (70x70 PatchGAN on pixels) or "projected" (heads on frozen AlexNet)
    #: Photos are resized once so their short side is this, then randomly cropped (the paper: 286 then 256).
    load_size: int = 143
    crop: int = 128
    #: Of the random crops (:data:`ganstudio.train.data.AUGMENTS`): left-right flips by default, as in the paper;
    #: cats and dogs upside down are not the domain.
    augment: str = "hflip"
    #: Train on crops shrunk to this size (the same view at a lower resolution) for the first steps; 0 = off.
    small_crop: int = 0
    small_crop_steps: int = 0
    batch: int = 1
    steps: int = 200_000
    lr: float = 2e-4
    beta1: float = 0.5
    lambda_cycle: float = 10.0
    #: Identity loss weight, as a fraction of ``lambda_cycle`` (the paper: 0.5).
    lambda_identity: float = 0.5
    pool_size: int = 50
    #: DiffAugment policies for both discriminators, comma-separated (color, translation, cutout): the same random
    #: change to real and generated pictures, so a discriminator cannot memorise a small folder. Empty: none.
    diffaugment: str = ""
    #: Photos held out of each folder for the sample grids (never trained on).
    sample_images: int = 4
    #: .safetensors weights (``cyclegan-resnet`` of the same ngf and blocks) to start each generator of a fresh
    #: run from, e.g. cat2dog and dog2cat; ignored on resume. The discriminators always start fresh.
    init_ab: str = ""
    init_ba: str = ""

    def __post_init__(self) -> None:
        self.require(("ngf", "downsamplings", "ndf", "crop", "batch", "steps", "checkpoint_every", "log_every",
                      "keep_checkpoints"),
                     ("blocks", "small_crop", "small_crop_steps", "pool_size", "sample_images", "sample_every"))
        for name in ("crop", "small_crop"):
            if getattr(self, name) % self.multiple_of:
                raise ValueError(f"{name} must be a multiple of {self.multiple_of}, not {getattr(self, name)}")
        if self.load_size < self.crop:
            raise ValueError(f"load_size {self.load_size} is smaller than the crop {self.crop}")
        if self.small_crop > self.crop:
            raise ValueError(f"small_crop {self.small_crop} is larger than the crop {self.crop}")
        if self.discriminator not in DISCRIMINATORS:
            raise ValueError(f"discriminator must be one of {', '.join(DISCRIMINATORS)}, not {self.discriminator!r}")
        if self.discriminator == "projected" and min(self.crop, self.small_crop or self.crop) < PROJECTED_MIN_CROP:
            raise ValueError(f"the projected discriminator's AlexNet needs crops of at least {PROJECTED_MIN_CROP} px")
        for name in ("name_a", "name_b"):
            if not _NAME.match(getattr(self, name)):
                raise ValueError(f"{name} {getattr(self, name)!r}: use lower-case letters, digits, - and _")
        if self.name_a == self.name_b:
            raise ValueError("the two domains need different names")
        check_augment(self.augment)
        parse_policies(self.diffaugment)

    @property
    def multiple_of(self) -> int:
        return multiple_of(self.downsamplings)


def lr_factor(step: int, steps: int) -> float:
    """Constant for the first half, then linear to 0 at ``steps``; a pure function of the step, so a resumed run
    may be given a different ``--steps``."""
    decay_start = steps // 2
    if step < decay_start:
        return 1.0
    return max(0.0, (steps - step) / max(1, steps - decay_start))


def build_generator(cfg: CycleGANConfig) -> CycleGANGenerator:
    return CycleGANGenerator(cfg.ngf, cfg.blocks, cfg.downsamplings)


def arch_params(cfg: CycleGANConfig) -> dict[str, Any]:
    return {"ngf": cfg.ngf, "n_blocks": cfg.blocks, "n_down": cfg.downsamplings}


class Discriminators:
    """Both domains' discriminators and, for the projected kind, the frozen feature network they share."""

    def __init__(self, cfg: CycleGANConfig, device: torch.device, backbone_weights: str | None = None) -> None:
        self.backbone: nn.Module | None = None
        self.policies = parse_policies(cfg.diffaugment)
        if cfg.discriminator == "projected":
            from ganstudio.train.lpips import AlexNetFeatures

            self.backbone = AlexNetFeatures.load(backbone_weights).to(device, memory_format=torch.channels_last)
            self.d_a: nn.Module = ProjectedDiscriminator(width=cfg.ndf)
            self.d_b: nn.Module = ProjectedDiscriminator(width=cfg.ndf)
        else:
            self.d_a, self.d_b = PatchGANDiscriminator(cfg.ndf), PatchGANDiscriminator(cfg.ndf)
        self.d_a.to(device, memory_format=torch.channels_last)
        self.d_b.to(device, memory_format=torch.channels_last)

    def parameters(self) -> list[nn.Parameter]:
        return [*self.d_a.parameters(), *self.d_b.parameters()]

    def requires_grad_(self, flag: bool) -> None:
        self.d_a.requires_grad_(flag)
        self.d_b.requires_grad_(flag)

    def logits(self, discriminator: nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
        if self.policies:
            # DiffAugment works in [-1, 1] (what it shifts in is mid grey); the photos here are in [0, 1]
            images = (diff_augment(images * 2 - 1, self.policies) + 1) / 2
        if self.backbone is None:
            return [discriminator(images)]
        return discriminator(self.backbone(images))


def _centre_crop(image: np.ndarray, load_size: int, crop: int) -> torch.Tensor:
    image = resize_short_side(image, load_size)
    height, width = image.shape[:2]
    top, left = (height - crop) // 2, (width - crop) // 2
    return to_tensor(np.ascontiguousarray(image[top : top + crop, left : left + crop]))


@torch.no_grad()
def save_sample_grid(forward: nn.Module, backward: nn.Module, forward_inputs: list[torch.Tensor],
                     backward_inputs: list[torch.Tensor], path: Path) -> Path:
    """Rows of input | translated | translated back: A photos first, then B photos."""
    tiles = []
    device = next(forward.parameters()).device
    for there, back, inputs in ((forward, backward, forward_inputs), (backward, forward, backward_inputs)):
        for image in inputs:
            x = image[None].to(device, memory_format=torch.channels_last)
            translated = there(x)
            tiles.append(torch.cat([x, translated, back(translated)], dim=3)[0].cpu().clamp(0, 1))
    grid = torch.cat(tiles, dim=1)
    return save_grid(grid, path)


def _load_domain(folder: str, cfg: CycleGANConfig, events: EventWriter) -> tuple[list[np.ndarray], list[torch.Tensor]]:
    """Training images (resized once to the load size) and the held-out sample crops of one domain's folder."""
    paths = list_images(Path(folder))
    train_paths, sample_paths = split_validation(paths, cfg.sample_images)
    # Images are upscaled to the load size when needed, but thumbnails far below it would only add blur.
    images, skipped = load_folder(train_paths, min_side=cfg.load_size // 2, min_spread=FLAT_CROP_SPREAD)
    samples, sample_skipped = load_folder(sample_paths, min_side=cfg.load_size // 2, min_spread=FLAT_CROP_SPREAD)
    for item in skipped + sample_skipped:
        events.emit("warning", message=f"skipped {item.path}: {item.reason}")
    return ([resize_short_side(image, cfg.load_size) for image in images],
            [_centre_crop(image, cfg.load_size, cfg.crop) for image in samples])


class CycleGAN(engine.Family):
    """Two generators against two discriminators: adversarial, cycle and identity losses, then both D updates."""

    task = "translate"
    # Crop sizes, step counts and the data folders may change between sessions (the generators are fully
    # convolutional), e.g. to fine-tune at a larger crop.
    run_defining = ("name_a", "name_b", "ngf", "blocks", "downsamplings", "ndf", "discriminator", "augment", "lr",
                    "beta1", "lambda_cycle", "lambda_identity", "pool_size", "seed", "sample_images")

    def __init__(self, run: engine.Run, state: dict[str, Any] | None, backbone_weights: str | None = None) -> None:
        super().__init__(run, state)
        self.backbone_weights = backbone_weights

    def setup(self, state: dict[str, Any] | None) -> dict[str, Any]:
        cfg, run, device = self.cfg, self.run, self.run.device
        images_a, self.samples_a = _load_domain(cfg.domain_a, cfg, run.events)
        images_b, self.samples_b = _load_domain(cfg.domain_b, cfg, run.events)
        self.dataset = UnpairedCrops(images_a, images_b, cfg.crop, cfg.augment)
        self.loader = DataLoader(self.dataset, batch_size=cfg.batch, shuffle=True,
                                 drop_last=len(self.dataset) >= cfg.batch)
        self.g_ab = build_generator(cfg).to(device, memory_format=torch.channels_last)
        self.g_ba = build_generator(cfg).to(device, memory_format=torch.channels_last)
        self.discriminators = Discriminators(cfg, device, self.backbone_weights)
        betas = (cfg.beta1, 0.999)
        self.optimizer_g = torch.optim.Adam([*self.g_ab.parameters(), *self.g_ba.parameters()], lr=cfg.lr,
                                            betas=betas)
        self.optimizer_d = torch.optim.Adam(self.discriminators.parameters(), lr=cfg.lr, betas=betas)
        self.track(g_ab=self.g_ab, g_ba=self.g_ba, d_a=self.discriminators.d_a, d_b=self.discriminators.d_b,
                   optimizer_g=self.optimizer_g, optimizer_d=self.optimizer_d)
        self.pool_a = ImagePool(cfg.pool_size, state["pool_a"] if state else None)
        self.pool_b = ImagePool(cfg.pool_size, state["pool_b"] if state else None)
        if state is None:
            for generator, init in ((self.g_ab, cfg.init_ab), (self.g_ba, cfg.init_ba)):
                if init:
                    # strict: weights of another size must fail here, not train a half-initialised generator.
                    generator.load_state_dict(load_file(init), strict=True)
        self.schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.steps),
                                                             last_epoch=run.step - 1)
                           for opt in (self.optimizer_g, self.optimizer_d)]
        self.g_ab.train()
        self.g_ba.train()
        return {"train_images": [len(images_a), len(images_b)],
                "sample_images": [len(self.samples_a), len(self.samples_b)],
                "params": {"generator": sum(p.numel() for p in self.g_ab.parameters()),
                           "discriminator": sum(p.numel() for p in self.discriminators.d_a.parameters())}}

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        cfg, clock = self.cfg, self.run.clock
        while True:
            self.dataset.out_size = cfg.small_crop if clock.step < cfg.small_crop_steps and cfg.small_crop else cfg.crop
            for batch in self.loader:
                yield batch
                if cfg.small_crop > 0 and clock.step == cfg.small_crop_steps:
                    break  # the next epoch starts at the full crop

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        cfg, run, ds = self.cfg, self.run, self.discriminators
        g_ab, g_ba = run.trained(self.g_ab), run.trained(self.g_ba)
        d_a, d_b = run.trained(ds.d_a), run.trained(ds.d_b)
        real_a, real_b = (t.to(run.device, memory_format=torch.channels_last, non_blocking=True) for t in batch)
        # Generators: fool both discriminators, translate back to the input, leave the target domain's own photos
        # alone (identity: keeps colours from drifting).
        ds.requires_grad_(False)
        with run.precision.autocast():
            fake_b, fake_a = g_ab(real_a), g_ba(real_b)
            losses = {"g_gan": lsgan_loss(ds.logits(d_b, fake_b), 1.0) + lsgan_loss(ds.logits(d_a, fake_a), 1.0),
                      "cycle": F.l1_loss(g_ba(fake_b), real_a) + F.l1_loss(g_ab(fake_a), real_b)}
            loss_g = losses["g_gan"] + cfg.lambda_cycle * losses["cycle"]
            lambda_identity = cfg.lambda_cycle * cfg.lambda_identity
            if lambda_identity > 0:
                losses["identity"] = F.l1_loss(g_ab(real_b), real_b) + F.l1_loss(g_ba(real_a), real_a)
                loss_g = loss_g + lambda_identity * losses["identity"]
        run.update(loss_g, self.optimizer_g)
        ds.requires_grad_(True)
        with run.precision.autocast():
            losses["d_a"] = 0.5 * (lsgan_loss(ds.logits(d_a, real_a), 1.0)
                                   + lsgan_loss(ds.logits(d_a, self.pool_a.query(fake_a)), 0.0))
            losses["d_b"] = 0.5 * (lsgan_loss(ds.logits(d_b, real_b), 1.0)
                                   + lsgan_loss(ds.logits(d_b, self.pool_b.query(fake_b)), 0.0))
        run.update(losses["d_a"] + losses["d_b"], self.optimizer_d)
        run.precision.update()
        for scheduler in self.schedulers:
            scheduler.step()
        return {name: loss.item() for name, loss in losses.items()}

    def lr(self) -> float:
        return self.optimizer_g.param_groups[0]["lr"]

    def sample(self, path: Path) -> Path | None:
        if not (self.samples_a and self.samples_b):
            return None
        self.g_ab.eval()
        self.g_ba.eval()
        written = save_sample_grid(self.g_ab, self.g_ba, self.samples_a, self.samples_b, path)
        self.g_ab.train()
        self.g_ba.train()
        return written

    def state(self) -> dict[str, Any]:
        return {"pool_a": self.pool_a.images, "pool_b": self.pool_b.images}


def train(cfg: CycleGANConfig, resume: bool = False, events: EventWriter | None = None,
          backbone_weights: str | None = None) -> int:
    """Train until ``cfg.steps`` or a stop signal; returns a process exit code. ``backbone_weights``: the AlexNet
    ``.npz`` for ``--discriminator projected`` (default: :func:`ganstudio.train.lpips.weights_path`)."""
    return engine.train(CycleGAN, cfg, resume, events, backbone_weights=backbone_weights)


def _title(name: str) -> str:
    return name.replace("_", " ").replace("-", " ").capitalize()


def build_card(cfg: CycleGANConfig, name: str, title: str, training: dict[str, Any], licence: str,
               metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "title": title,
        "task": "translate",
        "scale": 1,
        "architecture": {"name": "cyclegan-resnet", "params": arch_params(cfg)},
        "multiple_of": cfg.multiple_of,
        # the translate tool's default short side: the photos' short side in training, so animals come out at the
        # scale the generators learnt them at (a measured difference: training/translate/README.md)
        # the tool takes 64 and up
        "working_size": max(64, round(cfg.load_size / cfg.multiple_of) * cfg.multiple_of),
        # instance norm: a tile's output depends on the whole tile, so the tool runs the model untiled
        "tiling": False,
        "supports_half": False,
        "supports_bf16": False,
        "recipe": "training/translate/README.md",
        "data": {"domain_a": cfg.domain_a, "domain_b": cfg.domain_b, "licence": licence},
        "training": {"losses": f"LSGAN + {cfg.lambda_cycle:g} x cycle L1 + {cfg.lambda_cycle * cfg.lambda_identity:g}"
                               " x identity L1", "discriminator": cfg.discriminator, "optimizer": "Adam",
                     "lr": cfg.lr, "beta1": cfg.beta1, "batch": cfg.batch, "crop": cfg.crop,
                     "load_size": cfg.load_size, "augment": AUGMENT_TEXT[cfg.augment], "small_crop": cfg.small_crop,
                     "small_crop_steps": cfg.small_crop_steps, "diffaugment": cfg.diffaugment or "off", **training},
        "metrics": metrics or {},
    }


def export(run_dir: Path, out_dir: Path, machine: str, licence: str,
           metrics: dict[str, dict[str, Any]] | None = None, names: tuple[str, str] | None = None,
           titles: tuple[str, str] | None = None, head_context: float | None = None) -> list[Path]:
    """Write the latest checkpoint's generators to ``out_dir`` as ``<a>2<b>`` and ``<b>2<a>`` (.safetensors and
    model card), or under ``names`` (A->B first) with ``titles``; ``metrics`` is keyed by the names. Returns the card
    paths."""
    state = ckpt.load_latest(run_dir)
    cfg = CycleGANConfig.from_dict(state["config"])
    training = {"machine": machine, "steps": state["step"], "wall_time_s": round(state["wall_time_s"])}
    directions = (("g_ab", cfg.name_a, cfg.name_b), ("g_ba", cfg.name_b, cfg.name_a))
    cards = []
    for index, (key, source, target) in enumerate(directions):
        name = names[index] if names else f"{source}2{target}"
        if not _NAME.match(name):
            raise ValueError(f"model name {name!r}: use lower-case letters, digits, - and _")
        title = titles[index] if titles else f"{_title(source)} → {_title(target)}"
        model = build_generator(cfg)
        model.load_state_dict(state[key])
        card = build_card(cfg, name, title, training, licence, (metrics or {}).get(name))
        if head_context:
            # trained on head crops (``ganstudio train head-crops``): the tool crops the photo's head the same way
            card.update(region="head", head_context=head_context, working_size=cfg.crop)
        cards.append(ckpt.export_safetensors(model, Path(out_dir) / f"{name}.safetensors", card))
    return cards
