"""The training engine: one driver for every model family, on one process or many (``torchrun``).

The driver owns the run: its folder and ``config.json``, resuming, device and precision, the step loop and its
cadences (log, validation, samples, checkpoints), stopping on a signal, the events, and across processes the
averaged gradients, per-rank random streams and rank 0 alone writing. A :class:`Family` supplies only what is its
own: its models and data (``setup``), one training step, validation, a sample picture and its part of the
checkpoint. The split follows BasicSR's model classes (``optimize_parameters`` per model kind, one training
script) and Lightning's ``training_step``, written small because GAN steps alternate two optimisers, which both
handle awkwardly.

Many processes: ``torchrun --nproc_per_node=N -m ganstudio train KIND ...`` runs N copies. Each builds the same
models (rank 0's weights are broadcast at the start); every module an optimiser steps is wrapped in
DistributedDataParallel for the training step (:meth:`Run.trained`), which averages its gradients during backward;
rank 0's buffers (batch-norm statistics, spectral-norm vectors) are given to all after each step; each rank draws
its own crops; the step's losses are averaged and a stop request shared, so all ranks log, stop and checkpoint at
the same step; rank 0 alone writes. Validation and sample pictures run on rank 0 through the bare modules.
"""
from __future__ import annotations

import inspect
import json
import math
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn as nn

from ganstudio.engine import resolve_device
from ganstudio.train import checkpoint as ckpt
from ganstudio.train.common import (BEST_WEIGHTS, LossWindow, Precision, RunClock, RunConfig, StopRequest,
                                    losses_finite, open_run)
from ganstudio.train.events import EventWriter


@dataclass(kw_only=True)
class RunSettings(RunConfig):
    """The run-level settings every family's config has; each family's dataclass adds its own (and may change a
    default by declaring the field again)."""

    threads: int = 2
    device: str = "auto"  # "auto" takes CUDA when present, so the same recipe runs on a lent GPU
    #: Autocast on CUDA (:class:`ganstudio.train.common.Precision`); the CPU always trains in fp32.
    precision: str = "fp32"
    seed: int = 0
    sample_every: int = 500
    checkpoint_every: int = 500
    log_every: int = 10
    keep_checkpoints: int = 3


class _Silent:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


