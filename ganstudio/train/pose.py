"""PoseNet training: 17 joint heatmaps from MediaPipe teacher labels, and the person mask where one exists.

Data: ``../shared/data/people/photos`` (one person per photo), ``pose_landmarks.json`` (33 MediaPipe landmarks per
photo, normalised) and ``masks/`` (person vs background for part of the photos). Each step draws photos, applies
one random similarity transform (scale, rotation, shift, mirror) straight from the photo to the network's input
size, recolours it, and renders the Gaussian targets from the transformed joints. Validation is PCK@0.1 of the
torso size and mask IoU on photos held out of training.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from safetensors.torch import load_file

from ganstudio.models.arch.pose_refiner import PoseRefiner
from ganstudio.models.arch.posenet import PoseNet
from ganstudio.pose.decode import decode_heatmaps, fit_matrix, gaussian_heatmaps, pck
from ganstudio.pose.skeleton import JOINTS
from ganstudio.train import checkpoint as ckpt
from ganstudio.train import engine
from ganstudio.train.common import BEST_WEIGHTS, load_weights_for_export, save_grid, split_validation
from ganstudio.train.events import EventWriter
from ganstudio.train.people import (PEOPLE_LICENCE, STRIDE, PersonSample, load_backgrounds, load_people,
                                    load_refiner, random_repose, random_view, render)
#: Extra weight of the heatmap loss at a joint's peak (see pose_loss).
POSITIVE_WEIGHT = 10.0


@dataclass(kw_only=True)
class PoseConfig(engine.RunSettings):
    data: str  # the people folder: photos/, pose_landmarks.json, masks/
    out: str
    height: int = 192
    width: int = 128
    widths: tuple[int, ...] = (32, 48, 96, 128, 192)
    decoder: int = 48
    sigma: float = 2.0  # heatmap cells
    batch: int = 16
    steps: int = 20_000
    lr: float = 2e-3
    warmup: int = 200
    mask_weight: float = 0.05
    val_images: int = 200
    val_every: int = 500
    sample_every: int = 1000
    checkpoint_every: int = 250
    log_every: int = 25
    #: Share of training views whose person is first re-posed by our own warp (a random arm or leg swung to a new
    #: angle, the labels moved with it). The photos are nearly all people standing; without these the detector
    #: learns "arms hang down" and cannot find a limb a user has just moved.
    repose: float = 0.0
    #: A pose refiner (``.safetensors``, its card beside it) that cleans each re-posed view as the tool does by
    #: default, so the detector learns from edits that look like the ones it is run on after a refined edit.
    repose_refiner: str = ""
    #: .safetensors weights of the same architecture to start a fresh run from; ignored on resume.
    init: str = ""
    #: Share of training views framed as users' photos frame people (:func:`wild_matrix`): waist-up portraits and
    #: upper-body crops, small far-away people, people cut off by the frame. 0 keeps the full-body framing only.
    wild: float = 0.0
    #: A folder of photos whose crops fill what a view shows beyond its photo, and half the time replace the
    #: background of a person with a mask; empty: a random flat colour there.
    backgrounds: str = ""
    #: Share of views with one to three patches pasted over them (things in front of the person).
    occlude: float = 0.0

    def __post_init__(self) -> None:
        self.widths = tuple(int(w) for w in self.widths)
        multiple = 2 ** len(self.widths)
        if self.height % multiple or self.width % multiple:
            raise ValueError(f"height and width must be multiples of {multiple}")
        self.require(("steps", "batch", "val_every", "checkpoint_every", "log_every", "keep_checkpoints"),
                     ("sample_every",))
        if not (0.0 <= self.wild <= 1.0 and 0.0 <= self.occlude <= 1.0):
            raise ValueError("wild and occlude are shares of the views: between 0 and 1")


def make_batch(samples: list[PersonSample], indices: np.ndarray, cfg: PoseConfig, rng: np.random.Generator,
               refiner: PoseRefiner | None = None, backgrounds: list[np.ndarray] | None = None):
    images, heatmaps, weights, masks, has_mask = [], [], [], [], []
    hh, hw = cfg.height // STRIDE, cfg.width // STRIDE
    for index in indices:
        image, joints, visible, mask = random_view(samples[index], cfg, rng, backgrounds)
        if cfg.repose and rng.random() < cfg.repose:
            image, joints, mask = random_repose(image, joints, mask, rng, refiner)
        images.append(image)
        heatmaps.append(gaussian_heatmaps(joints, hh, hw, STRIDE, cfg.sigma))
        # Guessed (low-visibility) landmarks still teach the rough place of a limb, at a tenth of the weight.
        weights.append(np.where(visible, 1.0, 0.1).astype(np.float32))
        masks.append(mask if mask is not None else np.zeros((hh, hw), np.uint8))
        has_mask.append(mask is not None)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255)
    return (x.contiguous(memory_format=torch.channels_last), torch.from_numpy(np.stack(heatmaps)),
            torch.from_numpy(np.stack(weights)), torch.from_numpy(np.stack(masks)).float().div_(255),
            torch.tensor(has_mask))


def build_model(cfg: PoseConfig) -> PoseNet:
    return PoseNet(len(JOINTS), cfg.widths, cfg.decoder)


def lr_factor(step: int, cfg: PoseConfig) -> float:
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress))


def pose_loss(output: torch.Tensor, heatmaps: torch.Tensor, weights: torch.Tensor, masks: torch.Tensor,
              has_mask: torch.Tensor, mask_weight: float) -> tuple[torch.Tensor, dict[str, float]]:
    joints = heatmaps.shape[1]
    # Pixels near a joint count up to 1 + POSITIVE_WEIGHT times more: the peaks cover a tiny part of the map, and
    # an unweighted MSE sits for thousands of steps at the all-zero prediction before it learns them.
    emphasis = 1.0 + POSITIVE_WEIGHT * heatmaps
    heat_error = ((output[:, :joints] - heatmaps).pow(2) * emphasis).mean(dim=(2, 3))
    heat_loss = (heat_error * weights).mean() * 100.0
    if has_mask.any():
        mask_loss = F.binary_cross_entropy_with_logits(output[has_mask, joints], masks[has_mask])
    else:
        mask_loss = output[:, joints].sum() * 0.0
    total = heat_loss + mask_weight * mask_loss * 20.0
    return total, {"heatmap": heat_loss.item(), "mask": mask_loss.item()}


@dataclass
class ValidationView:
    image: np.ndarray
    joints: np.ndarray
    visible: np.ndarray
    mask: np.ndarray | None


def validation_views(samples: list[PersonSample], cfg: PoseConfig) -> list[ValidationView]:
    views = []
    for sample in samples:
        height, width = sample.image.shape[:2]
        image, joints, visible, mask = render(sample, fit_matrix(width, height, cfg.width, cfg.height),
                                              cfg.width, cfg.height, False)
        views.append(ValidationView(image, joints, visible, mask))
    return views


@torch.no_grad()
def predict(model: PoseNet, images: np.ndarray, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps (N x J x h x w) and mask probabilities (N x h x w) for N x H x W x 3 uint8 images."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255).to(device)
    out = model(x.contiguous(memory_format=torch.channels_last)).float().cpu()
    return out[:, :-1].numpy(), torch.sigmoid(out[:, -1]).numpy()


def evaluate(model: PoseNet, views: list[ValidationView], device: torch.device) -> dict[str, float]:
    """PCK@0.1 and @0.2 of the torso size over visible joints, and the mean mask IoU where masks exist."""
    was_training = model.training
    model.eval()
    hits = {0.1: 0, 0.2: 0}
    counted = 0
    ious = []
    for start in range(0, len(views), 32):
        chunk = views[start:start + 32]
        heat, masks = predict(model, np.stack([v.image for v in chunk]), device)
        for view, h, m in zip(chunk, heat, masks):
            points, _ = decode_heatmaps(h, STRIDE)
            for fraction in hits:
                got, n = pck(points, view.joints, view.visible, fraction)
                hits[fraction] += got
            counted += int(view.visible.sum())
            if view.mask is not None:
                truth, guess = view.mask > 127, m > 0.5
                union = (truth | guess).sum()
                if union:
                    ious.append((truth & guess).sum() / union)
    model.train(was_training)
    return {"pck@0.1": hits[0.1] / max(counted, 1), "pck@0.2": hits[0.2] / max(counted, 1),
            "mask_iou": float(np.mean(ious)) if ious else math.nan}


def draw_pose(image: np.ndarray, points: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    from ganstudio.pose.skeleton import BONES, JOINT_INDEX

    canvas = image.copy()
    for a, b in BONES:
        pa, pb = points[JOINT_INDEX[a]], points[JOINT_INDEX[b]]
        cv2.line(canvas, tuple(int(v) for v in pa), tuple(int(v) for v in pb), colour, 1, cv2.LINE_AA)
    for p in points:
        cv2.circle(canvas, tuple(int(v) for v in p), 2, colour, -1, cv2.LINE_AA)
    return canvas


def save_samples(model: PoseNet, views: list[ValidationView], device: torch.device, path: Path) -> Path:
    """Teacher (green) and prediction (red) skeletons over held-out photos, and the predicted mask."""
    chunk = views[:6]
    # in eval mode: in training mode the sample photos moved the batch-norm statistics the model is shipped with
    model.eval()
    with torch.no_grad():
        heat, masks = predict(model, np.stack([v.image for v in chunk]), device)
    model.train()
    tiles = []
    for view, h, m in zip(chunk, heat, masks):
        points, _ = decode_heatmaps(h, STRIDE)
        overlay = draw_pose(draw_pose(view.image, view.joints, (0, 200, 0)), points, (230, 0, 0))
        mask = cv2.resize((m * 255).astype(np.uint8), (view.image.shape[1], view.image.shape[0]))
        tiles.append(np.concatenate([overlay, np.repeat(mask[..., None], 3, axis=2)], axis=0))
    grid = np.concatenate(tiles, axis=1)
    return save_grid(torch.from_numpy(grid).permute(2, 0, 1).float() / 255, path)


class PoseTraining(engine.Family):
    """PoseNet on weighted heatmap MSE and the person-mask BCE, from views drawn by its own seeded generator."""

    task = "pose"
    run_defining = ("height", "width", "widths", "decoder", "sigma", "batch", "lr", "warmup", "mask_weight", "seed",
                    "val_images")

    def setup(self, state: dict[str, Any] | None) -> dict[str, Any]:
        cfg, run = self.cfg, self.run
        samples, skipped = load_people(Path(cfg.data))
        for item in skipped:
            run.events.emit("warning", message=f"skipped {item}")
        train_idx, val_idx = split_validation(list(range(len(samples))), cfg.val_images)
        self.train_samples = [samples[i] for i in train_idx]
        self.views = validation_views([samples[i] for i in val_idx], cfg)
        self.refiner = load_refiner(cfg.repose_refiner) if cfg.repose_refiner and cfg.repose else None
        self.backgrounds = load_backgrounds(cfg.backgrounds)
        self.model = build_model(cfg).to(run.device, memory_format=torch.channels_last)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=1e-4)
        self.track(model=self.model, optimizer=self.optimizer)
        self.best = state["best"] if state is not None else {"pck": -1.0, "step": 0}
        # the views come from this generator, not torch's: rank 0 continues the checkpoint's, the others draw their own
        rank = run.dist.rank
        self.rng = np.random.default_rng(cfg.seed if rank == 0 else [cfg.seed, rank, run.step])
        if state is not None and rank == 0:
            self.rng.bit_generator.state = state["data_rng"]
        elif state is None and cfg.init:
            self.model.load_state_dict(load_file(cfg.init), strict=True)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(s, cfg),
                                                           last_epoch=run.step - 1)
        self.model.train()
        return {"train_images": len(self.train_samples), "val_images": len(self.views),
                "with_masks": sum(s.mask is not None for s in self.train_samples),
                "params": sum(p.numel() for p in self.model.parameters())}

    def batches(self) -> Iterator[tuple[torch.Tensor, ...]]:
        while True:
            indices = self.rng.choice(len(self.train_samples), self.cfg.batch, replace=False)
            yield make_batch(self.train_samples, indices, self.cfg, self.rng, self.refiner, self.backgrounds)

    def train_step(self, batch: tuple[torch.Tensor, ...]) -> dict[str, float]:
        run = self.run
        x, heat, weights, masks, has_mask = (t.to(run.device) for t in batch)
        with run.precision.autocast():
            output = run.trained(self.model)(x)
        loss, parts = pose_loss(output.float(), heat, weights, masks, has_mask, self.cfg.mask_weight)
        run.update(loss, self.optimizer)
        run.precision.update()
        self.scheduler.step()
        return parts

    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def validate(self) -> dict[str, Any] | None:
        if not self.views:
            return None
        scores = evaluate(self.model, self.views, self.run.device)
        if scores["pck@0.1"] > self.best["pck"]:
            self.best = {"pck": scores["pck@0.1"], "step": self.run.step, **scores}
            ckpt.save_weights(self.model, self.run.run_dir / BEST_WEIGHTS)
        return {**scores, "best_pck": self.best["pck"], "best_step": self.best["step"]}

    def sample(self, path: Path) -> Path | None:
        return save_samples(self.model, self.views, self.run.device, path) if self.views else None

    def state(self) -> dict[str, Any]:
        return {"data_rng": self.rng.bit_generator.state, "best": self.best}

    def done_fields(self) -> dict[str, Any]:
        return {"best": self.best}


def train(cfg: PoseConfig, resume: bool = False, events: EventWriter | None = None) -> int:
    return engine.train(PoseTraining, cfg, resume, events)


def arch_params(cfg: PoseConfig) -> dict[str, Any]:
    return {"joints": len(JOINTS), "widths": list(cfg.widths), "decoder": cfg.decoder}


def export(run_dir: Path, weights_path: Path, name: str, title: str, machine: str, use_best: bool = True,
           metrics: dict[str, Any] | None = None) -> Path:
    state = ckpt.load_latest(run_dir)
    cfg = PoseConfig.from_dict(state["config"])
    model = build_model(cfg)
    used_best = load_weights_for_export(model, run_dir, state, "model", use_best)
    validation = state["best"] if used_best else {"step": state["step"]}
    card = {
        "name": name,
        "title": title,
        "task": "pose",
        "scale": 1,
        "architecture": {"name": "posenet", "params": arch_params(cfg)},
        "multiple_of": model.multiple_of,
        "supports_half": True,
        "supports_bf16": True,
        "tiling": False,
        "input": {"height": cfg.height, "width": cfg.width, "stride": STRIDE,
                  "outputs": "17 COCO-order joint heatmaps, then a person-mask logit"},
        "joints": list(JOINTS),
        "recipe": "training/pose/README.md",
        "data": {"folder": cfg.data, "licence": PEOPLE_LICENCE},
        "training": {"loss": f"heatmap MSE weighted 1 + {POSITIVE_WEIGHT:g} x target (Gaussian sigma {cfg.sigma:.1f} "
                             "cells) + mask BCE", "optimizer": "AdamW",
                     "batch": cfg.batch, "lr": cfg.lr, "lr_schedule": "cosine", "machine": machine,
                     "steps": validation["step"], "steps_run": state["step"],
                     "wall_time_s": round(state["wall_time_s"]), "repose_share": cfg.repose,
                     "started_from": Path(cfg.init).name if cfg.init else None,
                     "validation": {"held_out_photos": cfg.val_images,
                                    **{k: v for k, v in validation.items() if k not in ("step", "pck")}}},
        "metrics": metrics or {},
    }
    return ckpt.export_safetensors(model, Path(weights_path), card)
