"""pix2pix colourisation (Isola et al. 2017): the colour channels of a photo learnt from its lightness, on a folder
of colour photos (each its own training pair: the grey version in, the photo out).

The generator (:mod:`ganstudio.models.arch.colorize`) predicts CIE a*b* from L*; the loss is L1 on a*b*, a chroma
term and, from ``adv_start`` on, a conditional 70x70 PatchGAN on (L*, a*b*). Plain L1 averages the plausible
colours of a thing into a brownish mean (the sepia failure of L1 colourisation); the chroma term penalises only
colour the prediction lacks (its chroma below the photo's), pushing back toward saturated colours without
rewarding invented ones, and the discriminator judges whether the colours look like a photo's.

A run folder (``--out``) holds ``checkpoints/``, ``best.safetensors`` (the lowest validation a*b* L1 so far),
``samples/`` (grey | result | original) and ``config.json``; events go to stdout (:mod:`ganstudio.train.events`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from ganstudio.imaging.color import lab_to_rgb, resize, rgb_to_lab
from ganstudio.models.arch.colorize import AB_SCALE, ColorizeUNet, ab_bin_index
from ganstudio.train import checkpoint as ckpt
from ganstudio.train import engine
from ganstudio.train.common import (centre_square, data_licence, device_of, load_weights_for_export, save_rows,
                                    split_validation)
from ganstudio.train.data import AUGMENT_TEXT, augment, check_augment, list_images, load_folder
from ganstudio.train.discriminators import PatchGANDiscriminator, hinge_gan_step
from ganstudio.train.events import EventWriter

TASK = "colorize"
ARCH = "colorize_unet"
#: The long side the tool brings a photo to for the model when the run trained at the photos' own scale
#: (``photo_size`` 0); the colour is enlarged back to the photo's size.
WORKING_SIZE = 512


@dataclass(kw_only=True)
class ColorizeConfig(engine.RunSettings):
    data: str
    out: str
    channels: int = 32
    levels: int = 4
    #: a*b* grid cells per axis of the classification head (0: regress a*b* directly, with L1 and the chroma term)
    bins: int = 22
    #: Global context in the bottleneck (:class:`~ganstudio.models.arch.colorize.UNet`).
    context: bool = True
    #: Class rebalancing (Zhang et al. 2016): each cell's loss weight is 1 / ((1 - r) p + r / cells), p its share of
    #: the training photos' pixels: rare, saturated colours count as much as the common browns and greys.
    rebalance: float = 0.5
    #: The rebalancing is added to the scores inside the loss only (logits + log weight), so the head itself learns
    #: the photos' own odds and the tool's colours are not pushed toward rare ones by the weights: the loss has
    #: its minimum where softmax(logits + log w) is p * w normalised, that is where logits are log p. The
    #: export then chooses how vivid (``temperature``, ``vividness``) without retraining.
    calibrated: bool = True
    #: The annealed mean's temperature in the exported model (and the validation): 1 is the mean colour.
    temperature: float = 0.38
    #: How far the exported model's odds lean toward rare colours (calibrated runs): its scores are
    #: logits + vividness * log w. 0: the photos' own odds (whose likeliest colour is nearly always a dull one);
    #: 1: as a run trained without ``calibrated`` would be.
    vividness: float = 1.0
    disc_channels: int = 32
    crop: int = 128
    #: The long side each photo is first brought to (jittered by up to 15 % either way), so a crop shows most of
    #: the picture and the model learns what the whole scene says about its colours; the tool then runs the model
    #: at this long side (the card's working size) and enlarges only the colour. 0: crops at the photos' own scale.
    photo_size: int = 256
    #: Left-right flips by default: skies are up.
    augment: str = "hflip"
    batch: int = 8
    steps: int = 20_000
    lr: float = 2e-4
    disc_lr: float = 2e-4
    #: The regression losses (``bins`` 0): L1 alone gives sepia; the chroma term and the GAN gave orange skies and
    #: pink walls in the first run (training/colorize/README.md). Off by default: the binned head needs neither.
    l1_weight: float = 0.0
    #: Weight of the chroma term (colour the prediction lacks).
    chroma_weight: float = 0.0
    #: Weight of the rebalanced cross-entropy over a*b* cells (binned heads).
    ce_weight: float = 1.0
    adv_weight: float = 0.0
    adv_start: int = 1_000
    val_images: int = 16
    val_every: int = 500
    #: .safetensors generator weights of the same architecture to start a fresh run from; ignored on resume.
    init: str = ""

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ColorizeConfig:
        # a run saved before the binned head existed regressed a*b*
        # a run saved before the binned head existed regressed a*b*; before global context and photo_size, it had
        # neither
        return super().from_dict({"bins": 0, "context": False, "photo_size": 0, "calibrated": False, **values})

    def __post_init__(self) -> None:
        self.require(("steps", "batch", "crop", "val_every", "checkpoint_every", "log_every", "keep_checkpoints"),
                     ("sample_every", "adv_start", "val_images", "bins"))
        if self.vividness < 0:
            raise ValueError(f"vividness must be 0 or more, not {self.vividness}")
        if not 0 < self.temperature <= 1:
            raise ValueError(f"temperature must be above 0 and at most 1, not {self.temperature}")
        if not 0 <= self.rebalance <= 1:
            raise ValueError(f"rebalance must be between 0 and 1, not {self.rebalance}")
        if self.photo_size and self.photo_size * 0.85 < self.crop:
            raise ValueError(f"photo_size {self.photo_size} leaves no room for crops of {self.crop}")
        if self.crop % 2**self.levels:
            raise ValueError(f"crop {self.crop} must be a multiple of {2 ** self.levels} (2 ** levels)")
        if min(self.l1_weight, self.chroma_weight, self.ce_weight, self.adv_weight) < 0:
            raise ValueError("loss weights must be 0 or more")
        check_augment(self.augment)


def arch_params(cfg: ColorizeConfig) -> dict[str, Any]:
    return {"channels": cfg.channels, "levels": cfg.levels, **({"bins": cfg.bins} if cfg.bins else {}),
            **({"context": True} if cfg.context else {}),
            **({"temperature": cfg.temperature} if cfg.bins and cfg.temperature != 0.38 else {})}


def working_size(cfg: ColorizeConfig) -> int:
    return cfg.photo_size or WORKING_SIZE


def build_generator(cfg: ColorizeConfig) -> ColorizeUNet:
    return ColorizeUNet(cfg.channels, cfg.levels, cfg.bins, cfg.context, cfg.temperature)


def folded_vividness(weights_path: Path) -> float:
    """The vividness an exported model's card says was folded into its head's bias (0 for a run's own weights)."""
    card_path = weights_path.with_suffix(".json")
    if not card_path.is_file():
        return 0.0
    return float(json.loads(card_path.read_text()).get("decoding", {}).get("vividness", 0.0))


def score_offset(cfg: ColorizeConfig, weights: torch.Tensor) -> torch.Tensor:
    """What the exported model adds to its cell scores: ``vividness`` x log w for a calibrated run, else nothing
    (its scores already lean as far as the rebalancing took them)."""
    return cfg.vividness * weights.log() if cfg.calibrated else torch.zeros_like(weights)


def cell_weights(images: list[np.ndarray], bins: int, rebalance: float) -> torch.Tensor:
    """bins² loss weights: 1 / ((1 - r) p + r / cells), scaled so the photos' pixels weigh 1 on average."""
    counts = torch.zeros(bins * bins, dtype=torch.float64)
    for image in images:
        _, ab = to_lab_tensors(np.ascontiguousarray(image[::4, ::4]))
        counts += torch.bincount(ab_bin_index(ab[None], bins).flatten(), minlength=bins * bins).double()
    share = counts / counts.sum()
    weights = 1 / ((1 - rebalance) * share + rebalance / share.numel())
    return (weights / (share * weights).sum()).float()


def rebalanced_cross_entropy(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor,
                             calibrated: bool) -> torch.Tensor:
    """Cross-entropy of N x cells x H x W scores against N x H x W cell indices, each pixel weighted by its true
    cell's weight; ``calibrated`` adds log weight to the scores inside the loss only (see
    :attr:`ColorizeConfig.calibrated`)."""
    scores = logits + weights.log()[None, :, None, None] if calibrated else logits
    return (nn.functional.cross_entropy(scores, target, reduction="none") * weights[target]).mean()


def to_lab_tensors(rgb: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """H x W x 3 uint8 RGB -> (1 x H x W lightness in [0, 1], 2 x H x W a*b* / AB_SCALE)."""
    lab = rgb_to_lab(rgb.astype(np.float32) / 255.0)
    lab_t = torch.from_numpy(lab).permute(2, 0, 1)
    return lab_t[:1] / 100.0, lab_t[1:] / AB_SCALE


def to_rgb_tensor(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """(1 x H x W, 2 x H x W) as :func:`to_lab_tensors` gives them -> 3 x H x W RGB in [0, 1]."""
    lab = torch.cat([lightness * 100.0, ab * AB_SCALE]).permute(1, 2, 0).numpy()
    return torch.from_numpy(lab_to_rgb(lab)).permute(2, 0, 1)


def at_long_side(image: np.ndarray, long_side: float, min_side: int) -> np.ndarray:
    """``image`` brought to ``long_side`` by the imaging layer's resize, as the tool brings a photo to the working
    size (area-averaged down, bicubic up), its short side kept at least ``min_side``."""
    height, width = image.shape[:2]
    factor = max(long_side / max(height, width), min_side / min(height, width))
    size = (max(min_side, round(width * factor)), max(min_side, round(height * factor)))
    return resize(image, size, "area" if factor < 1 else "bicubic")


class ColourCrops(Dataset):
    """Random square crops of colour photos as (lightness, a*b*) pairs; item ``i`` draws from photo ``i``, first
    brought to about ``photo_size`` on its long side when that is set."""

    def __init__(self, images: list[np.ndarray], crop: int, augment_kind: str, photo_size: int = 0) -> None:
        if not images:
            raise ValueError("no usable training images")
        self.images, self.crop, self.augment, self.photo_size = images, crop, augment_kind, photo_size

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index]
        if self.photo_size:
            jitter = float(torch.empty(()).uniform_(0.85, 1.15))
            image = at_long_side(image, self.photo_size * jitter, self.crop)
        height, width = image.shape[:2]
        top = int(torch.randint(0, height - self.crop + 1, ()).item())
        left = int(torch.randint(0, width - self.crop + 1, ()).item())
        crop = augment(image[top : top + self.crop, left : left + self.crop], self.augment)
        return to_lab_tensors(np.ascontiguousarray(crop))


def validation_pairs(images: list[np.ndarray], crop: int, photo_size: int = 0
                     ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    pairs = []
    for image in images:
        if photo_size:
            image = at_long_side(image, photo_size, crop)
        pairs.append(to_lab_tensors(np.ascontiguousarray(centre_square(image, crop * 2, 16))))
    return pairs


def chroma_shortfall(pred_ab: torch.Tensor, true_ab: torch.Tensor) -> torch.Tensor:
    """The colour the prediction lacks: mean of max(0, |ab_true| - |ab_pred|), which a desaturated (sepia) guess
    pays for and a saturated one does not."""
    return torch.relu(true_ab.norm(dim=1) - pred_ab.norm(dim=1)).mean()


@torch.no_grad()
def validate(generator: nn.Module, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
    """Mean a*b* L1 (in a*b* units) and the predicted chroma as a share of the photos' own."""
    generator.eval()
    device = device_of(generator)
    l1s, chroma, true_chroma = [], [], []
    for lightness, ab in pairs:
        pred = generator(lightness[None].to(device)).float().cpu()[0]
        l1s.append((pred - ab).abs().mean().item() * AB_SCALE)
        chroma.append(pred.norm(dim=0).mean().item())
        true_chroma.append(ab.norm(dim=0).mean().item())
    generator.train()
    return {"ab_l1": float(np.mean(l1s)), "chroma_share": float(np.sum(chroma) / max(np.sum(true_chroma), 1e-6))}


@torch.no_grad()
def save_sample_grid(generator: nn.Module, pairs: list[tuple[torch.Tensor, torch.Tensor]], path: Path,
                     rows: int = 4) -> Path:
    """Rows of grey | result | original."""
    generator.eval()
    device = device_of(generator)
    tiles = []
    for lightness, ab in pairs[:rows]:
        pred = generator(lightness[None].to(device)).float().cpu()[0]
        grey = to_rgb_tensor(lightness, torch.zeros_like(ab))
        tiles.append(torch.cat([grey, to_rgb_tensor(lightness, pred), to_rgb_tensor(lightness, ab)], dim=2))
    generator.train()
    return save_rows(tiles, path)


class Colorize(engine.Family):
    """The U-Net on a*b* L1 and the chroma term, then also against a PatchGAN on (L*, a*b*)."""

    task = TASK
    run_defining = ("channels", "levels", "bins", "context", "rebalance", "calibrated", "disc_channels", "crop",
                    "photo_size", "augment", "batch", "lr",
                    "disc_lr", "l1_weight", "chroma_weight", "ce_weight", "adv_weight", "adv_start", "seed",
                    "val_images")

    def setup(self, state: dict[str, Any] | None) -> dict[str, Any]:
        cfg, run = self.cfg, self.run
        train_paths, val_paths = split_validation(list_images(Path(cfg.data)), cfg.val_images)
        images, skipped = load_folder(train_paths, min_side=cfg.crop)
        val_images, val_skipped = load_folder(val_paths, min_side=cfg.crop)
        for item in skipped + val_skipped:
            run.events.emit("warning", message=f"skipped {item.path}: {item.reason}")
        self.loader = DataLoader(ColourCrops(images, cfg.crop, cfg.augment, cfg.photo_size), batch_size=cfg.batch,
                                 shuffle=True, drop_last=len(images) >= cfg.batch)
        self.val_pairs = validation_pairs(val_images, cfg.crop, cfg.photo_size)
        self.generator = build_generator(cfg).to(run.device, memory_format=torch.channels_last)
        if cfg.bins:
            saved = state.get("cell_weights") if state is not None else None
            self.cell_weights = (torch.tensor(saved) if saved is not None else
                                 cell_weights(images, cfg.bins, cfg.rebalance)).to(run.device)
            self.generator.score_offset.copy_(score_offset(cfg, self.cell_weights))
        # the discriminator sees the lightness and the colour: 3 channels, as PatchGAN takes
        self.discriminator = PatchGANDiscriminator(cfg.disc_channels).to(run.device, memory_format=torch.channels_last)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=cfg.disc_lr, betas=(0.5, 0.999))
        self.track(generator=self.generator, discriminator=self.discriminator, opt_g=self.opt_g, opt_d=self.opt_d)
        self.best = engine.LowestScore(run, state["best"] if state is not None else None)
        if state is None and cfg.init:
            self._start_from(cfg.init)
        return {"train_images": len(images), "val_images": len(val_images),
                "skipped": len(skipped) + len(val_skipped),
                "params": sum(p.numel() for p in self.generator.parameters())}

    def _start_from(self, path: str) -> None:
        """The generator from ``path``; a head of another shape (a regression model for a binned run) and global
        context the model lacked are left as initialised, so new parts learn on a trunk that already knows photos
        (the context starts at zero: the model at step 0 is the one loaded)."""
        from safetensors.torch import load_file

        own = self.generator.state_dict()
        weights = load_file(path)
        fitting = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
        unknown = set(weights) - set(own)
        missing = set(own) - set(fitting)
        if unknown or not {k for k in missing if not k.startswith("context.")} <= {"head.weight", "head.bias"}:
            raise ValueError(f"{path} is not a colorize_unet of this size")
        folded = folded_vividness(Path(path))
        if folded and self.cfg.bins and "head.bias" in fitting:
            # an exported model carries vividness x log w in its head's bias; a calibrated run learns the photos'
            # own odds, so start it from them (w of this run's photos: exact when they are the export's)
            fitting["head.bias"] = fitting["head.bias"] - folded * self.cell_weights.log().to(fitting["head.bias"])
        self.generator.load_state_dict(fitting, strict=False)
        if missing & {"head.weight", "head.bias"}:
            self.run.events.emit("warning", message=f"{path}: its head has another shape; the head starts afresh")
        if any(k.startswith("context.") for k in missing):
            self.run.events.emit("warning", message=f"{path} has no global context; it starts at zero")

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return engine.endless(self.loader)

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        cfg, run = self.cfg, self.run
        generator, discriminator = run.trained(self.generator), run.trained(self.discriminator)
        lightness, ab = (t.to(run.device, memory_format=torch.channels_last, non_blocking=True) for t in batch)
        losses: dict[str, torch.Tensor] = {}
        with run.precision.autocast():
            if cfg.bins:
                # the loss is on the cell scores; their annealed mean (what the tool shows) is only needed for the
                # regression losses and the discriminator, and costs a 484-way softmax at every pixel
                regressing = cfg.l1_weight > 0 or cfg.chroma_weight > 0 or cfg.adv_weight > 0
                # every other pixel of each axis without the regression losses: neighbours share their colour, and
                # the 484-way head and its softmax are the step's largest cost
                logits = generator(lightness, scores_only=1 if regressing else 2).float()
                with torch.set_grad_enabled(regressing and torch.is_grad_enabled()):
                    scores = logits if regressing else logits.detach()[..., ::2, ::2]
                    offset = self.generator.score_offset[:, None, None]
                    pred = torch.einsum("nqhw,qc->nchw", torch.softmax((scores + offset) / cfg.temperature, dim=1),
                                        self.generator.centres)
            else:
                pred = generator(lightness).float()
        adversarial = cfg.adv_weight > 0 and run.step >= cfg.adv_start
        if adversarial:
            # [-1, 1] lightness beside the colour, which PatchGAN's x * 2 - 1 expects in [0, 1]
            real, fake = (torch.cat([lightness, (c + 1) / 2], dim=1) for c in (ab, pred))
            losses["d"], losses["g_adv"] = hinge_gan_step(run, discriminator, self.opt_d, real, fake)
        seen = ab if pred.shape[-1] == ab.shape[-1] else ab[..., ::4, ::4]  # a logged-only, strided prediction
        losses["l1"] = (pred - seen).abs().mean()
        losses["chroma"] = chroma_shortfall(pred, seen)
        g_loss = cfg.l1_weight * losses["l1"] + cfg.chroma_weight * losses["chroma"]
        if cfg.bins:
            stride = ab.shape[-1] // logits.shape[-1]
            target = ab_bin_index(ab[..., ::stride, ::stride], cfg.bins)
            losses["ce"] = rebalanced_cross_entropy(logits, target, self.cell_weights, cfg.calibrated)
            g_loss = g_loss + cfg.ce_weight * losses["ce"]
        if adversarial:
            g_loss = g_loss + cfg.adv_weight * losses["g_adv"]
        run.update(g_loss, self.opt_g)
        run.precision.update()
        return {name: value.item() for name, value in losses.items()}

    def validate(self) -> dict[str, Any] | None:
        if not self.val_pairs:
            return None
        return self.best.offer(self.generator, validate(self.generator, self.val_pairs), "ab_l1")

    def sample(self, path: Path) -> Path | None:
        return save_sample_grid(self.generator, self.val_pairs, path) if self.val_pairs else None

    def state(self) -> dict[str, Any]:
        return {"best": self.best.values, **({"cell_weights": self.cell_weights.cpu().tolist()} if self.cfg.bins
                                             else {})}

    def done_fields(self) -> dict[str, Any]:
        return self.best.done_fields()


def train(cfg: ColorizeConfig, resume: bool = False, events: EventWriter | None = None) -> int:
    return engine.train(Colorize, cfg, resume, events)


#: What ``ganstudio train export`` may pass to :func:`export` beside the common arguments.
EXPORT_OPTIONS = ("temperature", "vividness")


def export(run_dir: Path, weights_path: Path, name: str, title: str, machine: str, use_best: bool = True,
           metrics: dict[str, Any] | None = None, temperature: float | None = None,
           vividness: float | None = None) -> Path:
    """Write the run's best (or latest) generator as ``weights_path`` (.safetensors) plus its model card;
    ``temperature`` and ``vividness`` may differ from the run's (they change no weights the run learnt, only how its
    scores become colours)."""
    state = ckpt.load_latest(run_dir)
    decoding = {k: v for k, v in (("temperature", temperature), ("vividness", vividness)) if v is not None}
    cfg = ColorizeConfig.from_dict({**state["config"], **decoding})
    generator = build_generator(cfg)
    used_best = load_weights_for_export(generator, run_dir, state, "generator", use_best)
    if cfg.bins:
        with torch.no_grad():
            generator.head.bias += score_offset(cfg, torch.tensor(state["cell_weights"]))
    card = {
        "name": name, "title": title, "task": TASK, "scale": 1,
        "architecture": {"name": ARCH, "params": arch_params(cfg)},
        "multiple_of": 2**cfg.levels, "working_size": working_size(cfg), "tiling": False,
        "supports_half": False, "supports_bf16": False,
        "input": {"channels": "CIE L* / 100 (one channel)", "output": f"a*, b* / {AB_SCALE:g} (tanh)"},
        "recipe": "training/colorize/README.md",
        "data": {"folder": cfg.data, "licence": data_licence(cfg.data, cfg.init)},
        "training": {"losses": (f"class-rebalanced cross-entropy over {cfg.bins}x{cfg.bins} a*b* cells "
                                f"(rebalance {cfg.rebalance:g}"
                                f"{f', inside the loss only, vividness {cfg.vividness:g}' if cfg.calibrated else ''}) "
                                f"x{cfg.ce_weight:g}, annealed mean at T {cfg.temperature:g}, " if cfg.bins else "") +
                               f"L1 on a*b* x{cfg.l1_weight:g}, chroma shortfall x{cfg.chroma_weight:g}, hinge "
                               f"PatchGAN on (L*, a*b*) x{cfg.adv_weight:g} from step {cfg.adv_start}",
                     "optimizer": "Adam (0.5, 0.999)", "batch": cfg.batch, "crop": cfg.crop,
                     "photo_size": cfg.photo_size or "the photos' own",
                     "augment": AUGMENT_TEXT[cfg.augment], "lr": cfg.lr, "machine": machine,
                     "steps": state["best"]["step"] if used_best else state["step"], "steps_run": state["step"],
                     "wall_time_s": round(state["wall_time_s"])},
        "metrics": metrics or {},
    }
    if cfg.bins:
        # what was folded into the head's bias, so a later run started from these weights can take it out again
        card["decoding"] = {"vividness": cfg.vividness if cfg.calibrated else 0.0, "temperature": cfg.temperature}
    return ckpt.export_safetensors(generator, Path(weights_path), card)
