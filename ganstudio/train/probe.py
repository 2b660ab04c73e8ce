"""How long one training step of a run takes on this machine, measured: the wizard's time estimate.

``python -m ganstudio.train.probe [--scratch DIR] <kind> <args...>`` runs the very command line a run would
(``ganstudio train <kind> <args...>``, as :mod:`ganstudio.train.recipes` builds it: the same model, batch, crop,
threads, device and precision) for :data:`PROBE_STEPS` steps, on small generated folders of the right size instead
of the user's photos (decoding a large folder would take longer than the steps), with validation and previews off.
The first step (memory allocation, cuDNN's kernel search) is not counted. It prints one JSON line:
``{"event": "probe", "seconds_per_step": ...}``, or an ``error`` event. The generated folders and the run go into
``--scratch`` (which the caller removes: a probe stopped for a newer one is killed) or a temporary folder.

It runs as a child process, as the training does: the loops install signal handlers (which only the main thread
of a process may) and set torch's thread count, and a model too large for the machine must not take the editor
down.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

#: Steps a probe runs: one to warm up, the rest timed.
PROBE_STEPS = 3


def _parse(kind: str, args: Sequence[str]) -> argparse.Namespace:
    from ganstudio.train.cli import parse_train_args

    return parse_train_args([kind, *args])


def write_pictures(folder: Path, count: int, side: int) -> Path:
    """``count`` pictures of random noise, ``side`` x ``side + 8`` px: the probe's stand-in for a folder (flat
    pictures would not do: instance normalisation of a constant makes a CycleGAN's losses NaN)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        pixels = rng.integers(0, 256, (side, side + 8, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{index:03d}.png", compress_level=0)
    return folder


def probe_args(kind: str, args: Sequence[str], scratch: Path) -> list[str]:
    """``args`` of a run, pointed at generated folders under ``scratch`` (enough pictures for a whole batch, large
    enough for the crop) and a run folder there, for :data:`PROBE_STEPS` steps with one step event each."""
    from ganstudio.train.recipes import RECIPES

    recipe = RECIPES[kind]
    parsed = _parse(kind, args)
    side = int(max(getattr(parsed, "crop", 0), getattr(parsed, "size", 0), getattr(parsed, "load_size", 0)) * 1.5)
    overrides: list[str] = []
    for index, flag in enumerate(recipe.data_flags):
        overrides += [flag, str(write_pictures(scratch / f"pictures{index}", max(2, parsed.batch), side))]
    return [*args, *overrides, "--out", str(scratch / "run"), "--steps", str(PROBE_STEPS), "--log-every", "1",
            "--checkpoint-every", str(10**9), "--keep-checkpoints", "1", *recipe.probe_flags]


def seconds_per_step(events: Sequence[dict[str, Any]]) -> float:
    """The median time of the timed steps, from the step events of a probe run (one a step)."""
    times = [1 / float(e["it_per_s"]) for e in events
             if e.get("event") == "step" and int(e.get("step", 0)) > 1 and float(e.get("it_per_s") or 0) > 0]
    if not times:
        errors = [str(e.get("message")) for e in events if e.get("event") == "error"]
        raise RuntimeError("; ".join(errors) or "the probe run reported no timed steps")
    return statistics.median(times)


def measure(kind: str, args: Sequence[str], scratch: Path | None = None) -> float:
    """Seconds per training step of ``ganstudio train <kind> <args>`` on this machine, with its pictures and run in
    ``scratch`` (default: a temporary folder). In this process: call it from the main thread of a process whose
    torch thread count may change."""
    from ganstudio.train.cli import run_train

    with contextlib.ExitStack() as stack:
        if scratch is None:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ganstudio-probe-")))
        parsed = _parse(kind, probe_args(kind, args, scratch))
        stream = io.StringIO()
        with contextlib.redirect_stdout(stream):  # the loop's events, which a probe's reader must not see
            run_train(parsed)
    return seconds_per_step([json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")])


def main(argv: Sequence[str]) -> int:
    from ganstudio.train.events import EventWriter

    events = EventWriter()
    argv = list(argv)
    scratch = None
    if argv[:1] == ["--scratch"] and len(argv) > 1:
        scratch, argv = Path(argv[1]), argv[2:]
    if not argv:
        events.error("usage: python -m ganstudio.train.probe [--scratch DIR] KIND ARGS...")
        return 2
    try:
        events.emit("probe", kind=argv[0], seconds_per_step=measure(argv[0], argv[1:], scratch))
    except Exception as exc:  # the wizard shows no estimate rather than a traceback
        events.error(f"{type(exc).__name__}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
