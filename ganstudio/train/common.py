"""Pieces every training loop shares: opening or resuming a run, stopping cleanly on a signal, and holding out
validation files."""
from __future__ import annotations

import contextlib
import json
import math
import signal
import time
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Callable, ContextManager, Sequence, TypeVar

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file

from ganstudio.imaging import write_image
from ganstudio.train import checkpoint as ckpt
from ganstudio.train.events import EventWriter
from ganstudio.train.lpips import LPIPS, weights_path

#: The best-validating weights of a run, kept beside its checkpoints for export.
BEST_WEIGHTS = "best.safetensors"

Config = TypeVar("Config")


def open_run(cfg: Config, resume: bool, events: EventWriter,
             run_defining: tuple[str, ...]) -> tuple[Config, dict[str, Any] | None, Path]:
    """Create the run folder and, with ``resume``, load its latest checkpoint.

    The settings named in ``run_defining`` (what is being trained) then come from the checkpoint, with a warning
    for each one the command line tried to change; the rest (length, cadence, threads, data) from ``cfg``.
    A fresh run is seeded from ``cfg.seed``. Returns the effective config, the checkpoint state or None, and the folder.
    """
    torch.set_num_threads(cfg.threads)
    run_dir = Path(cfg.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] | None = None
    if resume:
        latest = ckpt.latest_checkpoint(run_dir)
        if latest is None:
            events.emit("warning", message=f"--resume: no checkpoint in {run_dir}, starting from scratch")
        else:
            state = ckpt.load_checkpoint(latest)
            saved = type(cfg).from_dict(state["config"])
            kept = [name for name in run_defining if getattr(cfg, name) != getattr(saved, name)]
            if kept:
                events.emit("warning", message="resuming: the checkpoint's settings are kept for " + ", ".join(kept))
            cfg = replace(cfg, **{name: getattr(saved, name) for name in run_defining})
            events.emit("resume", path=str(latest), step=state["step"])
    if state is None:
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
    return cfg, state, run_dir


class StopRequest:
    """Turns SIGTERM/SIGINT into a flag checked between steps, so the run checkpoints before it exits."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


#: ``--precision`` of the training loops.
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
_PRECISION_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


class Precision:
    """Mixed precision of a training loop: bf16 or fp16 autocast on CUDA (fp16 with a gradient scaler), ``auto``
    taking bf16 where the GPU has it and fp16 elsewhere. The CPU always trains in fp32: bf16 autocast measured
    ~50x slower than fp32 on the project's CPU (shared/TRAINING.md); asking for less there is a warning, not an
    error, so one command line serves both. ``fp32`` is the plain loop: no autocast, no scaler.

    The loop calls ``backward(loss)`` and ``step(optimizer)`` for each optimizer, and ``update()`` once a step.
    """

    def __init__(self, precision: str, device: torch.device, events: EventWriter | None = None) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}: use {', '.join(PRECISIONS)}")
        self.device_type = device.type
        self.dtype = torch.float32
        if device.type == "cuda" and precision != "fp32":
            has_bf16 = torch.cuda.is_bf16_supported()
            if precision == "bf16" and not has_bf16 and events is not None:
                events.emit("warning", message="this GPU has no bf16: training in fp16 instead")
            self.dtype = torch.bfloat16 if precision in ("bf16", "auto") and has_bf16 else torch.float16
        elif precision in ("bf16", "fp16") and events is not None:
            events.emit("warning", message=f"{precision} applies on a CUDA GPU only: training on the {device.type} "
                                           "in fp32")
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype == torch.float16 else None

    @property
    def name(self) -> str:
        return _PRECISION_NAMES[self.dtype]

    def autocast(self) -> ContextManager[Any]:
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)  # skipped when the scaled gradients overflowed

    def update(self) -> None:
        if self.scaler is not None:
            self.scaler.update()

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps: the gradient scale of an fp16 run (nothing otherwise)."""
        return {} if self.scaler is None else {"scaler": self.scaler.state_dict()}

    def load_state(self, state: dict[str, Any]) -> None:
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two RGB tensors in [0, 1] (all channels; capped at 100 dB for identical images)."""
    mse = (a.float() - b.float()).pow(2).mean().item()
    return 10 * math.log10(1 / max(mse, 1e-10))


def load_lpips(events: EventWriter, device: torch.device) -> LPIPS | None:
    """The LPIPS network for a perceptual loss and validation, or None (with a warning event) when its weights
    are not there: a loop then trains on its pixel losses alone."""
    path = weights_path()
    if not path.is_file():
        events.emit("warning", message=f"{path} not found: training without the perceptual loss and "
                                       "validating without LPIPS")
        return None
    return LPIPS(path).to(device)


def run_task(run_dir: Path) -> str | None:
    """The ``task`` a run's ``config.json`` names (the loops that write one), or None."""
    try:
        return json.loads((Path(run_dir) / "config.json").read_text()).get("task")
    except (OSError, ValueError, AttributeError):
        return None


