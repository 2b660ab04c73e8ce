"""The head locator: where a cat's or a dog's head is, learnt from two folders of photos with no box labels.

The labels come from the frozen ImageNet AlexNet (``../shared/weights``, the one pretrained network training may
use), never shipped: a cat-vs-dog logistic probe on its average-pooled conv3-5 features, whose class-activation map
(Zhou et al. 2016) is brightest on the face, the part that tells the two apart. Each photo's head is the bright
part of the map around its peak (its weighted centre, its extent times ``head_scale``); photos the probe gets wrong
or is unsure of are left out. A small PoseNet of our own (one centre heatmap, one head-disc mask) then learns those
labels from random views (scale from a far-off animal to a face filling the frame, shifts, turns, mirror images,
colour), which also smooths the single map's mistakes. Validation: held-out photos of both folders, the share whose
centre lands within a quarter of the head's side of the label's and the mean size error.
"""
from __future__ import annotations

import json
import math
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ganstudio.models.arch.posenet import PoseNet
from ganstudio.pose.decode import gaussian_heatmaps, similarity_matrix, to_opencv
from ganstudio.tools.heads import TASK, HeadBox, decode_head, letterbox
from ganstudio.train import checkpoint as ckpt
from ganstudio.train import engine
from ganstudio.train.common import BEST_WEIGHTS, load_weights_for_export, save_grid, split_validation
from ganstudio.train.data import list_images, load_rgb
from ganstudio.train.events import EventWriter
from ganstudio.train.pose import lr_factor, pose_loss

STRIDE = 2
#: The short side photos are brought to for AlexNet (its ImageNet scale).
CAM_SIZE = 224
LABELS_FILE = "head_labels.json"
LICENCE = ("Trained on Kaggle Dogs-vs-Cats (Asirra, Microsoft Research), Kaggle cat-breed photos and Stanford Dogs / "
           "ImageNet photos, with labels from the ImageNet AlexNet: non-commercial research terms apply to these "
           "weights.")


@dataclass(kw_only=True)
class HeadsConfig(engine.RunSettings):
    domain_a: str  # cats
    domain_b: str  # dogs
    out: str
    size: int = 128
    widths: tuple[int, ...] = (16, 32, 64, 96, 128)
    decoder: int = 32
    sigma: float = 2.0
    batch: int = 32
    steps: int = 3000
    lr: float = 2e-3
    warmup: int = 100
    mask_weight: float = 0.5
    #: Photos of each folder held out for validation.
    val_images: int = 60
    val_every: int = 250
    sample_every: int = 500
    checkpoint_every: int = 250
    log_every: int = 25
    #: The head is the part of the activation map above this share of its peak ...
    cam_threshold: float = 0.5
    #: ... and its side this many times that part's larger extent (the map lights the eyes and muzzle, not the ears).
    head_scale: float = 1.6
    #: Photos whose probe gives their own folder's class less than this are not labelled.
    min_probability: float = 0.8
    #: Share of training views cut from the ``others`` photos, with no head to find: people's faces, a pattern of
    #: fur, a photo with no animal must give no head.
    negatives: float = 0.2
    #: A folder of photos with neither animal (landscapes, things, people): a third class for the probe, so a
    #: head is what tells the animal from both the other and from anything else. Empty: the two animals only.
    others: str = ""
    lpips_weights: str = ""

    def __post_init__(self) -> None:
        self.widths = tuple(int(w) for w in self.widths)
        if not 0.0 <= self.negatives < 1.0:
            raise ValueError(f"negatives is a share of the views: from 0 to below 1, not {self.negatives}")
        if self.size % 2 ** len(self.widths):
            raise ValueError(f"size must be a multiple of {2 ** len(self.widths)}")
        self.require(("steps", "batch", "val_every", "checkpoint_every", "log_every", "keep_checkpoints"),
                     ("sample_every",))


