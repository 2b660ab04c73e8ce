"""JSON-lines progress events on stdout: the contract between a training process and whoever watches it.

One JSON object per line, always with an ``"event"`` key: ``start``, ``step``, ``validation``, ``sample``,
``checkpoint``, ``warning``, ``done``, ``error``. Anything else a process prints to stdout would break a reader,
so training code reports through :class:`EventWriter` only.
"""
from __future__ import annotations

import json
import math
import sys
import time
from typing import Any, TextIO


def _clean(value: Any) -> Any:
    # NaN/inf are not valid JSON; a reader must still be able to parse a diverging run's events.
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class EventWriter:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout

    def emit(self, event: str, **fields: Any) -> None:
        record = {"event": event, "time": round(time.time(), 3), **_clean(fields)}
        self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.stream.flush()  # A GUI reads line by line from a pipe; buffered events would arrive in bursts.

    def step(self, step: int, total: int, losses: dict[str, float], lr: float, it_per_s: float) -> None:
        self.emit("step", step=step, total=total, losses=losses, lr=lr, it_per_s=it_per_s)

    def error(self, message: str) -> None:
        self.emit("error", message=message)