def split_validation(paths: list[Path], count: int) -> tuple[list[Path], list[Path]]:
    """Every k-th file is held out, so validation spans the folder's sources rather than one of them."""
    if count <= 0 or len(paths) < 2 * count:
        return paths, []
    stride = len(paths) // count
    held = set(range(stride // 2, stride * count, stride))
    return [p for i, p in enumerate(paths) if i not in held], [p for i, p in enumerate(paths) if i in held]


def save_grid(grid: torch.Tensor, path: Path) -> Path:
    """Write a C x H x W image tensor in [0, 1] as a PNG sample grid, atomically (the GUI may be reading it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = grid.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).contiguous().numpy()
    return write_image(path, pixels, overwrite=True)


def save_rows(rows: Sequence[torch.Tensor], path: Path) -> Path:
    """Write C x H x W rows of different widths one under the other, padded right with black (:func:`save_grid`)."""
    width = max(row.shape[2] for row in rows)
    return save_grid(torch.cat([nn.functional.pad(row, (0, width - row.shape[2])) for row in rows], dim=1), path)


def centre_square(image: np.ndarray, largest: int, multiple: int) -> np.ndarray:
    """The centred square of ``image`` at most ``largest`` px, its side a multiple of ``multiple`` (validation:
    the same crop every time, of a size the network takes)."""
    height, width = image.shape[:2]
    side = min(height, width, largest) // multiple * multiple
    top, left = (height - side) // 2, (width - side) // 2
    return image[top : top + side, left : left + side]


_SHARED_PHOTOS_LICENCE = ("Trained on research datasets (BSDS500 train+test, an ImageNet one-per-class sample, "
                          "Sun-Hays80): non-commercial research terms apply to these weights.")


def data_licence(data: str | Sequence[str], init: str | Sequence[str] = "") -> str:
    """What the card says about the terms of the training data: the project's shared photos carry research
    licences; a user's own folders carry whatever terms their images have, plus those of the weights it started
    from (``init``: one weights file, or several, as a CycleGAN's two generators)."""
    folders = [Path(data)] if isinstance(data, str) else [Path(d) for d in data]
    if len(folders) == 1 and folders[0].parts[-3:] == ("shared", "data", "photos"):
        text = _SHARED_PHOTOS_LICENCE
    else:
        text = (f"Trained on the images in {' and '.join(str(f) for f in folders)}: the terms of those images apply "
                "to these weights.")
    for start in [init] if isinstance(init, str) else init:
        if not start:
            continue
        init_card = Path(start).with_suffix(".json")
        try:
            init_terms = json.loads(init_card.read_text(encoding="utf-8"))["data"]["licence"]
        except (OSError, ValueError, KeyError, TypeError):
            init_terms = "see its model card"
        # a fine-tune of a fine-tune: its own "Fine-tuned from" tail does not make the terms different
        same = init_terms.split(" Fine-tuned from ")[0] == text.split(" Fine-tuned from ")[0]
        text += f" Fine-tuned from {Path(start).name} ({'the same terms' if same else init_terms})"
    return text


def load_matching(model: nn.Module, path: str | Path) -> tuple[list[str], list[str]]:
    """Start ``model`` from the tensors of ``path`` whose name and shape match (a ×4 model's body for a ×2 model,
    say); the rest keep their fresh initialisation. Returns (taken, fresh) parameter names. Raises ValueError when
    nothing matches, which means the file is for another architecture altogether."""
    source = load_file(str(path))
    own = model.state_dict()
    taken = {name: tensor for name, tensor in source.items() if name in own and own[name].shape == tensor.shape}
    if not taken:
        raise ValueError(f"{path}: none of its tensors fit this model")
    model.load_state_dict(taken, strict=False)
    return sorted(taken), sorted(set(own) - set(taken))


def load_weights_for_export(model: nn.Module, run_dir: Path, state: dict[str, Any], key: str, use_best: bool) -> bool:
    """Load the run's best-validating weights into ``model`` when asked and present, else the checkpoint's
    ``state[key]``; True when the best ones were used."""
    best_file = Path(run_dir) / BEST_WEIGHTS
    if use_best and best_file.exists():
        model.load_state_dict(load_file(str(best_file)))
        return True
    model.load_state_dict(state[key])
    return False


class RunClock:
    """A run's step and training wall time (both carried across resumes in its checkpoints) and the step last
    checkpointed: the bookkeeping around every loop's steps."""

    def __init__(self, total: int, step: int = 0, wall_time: float = 0.0) -> None:
        self.total, self.step, self.wall_time = total, step, wall_time
        self.saved_step = step
        self._last_tick = time.perf_counter()

    def start(self) -> None:
        """Start timing: the setup before the first step is not training time."""
        self._last_tick = time.perf_counter()

    def due(self, every: int) -> bool:
        """Whether a thing done every ``every`` steps, and at the last one, is due at this step; 0 = never."""
        return every > 0 and (self.step % every == 0 or self.step == self.total)

    def tick(self) -> None:
        now = time.perf_counter()
        self.wall_time += now - self._last_tick
        self._last_tick = now

    @property
    def at_end(self) -> bool:
        return self.step >= self.total

    def end_step(self, stop: StopRequest, save: Callable[[], None], checkpoint_every: int) -> bool:
        """Count the step's time, checkpoint when due (a checkpoint then holds the time of the step it stores);
        True when the loop should leave its data loop: the run is at its end or asked to stop."""
        self.tick()
        if self.due(checkpoint_every):
            save()
        return self.at_end or stop.requested

    def finish(self, stop: StopRequest, save: Callable[[], None], events: EventWriter, **done: Any) -> int:
        """Checkpoint a stopped run where it stopped (unless that step is saved already), send ``done``; returns
        the loop's exit code, 0."""
        if stop.requested and self.saved_step != self.step:
            save()
        events.emit("done", step=self.step, total=self.total, stopped=stop.requested, wall_time_s=self.wall_time,
                    **done)
        return 0


def losses_finite(values: dict[str, float], step: int, events: EventWriter) -> bool:
    """False, after an error event that says what to do, when a loss has become inf or NaN: the loop must stop
    before the next checkpoint stores the broken weights."""
    if all(math.isfinite(v) for v in values.values()):
        return True
    events.error(f"a loss became non-finite at step {step} ({values}); resume from the last checkpoint with a "
                 "lower --lr")
    return False


class LossWindow:
    """The losses' running means since the last ``step`` event, sent every ``every`` steps and at the last one, with
    the rate over that window; what every loop reports to the wizard's curve and speed figures."""

    def __init__(self, events: EventWriter, every: int, total: int) -> None:
        self.events, self.every, self.total = events, every, total
        self._sums: dict[str, float] = {}
        self._count = 0
        self._start = time.perf_counter()

    def add(self, step: int, losses: dict[str, float], lr: float) -> dict[str, float] | None:
        """Count one step's losses; returns the means when this step sent an event, else None."""
        for name, value in losses.items():
            self._sums[name] = self._sums.get(name, 0.0) + value
        self._count += 1
        if step % self.every and step != self.total:
            return None
        means = {name: total / self._count for name, total in self._sums.items()}
        self.events.step(step, self.total, means, lr, self._count / max(time.perf_counter() - self._start, 1e-9))
        self._sums, self._count, self._start = {}, 0, time.perf_counter()
        return means


class RunConfig:
    """What the loops' config dataclasses share: the checkpoint round trip and the common range checks."""

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Any:
        """From a checkpoint's saved config; keys this version does not know are dropped."""
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})  # type: ignore[arg-type]

    def require(self, at_least_one: Sequence[str] = (), at_least_zero: Sequence[str] = ()) -> None:
        """Raise ValueError naming the first field out of range; ``precision``, when the config has it, must be
        one of :data:`PRECISIONS`."""
        for name in at_least_one:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        for name in at_least_zero:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, not {getattr(self, name)}")
        precision = getattr(self, "precision", None)
        if precision is not None and precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")


def tile(images: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W -> one 3 x (rows * H) x (columns * W) grid, as square as N allows; empty cells are black."""
    count, channels, height, width = images.shape
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    cells = torch.zeros(rows * columns, channels, height, width, dtype=images.dtype)
    cells[:count] = images
    return cells.view(rows, columns, channels, height, width).permute(2, 0, 3, 1, 4).reshape(
        channels, rows * height, columns * width)


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for averaged, current in zip(ema.parameters(), model.parameters()):
        averaged.lerp_(current, 1.0 - decay)
    # batch-norm running statistics are themselves averages: copied, not averaged again
    for averaged, current in zip(ema.buffers(), model.buffers()):
        averaged.copy_(current)


def ema_decay_at(step: int, decay: float) -> float:
    """The average's decay ramps up over the first steps, so a short run's average is not its random start."""
    return min(decay, (1 + step) / (10 + step))
