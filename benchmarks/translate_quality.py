"""Cat <-> dog translation quality on the held-out ``../shared/eval/cat2dog``: success, structure kept and speed.

- success: the share of translated held-out cats that a cat-vs-dog judge calls "dog" (and dogs called "cat");
- structure: the mean LPIPS (AlexNet) between each input and its translation (lower = closer to the input);
- speed: seconds per 256x256 and per 1024x1024 photo through the translate tool, the model running at that size;
- baseline, measured in the same run: the success of the untranslated photos brought down to the model's working
  size and back, i.e. what the resampling blur alone earns (the judge calls blurred dogs "cat" more often).

The judge is a logistic-regression probe on pooled frozen ImageNet AlexNet features (the LPIPS weights), trained
only on ``../shared/data/{cats,dogs}`` and kept here, never in the app. It is cached outside the repository
(``~/.cache/ganstudio-bench/``) and retrained when the training file list or this recipe changes. Its own accuracy
on the untranslated held-out photos is printed first: a success rate means little beyond it.

    python benchmarks/translate_quality.py                       # cat2dog / dog2cat from the model registry
    python benchmarks/translate_quality.py --weights run/export/cat2dog.safetensors --json metrics.json
    python benchmarks/translate_quality.py --judge-only
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ganstudio.engine import run_rgb_model
from ganstudio.imaging.color import resize
from ganstudio.models import UnknownModelError, get_registry
from ganstudio.models.registry import descriptor_from_card
from ganstudio.tools.base import working_shape
from ganstudio.tools.translate import TranslateParams, model_working_size
from ganstudio.tools.translate import run as translate
from ganstudio.train.data import list_images, load_rgb
from ganstudio.train.lpips import LPIPS, AlexNetFeatures

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scratch_judge  # noqa: E402  (the second judge, beside this script)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ganstudio-bench" / "cat_dog_judge.npz"
#: Changing anything in the judge's recipe must change this, so a cached judge of another recipe is not reused.
JUDGE_RECIPE = "alexnet conv3-5 avg+max pool, 160 px centre crop + flip, logistic regression, L2 by 10% split, v1"
JUDGE_SIZE = 160
CLASSES = ("cat", "dog")
#: The direction each model name stands for: its source class and the class a success is called.
DIRECTIONS = {"cat2dog": ("cat", "dog"), "dog2cat": ("dog", "cat")}


def _judge_view(rgb: np.ndarray) -> torch.Tensor:
    """Short side to the judge's size, then the centre square: 1 x 3 x S x S in [0, 1]."""
    height, width = rgb.shape[:2]
    factor = JUDGE_SIZE / min(height, width)
    size = (max(JUDGE_SIZE, round(width * factor)), max(JUDGE_SIZE, round(height * factor)))
    image = resize(rgb, size, "area" if factor < 1 else "bicubic")
    top, left = (size[1] - JUDGE_SIZE) // 2, (size[0] - JUDGE_SIZE) // 2
    crop = image[top : top + JUDGE_SIZE, left : left + JUDGE_SIZE]
    return torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[None].float().div(255)


@torch.no_grad()
def features(backbone: AlexNetFeatures, images: list[np.ndarray]) -> np.ndarray:
    """Average- and max-pooled conv3-5 activations, averaged over the photo and its mirror image."""
    rows = []
    for rgb in images:
        x = _judge_view(rgb)
        x = torch.cat([x, x.flip(3)])
        pooled = []
        for fmap in backbone(x)[2:]:
            pooled += [fmap.mean(dim=(2, 3)), fmap.amax(dim=(2, 3))]
        rows.append(torch.cat(pooled, dim=1).mean(0).numpy())
    return np.stack(rows)