class CamLabeller:
    """A softmax probe over the classes (the two animals, and photos of neither) on frozen AlexNet features, and the
    head box its activation maps show."""

    def __init__(self, weights: str = "") -> None:
        from ganstudio.train.lpips import AlexNetFeatures

        self.backbone = AlexNetFeatures.load(weights or None)
        self.weight: torch.Tensor | None = None  # classes x channels, in raw feature units
        self.bias: torch.Tensor | None = None

    @torch.no_grad()
    def feature_map(self, rgb: np.ndarray) -> torch.Tensor:
        """conv3-5 (896 channels, one 1/16 grid), averaged with the mirror image's: C x h x w, float16."""
        height, width = rgb.shape[:2]
        factor = CAM_SIZE / min(height, width)
        view = cv2.resize(rgb, (round(width * factor), round(height * factor)), interpolation=cv2.INTER_CUBIC)
        x = torch.from_numpy(view).permute(2, 0, 1)[None].float().div(255)
        maps = torch.cat(self.backbone(torch.cat([x, x.flip(3)]))[2:], dim=1)
        return ((maps[0] + maps[1].flip(2)) / 2).half()

    def fit(self, maps: list[torch.Tensor], classes: np.ndarray, l2: float = 1e-2) -> float:
        """Fit the probe on the maps' averages; returns its accuracy on them."""
        pooled = torch.stack([m.float().mean(dim=(1, 2)) for m in maps]).double()
        mean, std = pooled.mean(0), pooled.std(0) + 1e-6
        x, y = (pooled - mean) / std, torch.from_numpy(classes.astype(np.int64))
        count = int(y.max()) + 1
        w = torch.zeros(count, x.shape[1], dtype=torch.float64, requires_grad=True)
        b = torch.zeros(count, dtype=torch.float64, requires_grad=True)
        optimiser = torch.optim.LBFGS([w, b], max_iter=300, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimiser.zero_grad()
            loss = F.cross_entropy(x @ w.T + b, y) + l2 * (w * w).sum()
            loss.backward()
            return loss

        optimiser.step(closure)
        w, b = w.detach(), b.detach()
        # in raw feature units, so a class's map is its weight's dot product with each cell
        self.weight = (w / std).float()
        self.bias = (b - (w * mean / std).sum(1)).float()
        return float(((x @ w.T + b).argmax(1) == y).double().mean())

    def probabilities(self, fmap: torch.Tensor) -> torch.Tensor:
        assert self.weight is not None and self.bias is not None, "fit the probe first"
        return torch.softmax(self.weight @ fmap.float().mean(dim=(1, 2)) + self.bias, 0)

    def head(self, fmap: torch.Tensor, shape: tuple[int, ...], animal: int, threshold: float,
             head_scale: float) -> HeadBox:
        """The head in a photo of ``shape`` showing class ``animal``: where the evidence for it against every other
        class is brightest, so neither the other animal's absence (a wall is "not a dog") nor fur any animal has
        (a body is "not a landscape") counts, but what tells this animal from both: its face."""
        assert self.weight is not None, "fit the probe first"
        maps = torch.einsum("kc,chw->khw", self.weight, fmap.float()).numpy()
        against = [np.maximum(maps[animal] - maps[k], 0) for k in range(len(maps)) if k != animal]
        evidence = np.prod(against, axis=0) ** (1 / len(against))
        # the grid's outer ring sees the zero padding of AlexNet's convs, which no photo has
        evidence[[0, -1], :] = 0.0
        evidence[:, [0, -1]] = 0.0
        confidence = float(self.probabilities(fmap)[animal])
        evidence = np.maximum(cv2.resize(evidence, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC), 0)
        peak = float(evidence.max())
        if peak <= 0:
            return HeadBox(shape[1] / 2, shape[0] / 2, min(shape[:2]) / 2, 0.0)
        _, labels = cv2.connectedComponents((evidence >= threshold * peak).astype(np.uint8))
        py, px = np.unravel_index(int(evidence.argmax()), evidence.shape)
        ys, xs = np.nonzero(labels == labels[py, px])
        mass = evidence[ys, xs]
        extent = max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
        return HeadBox(float((xs + 0.5) @ mass / mass.sum()), float((ys + 0.5) @ mass / mass.sum()),
                       float(extent * head_scale), confidence)


def label_heads(cfg: HeadsConfig, folders: list[list[Path]], events: EventWriter) -> dict[str, Any]:
    """``{file: [cx, cy, side, probability]}`` (photo pixels) for every readable photo of the two animals' folders
    (``folders[:2]``), and the probe's accuracy; a third folder, of photos with neither, only trains the probe."""
    labeller = CamLabeller(cfg.lpips_weights)
    maps, shapes, kept, classes = [], [], [], []
    photos = [(k, path) for k, paths in enumerate(folders) for path in paths]
    for index, (k, path) in enumerate(photos):
        try:
            rgb = load_rgb(path)
        except Exception as exc:  # a broken file is reported and left out, never fatal
            events.emit("warning", message=f"skipped {path}: {exc}")
            continue
        maps.append(labeller.feature_map(rgb))
        shapes.append(rgb.shape)
        kept.append(path)
        classes.append(k)
        if index % 200 == 0:
            events.emit("status", message=f"head labels: features of {index} of {len(photos)} photos")
    accuracy = labeller.fit(maps, np.array(classes))
    heads = {str(path): list(astuple(labeller.head(fmap, shape, k, cfg.cam_threshold, cfg.head_scale)))
             for path, fmap, shape, k in zip(kept, maps, shapes, classes) if k < 2}
    return {"probe_accuracy": accuracy, "threshold": cfg.cam_threshold, "head_scale": cfg.head_scale,
            "heads": heads}


@dataclass
class HeadSample:
    image: np.ndarray
    head: HeadBox


def random_view(sample: HeadSample, cfg: HeadsConfig, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray, float]:
    """A training view (size x size) and the head's centre and side in it: the head from a tenth to most of the
    view's side, anywhere in it, turned up to 20 degrees, mirrored half the time, recoloured; the photo's outside
    a random flat grey (mirrored edges would show heads that are not labelled)."""
    size = cfg.size
    side = size * math.exp(rng.uniform(math.log(0.1), math.log(0.85)))
    margin = min(0.4, max(0.05, 0.5 - side / size / 2))
    shift = rng.uniform(-margin, margin, 2) * size
    matrix = similarity_matrix(np.array([sample.head.cx, sample.head.cy]), side / sample.head.side,
                               rng.uniform(-20, 20), size, size, shift)
    if rng.random() < 0.5:
        matrix = np.array([[-1, 0, size], [0, 1, 0]]) @ np.vstack([matrix, [0, 0, 1]])
    grey = int(rng.integers(0, 256))
    view = cv2.warpAffine(sample.image, to_opencv(matrix), (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(grey, grey, grey))
    view = view.astype(np.float32) * rng.uniform(0.7, 1.3, 3) + rng.uniform(-25, 25)
    if rng.random() < 0.15:
        view = np.repeat(view.mean(axis=2, keepdims=True), 3, axis=2)
    centre = matrix @ np.array([sample.head.cx, sample.head.cy, 1.0])
    return np.clip(view, 0, 255).astype(np.uint8), centre, side


def negative_view(image: np.ndarray, cfg: HeadsConfig, rng: np.random.Generator) -> np.ndarray:
    """A view of a photo with no animal: a random square of a third to all of its short side, mirrored half the
    time, recoloured as the head views are."""
    height, width = image.shape[:2]
    side = int(rng.uniform(0.33, 1.0) * min(height, width))
    top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
    view = cv2.resize(image[top:top + side, left:left + side], (cfg.size, cfg.size), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        view = view[:, ::-1]
    view = view.astype(np.float32) * rng.uniform(0.7, 1.3, 3) + rng.uniform(-25, 25)
    return np.clip(view, 0, 255).astype(np.uint8)


def targets(centre: np.ndarray, side: float, size: int, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """The centre's Gaussian heatmap (1 x h x w) and the head's disc (h x w, 0/255) on the output grid."""
    cells = size // STRIDE
    heat = gaussian_heatmaps(centre[None], cells, cells, STRIDE, sigma)
    disc = np.zeros((cells, cells), np.uint8)
    # OpenCV draws about cell centres at integers; ours are at + 0.5 (continuous pixels)
    cx, cy = (centre / STRIDE - 0.5) * 16
    cv2.circle(disc, (int(round(cx)), int(round(cy))), int(round(side / 2 / STRIDE * 16)), 255, -1, cv2.LINE_8,
               shift=4)
    return heat, disc


def make_batch(samples: list[HeadSample], indices: np.ndarray, cfg: HeadsConfig, rng: np.random.Generator,
               others: list[np.ndarray] | None = None):
    views, heats, discs = [], [], []
    cells = cfg.size // STRIDE
    for index in indices:
        if others and rng.random() < cfg.negatives:
            views.append(negative_view(others[int(rng.integers(len(others)))], cfg, rng))
            heats.append(np.zeros((1, cells, cells), np.float32))
            discs.append(np.zeros((cells, cells), np.uint8))
            continue
        view, centre, side = random_view(samples[index], cfg, rng)
        heat, disc = targets(centre, side, cfg.size, cfg.sigma)
        views.append(view)
        heats.append(heat)
        discs.append(disc)
    x = torch.from_numpy(np.stack(views)).permute(0, 3, 1, 2).float().div_(255)
    return (x.contiguous(memory_format=torch.channels_last), torch.from_numpy(np.stack(heats)),
            torch.from_numpy(np.stack(discs)).float().div_(255))


def build_model(cfg: HeadsConfig) -> PoseNet:
    return PoseNet(1, cfg.widths, cfg.decoder)


@dataclass
class ValidationView:
    image: np.ndarray
    head: HeadBox  # in the view's pixels


def validation_views(samples: list[HeadSample], size: int) -> list[ValidationView]:
    """Held-out photos as the tool shows them to the locator (its letterbox), with their labels moved along."""
    views = []
    for sample in samples:
        image, matrix = letterbox(sample.image, size)
        cx, cy = matrix @ np.array([sample.head.cx, sample.head.cy, 1.0])
        views.append(ValidationView(image, HeadBox(cx, cy, sample.head.side * matrix[0, 0], 1.0)))
    return views


@torch.no_grad()
def predict(model: PoseNet, images: np.ndarray, device: torch.device) -> list[HeadBox]:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255).to(device)
    out = model(x.contiguous(memory_format=torch.channels_last)).float().cpu()
    return [decode_head(o[0].numpy(), torch.sigmoid(o[1]).numpy(), STRIDE) for o in out]


def evaluate(model: PoseNet, views: list[ValidationView], device: torch.device) -> dict[str, float]:
    """``hit``: share of heads whose centre is within a quarter of the labelled side; ``size_error``: mean
    |log(side / labelled side)|."""
    was_training = model.training
    model.eval()
    hits, size_errors = [], []
    for start in range(0, len(views), 32):
        chunk = views[start:start + 32]
        for view, head in zip(chunk, predict(model, np.stack([v.image for v in chunk]), device)):
            truth = view.head
            hits.append(math.hypot(head.cx - truth.cx, head.cy - truth.cy) <= 0.25 * truth.side)
            size_errors.append(abs(math.log(max(head.side, 1e-3) / truth.side)))
    model.train(was_training)
    return {"hit": float(np.mean(hits)), "size_error": float(np.mean(size_errors))}


def draw_box(image: np.ndarray, head: HeadBox, colour: tuple[int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = (int(round(v)) for v in head.square())
    canvas = image.copy()
    cv2.rectangle(canvas, (x0, y0), (x1, y1), colour, 1)
    cv2.circle(canvas, (int(head.cx), int(head.cy)), 2, colour, -1)
    return canvas


class HeadsTraining(engine.Family):
    """The locator on the pose loss (weighted centre-heatmap MSE, head-disc BCE) from labels made at setup."""

    task = TASK
    run_defining = ("size", "widths", "decoder", "sigma", "batch", "lr", "warmup", "mask_weight", "seed",
                    "val_images", "cam_threshold", "head_scale", "min_probability", "others", "negatives")

    def setup(self, state: dict[str, Any] | None) -> dict[str, Any]:
        cfg, run = self.cfg, self.run
        folders = [list_images(Path(cfg.domain_a)), list_images(Path(cfg.domain_b))]
        if not all(folders):
            raise ValueError("both folders need photos: the locator learns what tells the two animals apart")
        labels_path = run.run_dir / LABELS_FILE
        if labels_path.is_file():
            labels = json.loads(labels_path.read_text())
        else:
            # made once per run and kept beside its checkpoints: AlexNet over every photo takes minutes on a CPU
            others = [list_images(Path(cfg.others))] if cfg.others else []
            labels = label_heads(cfg, folders + others, run.events)
            if run.dist.main:
                tmp = labels_path.with_suffix(".tmp")
                tmp.write_text(json.dumps(labels))
                tmp.replace(labels_path)
        train, held = [], []
        for paths in folders:
            kept, val = split_validation(paths, cfg.val_images)
            train += kept
            held += val
        self.train_samples = self._samples(train, labels["heads"])
        self.views = validation_views(self._samples(held, labels["heads"]), cfg.size)
        self.others: list[np.ndarray] = []
        if cfg.others and cfg.negatives > 0:
            for path in list_images(Path(cfg.others)):
                try:
                    self.others.append(load_rgb(path))
                except Exception as exc:
                    run.events.emit("warning", message=f"skipped {path}: {exc}")
        self.model = build_model(cfg).to(run.device, memory_format=torch.channels_last)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=1e-4)
        self.track(model=self.model, optimizer=self.optimizer)
        self.best = state["best"] if state is not None else {"hit": -1.0, "step": 0}
        rank = run.dist.rank
        self.rng = np.random.default_rng(cfg.seed if rank == 0 else [cfg.seed, rank, run.step])
        if state is not None and rank == 0:
            self.rng.bit_generator.state = state["data_rng"]
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(s, cfg),
                                                           last_epoch=run.step - 1)
        self.model.train()
        return {"train_images": len(self.train_samples), "val_images": len(self.views),
                "probe_accuracy": labels["probe_accuracy"], "params": sum(p.numel() for p in self.model.parameters())}

    def _samples(self, paths: list[Path], heads: dict[str, list[float]]) -> list[HeadSample]:
        samples = []
        for path in paths:
            head = heads.get(str(path))
            if head is not None and head[3] >= self.cfg.min_probability:
                samples.append(HeadSample(load_rgb(path), HeadBox(*head)))
        return samples

    def batches(self) -> Iterator[tuple[torch.Tensor, ...]]:
        while True:
            indices = self.rng.choice(len(self.train_samples), self.cfg.batch, replace=False)
            yield make_batch(self.train_samples, indices, self.cfg, self.rng, self.others)

    def train_step(self, batch: tuple[torch.Tensor, ...]) -> dict[str, float]:
        run = self.run
        x, heat, disc = (t.to(run.device) for t in batch)
        with run.precision.autocast():
            output = run.trained(self.model)(x)
        ones = torch.ones(x.shape[0], 1, device=run.device)
        loss, parts = pose_loss(output.float(), heat, ones, disc, ones[:, 0].bool(), self.cfg.mask_weight)
        run.update(loss, self.optimizer)
        run.precision.update()
        self.scheduler.step()
        return {"heatmap": parts["heatmap"], "disc": parts["mask"]}

    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def validate(self) -> dict[str, Any] | None:
        if not self.views:
            return None
        scores = evaluate(self.model, self.views, self.run.device)
        if scores["hit"] > self.best["hit"]:
            self.best = {"step": self.run.step, **scores}
            ckpt.save_weights(self.model, self.run.run_dir / BEST_WEIGHTS)
        return {**scores, "best_hit": self.best["hit"], "best_step": self.best["step"]}

    def sample(self, path: Path) -> Path | None:
        """Labels (green) and the locator's boxes (red) on held-out photos."""
        if not self.views:
            return None
        chunk = self.views[:: max(1, len(self.views) // 8)][:8]
        self.model.eval()
        found = predict(self.model, np.stack([v.image for v in chunk]), self.run.device)
        self.model.train()
        tiles = [draw_box(draw_box(v.image, v.head, (0, 200, 0)), h, (230, 0, 0)) for v, h in zip(chunk, found)]
        return save_grid(torch.from_numpy(np.concatenate(tiles, axis=1)).permute(2, 0, 1).float() / 255, path)

    def state(self) -> dict[str, Any]:
        return {"data_rng": self.rng.bit_generator.state, "best": self.best}

    def done_fields(self) -> dict[str, Any]:
        return {"best": self.best}


def write_head_crops(folder: Path, out: Path, size: int, context: float, locator: str,
                     events: EventWriter) -> dict[str, int]:
    """Each photo's head, found by ``locator`` and cropped as the Translate tool crops it (``context`` times its
    side, edges filled), at ``size`` px into ``out`` as PNG (written atomically; photos already done are kept, so a
    stopped run continues). Photos with no head found and broken files are reported and skipped."""
    from ganstudio.atomic import atomic_output
    from ganstudio.imaging.color import resize
    from ganstudio.tools.heads import locate_head
    from ganstudio.tools.translate import head_square, square_crop

    out.mkdir(parents=True, exist_ok=True)
    counts = {"written": 0, "kept": 0, "no_head": 0, "broken": 0}
    for path in list_images(folder):
        target = out / f"{path.stem}.png"
        if target.exists():
            counts["kept"] += 1
            continue
        try:
            rgb = load_rgb(path)
        except Exception as exc:
            events.emit("warning", message=f"skipped {path}: {exc}")
            counts["broken"] += 1
            continue
        head = locate_head(rgb, locator)
        if head is None:
            events.emit("warning", message=f"no head found in {path}")
            counts["no_head"] += 1
            continue
        x0, y0, side = head_square(head, context)
        crop = resize(square_crop(rgb, x0, y0, side), (size, size), "area" if side > size else "bicubic")
        encoded, data = cv2.imencode(".png", np.ascontiguousarray(crop[..., ::-1]))
        if not encoded:
            raise OSError(f"could not encode the crop of {path}")
        with atomic_output(target) as tmp:
            tmp.write_bytes(data.tobytes())
        counts["written"] += 1
    events.emit("done", **counts)
    return counts


def train(cfg: HeadsConfig, resume: bool = False, events: EventWriter | None = None) -> int:
    return engine.train(HeadsTraining, cfg, resume, events)


def export(run_dir: Path, weights_path: Path, name: str, title: str, machine: str, use_best: bool = True,
           metrics: dict[str, Any] | None = None) -> Path:
    state = ckpt.load_latest(run_dir)
    cfg = HeadsConfig.from_dict(state["config"])
    model = build_model(cfg)
    used_best = load_weights_for_export(model, run_dir, state, "model", use_best)
    validation = state["best"] if used_best else {"step": state["step"]}
    labels = json.loads((Path(run_dir) / LABELS_FILE).read_text())
    classes = f"{Path(cfg.domain_a).name}, {Path(cfg.domain_b).name}" + (" and other photos" if cfg.others else "")
    card = {
        "name": name, "title": title, "task": TASK, "scale": 1,
        "architecture": {"name": "posenet", "params": {"joints": 1, "widths": list(cfg.widths),
                                                       "decoder": cfg.decoder}},
        "multiple_of": model.multiple_of, "supports_half": True, "supports_bf16": True, "tiling": False,
        "input": {"size": cfg.size, "stride": STRIDE,
                  "outputs": "the head centre's heatmap, then a head-disc logit; the photo letterboxed on grey"},
        "recipe": "training/heads/README.md",
        "data": {"folders": [cfg.domain_a, cfg.domain_b], "licence": LICENCE},
        "training": {"labels": f"class-activation maps of a softmax probe over {classes} on the frozen ImageNet "
                               f"AlexNet's conv3-5 (accuracy {labels['probe_accuracy']:.3f} on its photos), the "
                               f"evidence against every other class above {cfg.cam_threshold:g} of its peak, side "
                               f"x{cfg.head_scale:g}; photos under {cfg.min_probability:g} left out",
                     "negatives": f"{cfg.negatives:g} of the views from {cfg.others}, no head" if cfg.others else 0,
                     "loss": "centre heatmap MSE weighted as pose's + head-disc BCE", "optimizer": "AdamW",
                     "batch": cfg.batch, "lr": cfg.lr, "lr_schedule": "cosine", "machine": machine,
                     "steps": validation["step"], "steps_run": state["step"],
                     "wall_time_s": round(state["wall_time_s"]),
                     "validation": {"held_out_photos": 2 * cfg.val_images,
                                    **{k: v for k, v in validation.items() if k != "step"}}},
        "metrics": metrics or {},
    }
    return ckpt.export_safetensors(model, Path(weights_path), card)
