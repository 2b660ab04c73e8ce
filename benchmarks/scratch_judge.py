"""The second cat-vs-dog judge: a small CNN trained from scratch on the training folders, sharing no weights with
anything a translator learnt from (the first judge and the projected discriminators use the ImageNet AlexNet).

Photos are seen as the first judge sees them (short side to the judge's size, centre square); training adds random
crops, mirror images and colour changes. A tenth of the training folders is held out to pick the epoch. The judge is
cached outside the repository, keyed by the file list and :data:`RECIPE`, and never shipped.

    python benchmarks/scratch_judge.py        # train (or load) and print its accuracy on ../shared/eval/cat2dog
"""
from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ganstudio.imaging.color import resize
from ganstudio.train.data import list_images, load_rgb

RECIPE = "scratch cnn 32-64-128-192, 64 px centre square, crops+flips+colour, AdamW 2e-3 one-cycle, 10 epochs, v1"
SIZE = 64
EPOCHS = 10
REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEFAULT_CACHE = (Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ganstudio-bench" /
                 "cat_dog_scratch_judge.pt")


def view(rgb: np.ndarray, side: int = SIZE + 8) -> np.ndarray:
    """Short side to ``side``, centre square: side x side x 3 uint8."""
    height, width = rgb.shape[:2]
    factor = side / min(height, width)
    size = (max(side, round(width * factor)), max(side, round(height * factor)))
    image = resize(rgb, size, "area" if factor < 1 else "bicubic")
    top, left = (size[1] - side) // 2, (size[0] - side) // 2
    return np.ascontiguousarray(image[top:top + side, left:left + side])


class ScratchJudge(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for width in (32, 64, 128, 192):
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(True),
                       nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(True),
                       nn.MaxPool2d(2)]
            channels = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logit of "dog" for N x 3 x H x W RGB in [0, 1]."""
        return self.head(self.features(x - 0.5).mean(dim=(2, 3)))[:, 0]

    @torch.no_grad()
    def prob_dog(self, photos: list[np.ndarray]) -> np.ndarray:
        """Averaged over the centre crop and its mirror image."""
        self.eval()
        margin = 4
        x = torch.from_numpy(np.stack([view(p)[margin:margin + SIZE, margin:margin + SIZE] for p in photos]))
        x = x.permute(0, 3, 1, 2).float().div(255)
        logits = (self(x) + self(x.flip(3))) / 2
        return torch.sigmoid(logits).numpy()

    def classify(self, photos: list[np.ndarray]) -> np.ndarray:
        """0 = cat, 1 = dog."""
        return (self.prob_dog(photos) >= 0.5).astype(int)


def _batches(views: np.ndarray, labels: np.ndarray, batch: int, rng: np.random.Generator):
    order = rng.permutation(len(views))
    for start in range(0, len(order) - batch + 1, batch):
        index = order[start:start + batch]
        tops, lefts = rng.integers(0, 9, len(index)), rng.integers(0, 9, len(index))
        crops = np.stack([views[i, t:t + SIZE, left:left + SIZE] for i, t, left in zip(index, tops, lefts)])
        x = torch.from_numpy(crops).permute(0, 3, 1, 2).float().div(255)
        flip = torch.from_numpy(rng.random(len(index)) < 0.5)
        x[flip] = x[flip].flip(3)
        x = x * torch.from_numpy(rng.uniform(0.8, 1.2, (len(index), 3, 1, 1))).float()
        yield x.clamp(0, 1), torch.from_numpy(labels[index]).float()


def _key(paths: list[Path]) -> str:
    digest = hashlib.sha256(RECIPE.encode())
    for path in paths:
        digest.update(f"{path.parent.name}/{path.name}:{path.stat().st_size}\n".encode())
    return digest.hexdigest()


def train_judge(data_root: Path, log: Callable[[str], None]) -> tuple[ScratchJudge, float]:
    paths = list_images(data_root / "cats") + list_images(data_root / "dogs")
    labels = np.array([p.parent.name == "dogs" for p in paths], np.int64)
    views = np.stack([view(load_rgb(p)) for p in paths])
    held = np.zeros(len(paths), bool)
    held[np.random.default_rng(0).permutation(len(paths))[: len(paths) // 10]] = True
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    judge = ScratchJudge().to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(judge.parameters(), lr=2e-3, weight_decay=5e-4)
    steps = EPOCHS * (int((~held).sum()) // 32)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, 2e-3, total_steps=steps)
    best, best_state = -1.0, None
    held_photos = [views[i] for i in np.nonzero(held)[0]]
    for epoch in range(EPOCHS):
        started = time.perf_counter()
        judge.train()
        for x, y in _batches(views[~held], labels[~held], 32, rng):
            loss = F.binary_cross_entropy_with_logits(judge(x.contiguous(memory_format=torch.channels_last)), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
        accuracy = float((judge.classify(held_photos) == labels[held]).mean())
        log(f"scratch judge: epoch {epoch + 1}: accuracy on the 10 % split {accuracy:.3f} "
            f"({time.perf_counter() - started:.0f} s)")
        if accuracy > best:
            best, best_state = accuracy, {k: v.clone() for k, v in judge.state_dict().items()}
    judge.load_state_dict(best_state)
    return judge, best


def load_or_train(data_root: Path, cache: Path, log: Callable[[str], None]) -> ScratchJudge:
    key = _key(list_images(data_root / "cats") + list_images(data_root / "dogs"))
    if cache.is_file():
        saved = torch.load(cache, weights_only=True)
        if saved.get("key") == key:
            judge = ScratchJudge()
            judge.load_state_dict(saved["state"])
            log(f"scratch judge: cached {cache}")
            return judge
    judge, accuracy = train_judge(data_root, log)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.tmp")
    torch.save({"key": key, "state": judge.state_dict(), "split_accuracy": accuracy}, tmp)
    tmp.replace(cache)
    log(f"scratch judge: saved {cache}")
    return judge


def main() -> int:
    torch.set_num_threads(2)
    judge = load_or_train(SHARED / "data", DEFAULT_CACHE, lambda m: print(m, file=sys.stderr, flush=True))
    for label, name in enumerate(("cats", "dogs")):
        photos = [load_rgb(p) for p in list_images(SHARED / "eval" / "cat2dog" / name)]
        print(f"{name} called {name[:-1]}: {float((judge.classify(photos) == label).mean()):.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