@dataclass
class Judge:
    mean: np.ndarray
    std: np.ndarray
    weight: np.ndarray
    bias: float
    key: str

    def prob_dog(self, feats: np.ndarray) -> np.ndarray:
        z = ((feats - self.mean) / self.std) @ self.weight + self.bias
        return 1.0 / (1.0 + np.exp(-z))

    def classify(self, feats: np.ndarray) -> np.ndarray:
        """0 = cat, 1 = dog."""
        return (self.prob_dog(feats) >= 0.5).astype(int)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.npz")
        np.savez(tmp, mean=self.mean, std=self.std, weight=self.weight, bias=self.bias, key=self.key)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Judge:
        with np.load(path) as data:
            return cls(data["mean"], data["std"], data["weight"], float(data["bias"]), str(data["key"]))


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    xt, yt = torch.from_numpy(x).double(), torch.from_numpy(y).double()
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], max_iter=500, tolerance_grad=1e-9, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(xt @ w + b, yt) + l2 * w.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return w.detach().numpy(), float(b.detach())


def _key(paths: list[Path]) -> str:
    digest = hashlib.sha256(JUDGE_RECIPE.encode())
    for path in paths:
        digest.update(f"{path.parent.name}/{path.name}:{path.stat().st_size}\n".encode())
    return digest.hexdigest()