class Distributed:
    """This process's place in a ``torchrun`` launch (``WORLD_SIZE``/``RANK``/``LOCAL_RANK``), or a single process.

    NCCL between GPUs, gloo between CPU processes. Multi-node runs use torchrun's own rendezvous options
    (``--nnodes``, ``--node_rank``, ``--rdzv_endpoint``); nothing here depends on the node count.
    """

    def __init__(self, device: str = "auto") -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = resolve_device(device)
        if self.world > 1 and self.device.type == "cuda":
            self.device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(self.device)
        self._started = False
        if self.world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
            self._started = True

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """Whether this process writes: events, samples, checkpoints, the best weights."""
        return self.rank == 0

    def close(self, finished: bool) -> None:
        """Leave the process group; after a finished run, only once every rank got there (one that tore gloo
        down while another still talked to it aborted with "terminate called without an active exception")."""
        if not self._started:
            return
        if finished:
            torch.distributed.barrier()
        torch.distributed.destroy_process_group()

    def broadcast(self, modules: dict[str, nn.Module]) -> None:
        """Every rank starts from rank 0's weights and buffers."""
        if not self.active:
            return
        for module in modules.values():
            for tensor in [*module.parameters(), *module.buffers()]:
                torch.distributed.broadcast(tensor.data, 0)

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` in DistributedDataParallel, which averages its gradients over the ranks during backward.

        Without ``broadcast_buffers`` (``forward_sync_buffers`` since torch 2.14): with it every forward is a
        collective, and rank 0 alone runs the validation and sample forwards (through the bare module);
        :meth:`share_buffers` gives every rank rank 0's buffers after each step instead. Every parameter of our
        networks takes part in each forward, so ``find_unused_parameters`` stays off (a family that breaks this
        fails loudly at its next step).
        """
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        ddp = nn.parallel.DistributedDataParallel
        # torch 2.14 renamed the setting (the bundle's 2.13 knows only the old name)
        no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(ddp).parameters
                   else {"broadcast_buffers": False})
        return ddp(module, device_ids=device_ids, **no_sync)

    def share_buffers(self, modules: dict[str, nn.Module]) -> None:
        """Give every rank rank 0's buffers (batch-norm statistics, which each rank's own batches moved), in one
        broadcast: what DDP's ``broadcast_buffers`` does, here after each step so a step ends with equal replicas."""
        if not self.active:
            return
        buffers = [b for module in modules.values() for b in module.buffers() if b.is_floating_point()]
        if not buffers:
            return
        flat = torch.cat([b.reshape(-1).to(self._comm_device, torch.float64) for b in buffers])
        torch.distributed.broadcast(flat, 0)
        offset = 0
        for buffer in buffers:
            count = buffer.numel()
            buffer.copy_(flat[offset : offset + count].view_as(buffer))
            offset += count

    def mean_losses(self, losses: dict[str, float], stop: bool) -> tuple[dict[str, float], bool]:
        """The losses averaged over the ranks, and whether any rank was asked to stop (all stop at the same step:
        a rank that left alone would leave the others waiting in their next all-reduce)."""
        if not self.active:
            return losses, stop
        values = torch.tensor([*losses.values(), float(stop)], dtype=torch.float64, device=self._comm_device)
        torch.distributed.all_reduce(values)
        means = (values[:-1] / self.world).tolist()
        return dict(zip(losses, means)), bool(values[-1].item() > 0)

    def in_sync(self, modules: dict[str, nn.Module]) -> bool:
        """Whether all ranks hold the same weights and buffers (a checksum compared across them); True on one
        process."""
        if not self.active:
            return True
        total = torch.zeros(1, dtype=torch.float64, device=self._comm_device)
        for module in modules.values():
            tensors = [t for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()]
            for index, tensor in enumerate(tensors):
                total += tensor.detach().double().mul(index + 1).sum().to(self._comm_device)
        gathered = [torch.zeros_like(total) for _ in range(self.world)]
        torch.distributed.all_gather(gathered, total)
        return all(torch.equal(g, gathered[0]) for g in gathered)

    @property
    def _comm_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")


class Run:
    """What a family's code sees of the run: settings, device, precision, events, folder, step and ranks."""

    def __init__(self, cfg: Any, events: EventWriter, run_dir: Path, dist: Distributed) -> None:
        self.cfg, self.events, self.run_dir, self.dist = cfg, events, run_dir, dist
        self.device = dist.device
        self.precision = Precision(getattr(cfg, "precision", "fp32"), self.device, events)
        self.clock = RunClock(cfg.steps)
        #: The DDP wrapper of each trained module, by the module's id; empty on one process.
        self.wrapped: dict[int, nn.Module] = {}

    @property
    def step(self) -> int:
        return self.clock.step

    def trained(self, module: nn.Module) -> nn.Module:
        """What a training step calls ``module`` through: its DDP wrapper across ranks, else the module itself.
        Validation and samples call the module itself (rank 0 alone runs them)."""
        return self.wrapped.get(id(module), module)

    def wrap_trained(self, modules: dict[str, nn.Module], optimizers: list[torch.optim.Optimizer]) -> None:
        """Wrap, across ranks, each module some optimiser steps (not a moving average or a frozen network)."""
        if not self.dist.active:
            return
        stepped = {id(p) for optimizer in optimizers for group in optimizer.param_groups for p in group["params"]}
        for module in modules.values():
            if any(id(p) in stepped for p in module.parameters()):
                self.wrapped[id(module)] = self.dist.wrap(module)

    def update(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """One optimiser step on ``loss``: clear, backward (scaled in fp16; DDP averages over the ranks), step."""
        optimizer.zero_grad(set_to_none=True)
        self.precision.backward(loss)
        self.precision.step(optimizer)


class Family:
    """One model family as the engine drives it. Subclasses set the class attributes and override the hooks."""

    #: ``config.json``'s ``task``: how ``ganstudio train export`` tells what a run folder holds.
    task: str = ""
    #: What is being trained: on ``--resume`` these settings come from the checkpoint, the rest (length, cadence,
    #: threads, data) from the command line.
    run_defining: tuple[str, ...] = ()

    def __init__(self, run: Run, state: dict[str, Any] | None) -> None:
        self.run = run
        self.cfg = run.cfg
        self._resumed_from = state
        self.tracked: dict[str, Any] = {}

    def setup(self, state: dict[str, Any] | None) -> dict[str, Any]:
        """Load the data, build the models and optimisers (registering them with :meth:`track`) and, when
        resuming, restore the family's own values from ``state``; returns the fields of the ``start`` event beyond
        those every run sends."""
        raise NotImplementedError

    def track(self, **objects: Any) -> None:
        """Keep these models and optimisers in every checkpoint under their names; on resume they are loaded from
        the checkpoint here and now (before, say, a scheduler is built on an optimiser)."""
        for name, obj in objects.items():
            if self._resumed_from is not None:
                obj.load_state_dict(self._resumed_from[name])
            self.tracked[name] = obj

    def modules(self) -> dict[str, nn.Module]:
        """The tracked networks, which every rank must hold equal."""
        return {name: obj for name, obj in self.tracked.items() if isinstance(obj, nn.Module)}

    def batches(self) -> Iterator[Any]:
        """Training batches, endlessly (the engine stops taking them)."""
        raise NotImplementedError

    def train_step(self, batch: Any) -> dict[str, float]:
        """One training step on ``batch``; returns the losses to log."""
        raise NotImplementedError

    def lr(self) -> float:
        return float(getattr(self.cfg, "lr", 0.0))

    def before_training(self) -> None:
        """Called once after setup, before the first step (a fine-tune validates its starting point here)."""

    def validate(self) -> dict[str, Any] | None:
        """Score the held-out data (keeping the best weights); the ``validation`` event's fields, or None when the
        family has no validation data."""
        return None

    def sample(self, path: Path) -> Path | None:
        """Write a sample picture at ``path``; returns it, or None when there is nothing to show."""
        return None

    def state(self) -> dict[str, Any]:
        """The family's own values in a checkpoint beyond the tracked objects (the engine adds step, config, RNG,
        time and precision)."""
        return {}

    def done_fields(self) -> dict[str, Any]:
        return {}


class LowestScore:
    """The best validation so far by the lowest score of a metric (LPIPS when the family has it, else its pixel
    loss), the step that scored it, and those weights kept as the run's ``best.safetensors``; a change of metric
    (LPIPS weights that appeared between sessions) starts the comparison afresh."""

    def __init__(self, run: Run, saved: dict[str, Any] | None = None) -> None:
        self.run = run
        self.values: dict[str, Any] = saved if saved is not None else {"score": math.inf, "step": 0, "metric": ""}

    def offer(self, module: nn.Module, scores: dict[str, float], metric: str, keep_scores: bool = False
              ) -> dict[str, Any]:
        """Keep ``module``'s weights when ``scores[metric]`` is the best yet (and, with ``keep_scores``, all its
        scores); returns the ``validation`` event's fields."""
        best = self.values
        if scores[metric] < best["score"] or best["metric"] != metric:
            best.update(score=scores[metric], step=self.run.step, metric=metric, **(scores if keep_scores else {}))
            ckpt.save_weights(module, self.run.run_dir / BEST_WEIGHTS)
        return {**scores, **self.done_fields()}

    def done_fields(self) -> dict[str, Any]:
        return {"best_metric": self.values["metric"], "best_score": self.values["score"],
                "best_step": self.values["step"]}


def _reseed_rank(cfg: Any, dist: Distributed, step: int) -> None:
    # rank 0 keeps the single-process stream (a one-process run is the same run as before); the others get their
    # own crops, masks and noise
    if dist.rank == 0:
        return
    seed = (cfg.seed * 1_000_003 + dist.rank * 7919 + step) % 2**31
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def train(family_type: type[Family], cfg: Any, resume: bool = False, events: EventWriter | None = None,
          **options: Any) -> int:
    """Train ``cfg`` with ``family_type`` (made with ``options`` beyond the run and its checkpoint) until
    ``cfg.steps`` or a stop signal (SIGTERM/SIGINT checkpoint first); returns a process exit code."""
    events = events or EventWriter()
    dist = Distributed(getattr(cfg, "device", "auto"))
    finished = False
    # From the start to the last collective: torchrun passes a SIGTERM to every process, and one that died of it
    # while the others still checkpoint together would take their checkpoint down with it.
    with StopRequest() as stop:
        try:
            if not dist.main:
                events = EventWriter(_Silent())  # type: ignore[arg-type]
            code = _train(family_type, cfg, resume, events, dist, options, stop)
            finished = True
            return code
        finally:
            dist.close(finished)


def _train(family_type: type[Family], cfg: Any, resume: bool, events: EventWriter, dist: Distributed,
           options: dict[str, Any], stop: StopRequest) -> int:
    cfg, state, run_dir = open_run(cfg, resume, events, family_type.run_defining)
    if dist.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed sizes: let cuDNN pick the fastest kernels once
    run = Run(cfg, events, run_dir, dist)
    if state is not None:
        run.clock = RunClock(cfg.steps, state["step"], state["wall_time_s"])
    family = family_type(run, state, **options)
    start_fields = family.setup(state)
    if state is not None:
        run.precision.load_state(state)
        # after setup, whose fresh weights drew from the stream the checkpoint's state now replaces
        ckpt.set_rng_state(state["rng"])
    last_losses: dict[str, float] = state.get("last_losses", {}) if state is not None else {}
    modules = family.modules()
    dist.broadcast(modules)
    run.wrap_trained(modules, [o for o in family.tracked.values() if isinstance(o, torch.optim.Optimizer)])
    _reseed_rank(cfg, dist, run.clock.step)
    if dist.main:
        (run_dir / "config.json").write_text(json.dumps({"task": family.task, **asdict(cfg)}, indent=2) + "\n")
    events.emit("start", step=run.clock.step, total=cfg.steps, **start_fields, device=str(run.device),
                precision=run.precision.name, **({"ranks": dist.world} if dist.active else {}), config=asdict(cfg))
    clock = run.clock

    def save() -> None:
        in_sync = dist.in_sync(modules)
        clock.saved_step = clock.step
        if not dist.main:
            return
        payload = {"step": clock.step, **{name: obj.state_dict() for name, obj in family.tracked.items()},
                   **family.state(), "rng": ckpt.rng_state(), "config": asdict(cfg),
                   "wall_time_s": clock.wall_time, "last_losses": last_losses, **run.precision.state()}
        path = ckpt.save_checkpoint(run_dir, payload, keep=cfg.keep_checkpoints)
        events.emit("checkpoint", path=str(path), step=clock.step,
                    **({"ranks": dist.world, "in_sync": in_sync} if dist.active else {}))
        if not in_sync:
            events.emit("warning", message=f"the {dist.world} processes' weights differ at step {clock.step}")

    family.before_training()
    log = LossWindow(events, cfg.log_every, cfg.steps)
    val_every = getattr(cfg, "val_every", 0)
    # Wall time covers validation, samples and checkpoints too, but not the pauses between sessions.
    clock.start()
    # Whether to stop, as all ranks agreed at the last step. The signal handler's own flag may turn True on one rank
    # between two steps and not yet on another: acting on it directly would send the ranks to different
    # collectives (one checkpointing, the other stepping) and both would wait forever.
    agreed = StopRequest()
    _, agreed.requested = dist.mean_losses({}, stop.requested)  # asked to stop while setting up: no step
    try:
        batches = family.batches() if not (clock.at_end or agreed.requested) else iter(())
        for batch in batches:
            losses = family.train_step(batch)
            dist.share_buffers(modules)
            clock.step += 1
            losses, agreed.requested = dist.mean_losses(losses, stop.requested)
            if not losses_finite(losses, clock.step, events):
                return 1
            last_losses = log.add(clock.step, losses, family.lr()) or last_losses
            if dist.main and clock.due(val_every):
                fields = family.validate()
                if fields is not None:
                    events.emit("validation", step=clock.step, **fields)
            if dist.main and clock.due(cfg.sample_every):
                path = family.sample(run_dir / "samples" / f"step_{clock.step:08d}.png")
                if path is not None:
                    events.emit("sample", path=str(path), step=clock.step)
            if clock.end_step(agreed, save, cfg.checkpoint_every):
                break
    except KeyboardInterrupt:  # one process: Ctrl-C in a debugger, where the handler is not ours
        agreed.requested = True
    return clock.finish(agreed, save, events, **family.done_fields())


def endless(loader: Any) -> Iterator[Any]:
    """A DataLoader's batches epoch after epoch (each epoch reshuffled); ValueError when it has none."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("no training batches: the folder has too few usable images")