def train_judge(backbone: AlexNetFeatures, data_root: Path, log: Callable[[str], None]) -> Judge:
    """Fit on the training folders only; the L2 weight is chosen on a 10 % split of them, then refit on all."""
    paths = {name: list_images(data_root / f"{name}s") for name in CLASSES}
    feats, labels = [], []
    for label, name in enumerate(CLASSES):
        started = time.perf_counter()
        feats.append(features(backbone, [load_rgb(p) for p in paths[name]]))
        labels.append(np.full(len(paths[name]), label, np.float64))
        log(f"judge: {len(paths[name])} {name} photos -> features in {time.perf_counter() - started:.0f} s")
    x, y = np.concatenate(feats).astype(np.float64), np.concatenate(labels)
    mean, std = x.mean(0), x.std(0) + 1e-6
    xs = (x - mean) / std
    held = np.zeros(len(y), bool)
    held[np.random.default_rng(0).permutation(len(y))[: len(y) // 10]] = True
    best = None
    for l2 in (1e-4, 1e-3, 1e-2, 1e-1):
        w, b = _fit_logistic(xs[~held], y[~held], l2)
        accuracy = float((((xs[held] @ w + b) >= 0) == y[held]).mean())
        log(f"judge: L2 {l2:g}: accuracy on the 10 % split of the training folders {accuracy:.3f}")
        if best is None or accuracy > best[0]:
            best = (accuracy, l2)
    w, b = _fit_logistic(xs, y, best[1])
    return Judge(mean, std, w, b, _key(paths["cat"] + paths["dog"]))


def load_or_train_judge(backbone: AlexNetFeatures, data_root: Path, cache: Path, log: Callable[[str], None]) -> Judge:
    paths = list_images(data_root / "cats") + list_images(data_root / "dogs")
    if cache.is_file():
        judge = Judge.load(cache)
        if judge.key == _key(paths):
            log(f"judge: cached {cache}")
            return judge
    judge = train_judge(backbone, data_root, log)
    judge.save(cache)
    log(f"judge: saved {cache}")
    return judge


def _model_names(weights: list[Path]) -> list[str]:
    """Models to measure: the given weight files (registered from their cards), else cat2dog / dog2cat if present."""
    registry = get_registry()
    for path in weights:
        registry.register(descriptor_from_card(path.with_suffix(".json"), "user"))
    if weights:
        return [json.loads(p.with_suffix(".json").read_text()).get("name", p.stem) for p in weights]
    names = []
    for name in DIRECTIONS:
        try:
            registry.get(name, "translate")
            names.append(name)
        except UnknownModelError:
            pass
    return names


def resampled(rgb: np.ndarray, short_side: int, multiple_of: int) -> np.ndarray:
    """``rgb`` brought to the working size and back by the tool's own pipeline with an identity in place of the
    model: the baseline."""
    size = working_shape(*rgb.shape[:2], short_side, multiple_of)
    return run_rgb_model(rgb, lambda batch: batch, multiple_of=multiple_of, model_size=size)


def _seconds(model: str, photo: np.ndarray, side: int, repeats: int) -> float | None:
    """Median seconds of the translate tool on a side x side photo with the model running at that size, or a head
    model at its own (None when ``repeats`` is 0: a quality-only run)."""
    if repeats <= 0:
        return None
    image = resize(photo, (side, side), "bicubic")
    # a head model runs at its own size on the head it finds (finding it and enlarging the result counted)
    head = get_registry().get(model, "translate").card.get("region") == "head"
    params = TranslateParams(model=model, working_size=0 if head else side)
    translate(image, params)  # warm-up: loading, first-call allocation
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        translate(image, params)
        times.append(time.perf_counter() - started)
    return round(float(np.median(times)), 3)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, action="append", default=[],
                        help="<name>.safetensors with its card beside it; the name says the direction (cat2dog)")
    parser.add_argument("--data-root", type=Path, default=SHARED / "data", help="holds cats/ and dogs/ (judge only)")
    parser.add_argument("--eval-root", type=Path, default=SHARED / "eval" / "cat2dog", help="holds cats/ and dogs/")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="the judge's cache file")
    parser.add_argument("--scratch-cache", type=Path, default=scratch_judge.DEFAULT_CACHE,
                        help="the second judge's cache file")
    parser.add_argument("--working-size", type=int, default=TranslateParams.working_size,
                        help="short side the models run at for the quality figures (default: each model's own)")
    parser.add_argument("--judge-only", action="store_true", help="train or load the judge and report its accuracy")
    parser.add_argument("--limit", type=int, help="translate only the first N held-out photos of each class "
                                                  "(a quick check; report figures from full runs)")
    parser.add_argument("--speed-repeats", type=int, default=3, help="0 = quality figures only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here, keyed by model name")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    backbone = AlexNetFeatures.load()
    judge = load_or_train_judge(backbone, args.data_root, args.cache, log)
    second = scratch_judge.load_or_train(args.data_root, args.scratch_cache, log)
    eval_photos = {name: [load_rgb(p) for p in list_images(args.eval_root / f"{name}s")] for name in CLASSES}
    results: dict[str, dict[str, float]] = {}
    accuracy = {name: float((judge.classify(features(backbone, photos)) == label).mean())
                for label, (name, photos) in enumerate(eval_photos.items())}
    results["judge"] = {"cats_called_cat": round(accuracy["cat"], 4), "dogs_called_dog": round(accuracy["dog"], 4),
                        "photos": sum(len(p) for p in eval_photos.values())}
    print(f"judge on the untranslated held-out photos: cats called cat {accuracy['cat']:.1%}, "
          f"dogs called dog {accuracy['dog']:.1%} ({results['judge']['photos']} photos)")
    accuracy = {name: float((second.classify(photos) == label).mean())
                for label, (name, photos) in enumerate(eval_photos.items())}
    results["scratch_judge"] = {"cats_called_cat": round(accuracy["cat"], 4),
                                "dogs_called_dog": round(accuracy["dog"], 4)}
    print(f"second judge (a CNN from scratch) on the same: cats called cat {accuracy['cat']:.1%}, "
          f"dogs called dog {accuracy['dog']:.1%}")

    if not args.judge_only:
        lpips = LPIPS()
        names = _model_names(args.weights)
        if not names:
            log("no cat2dog / dog2cat model in the registry: pass --weights")
        print(f"{'model':14} {'success':>8} {'2nd':>6} {'baseline':>8} {'2nd':>6} {'LPIPS':>7} {'s/256²':>8} "
              f"{'s/1024²':>8}")
        for name in names:
            # cat2dog, cat2dog@user, cat2dog-head: the direction is the name before any "@" or "-"
            source, target = DIRECTIONS.get(name.split("@")[0].split("-")[0], (None, None))
            if source is None:
                log(f"{name}: the name does not say its direction (cat2dog or dog2cat); skipped")
                continue
            params = TranslateParams(model=name, working_size=args.working_size)
            inputs = eval_photos[source][: args.limit]
            outputs = [_translated(photo, params) for photo in inputs]
            success = float((judge.classify(features(backbone, outputs)) == CLASSES.index(target)).mean())
            success_2nd = float((second.classify(outputs) == CLASSES.index(target)).mean())
            with torch.no_grad():
                distances = [float(lpips(_tensor(a), _tensor(b))) for a, b in zip(inputs, outputs)]
            photo = eval_photos[source][0]
            descriptor = get_registry().get(name, "translate")
            working_size = args.working_size or model_working_size(descriptor.card)
            # a head model changes the head alone: its baseline is the photos as they are
            blurred = (inputs if descriptor.card.get("region") == "head" else
                       [resampled(image, working_size, descriptor.multiple_of) for image in inputs])
            baseline = float((judge.classify(features(backbone, blurred)) == CLASSES.index(target)).mean())
            baseline_2nd = float((second.classify(blurred) == CLASSES.index(target)).mean())
            results[name] = {"success": round(success, 4), "baseline_success": round(baseline, 4),
                             "success_scratch_judge": round(success_2nd, 4),
                             "baseline_success_scratch_judge": round(baseline_2nd, 4),
                             "lpips": round(float(np.mean(distances)), 4),
                             "photos": len(inputs), "working_size": working_size,
                             "s_per_256": _seconds(name, photo, 256, args.speed_repeats),
                             "s_per_1024": _seconds(name, photo, 1024, args.speed_repeats)}
            row = results[name]
            speeds = " ".join(f"{'-' if row[key] is None else format(row[key], '.2f'):>8}"
                              for key in ("s_per_256", "s_per_1024"))
            print(f"{name:14} {row['success']:>8.1%} {row['success_scratch_judge']:>6.1%} "
                  f"{row['baseline_success']:>8.1%} {row['baseline_success_scratch_judge']:>6.1%} "
                  f"{row['lpips']:>7.3f} {speeds}", flush=True)
            if descriptor.card.get("region") == "head":
                # the judges on the head's square alone (twice the head's side, from the input's head): is the
                # face a dog's, whatever the body says
                heads = _head_squares(inputs, outputs)
                target_index = CLASSES.index(target)
                results[f"{name} (heads)"] = {
                    "photos": len(heads[0]),
                    "success": round(float((judge.classify(features(backbone, heads[1])) == target_index).mean()), 4),
                    "baseline_success": round(float((judge.classify(features(backbone, heads[0])) ==
                                                     target_index).mean()), 4),
                    "success_scratch_judge": round(float((second.classify(heads[1]) == target_index).mean()), 4),
                    "baseline_success_scratch_judge": round(float((second.classify(heads[0]) ==
                                                                   target_index).mean()), 4)}
                row = results[f"{name} (heads)"]
                print(f"{'  its heads':14} {row['success']:>8.1%} {row['success_scratch_judge']:>6.1%} "
                      f"{row['baseline_success']:>8.1%} {row['baseline_success_scratch_judge']:>6.1%} "
                      f"({row['photos']} heads found)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _translated(photo: np.ndarray, params: TranslateParams) -> np.ndarray:
    """The tool's output; a photo a head model finds no head in comes back as it was (and counts as a failure)."""
    try:
        return translate(photo, params)
    except ValueError as error:
        if "no cat's or dog's head" not in str(error):
            raise
        return photo


def _head_squares(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The square of twice the head's side about each input's head, cut from the input and from its output (photos
    where the locator finds no head are left out)."""
    from ganstudio.tools.heads import locate_head
    from ganstudio.tools.translate import head_square, square_crop

    before, after = [], []
    for image, translated in zip(inputs, outputs):
        head = locate_head(image)
        if head is not None:
            x0, y0, side = head_square(head, 2.0)
            before.append(square_crop(image, x0, y0, side))
            after.append(square_crop(translated, x0, y0, side))
    return before, after


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float().div(255)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
