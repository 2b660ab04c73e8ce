"""Pieces every training loop shares: stopping cleanly on a signal, and holding out validation files."""
from __future__ import annotations

import signal
from pathlib import Path
from typing import Any


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


def split_validation(paths: list[Path], count: int) -> tuple[list[Path], list[Path]]:
    """Every k-th file is held out, so validation spans the folder's sources rather than one of them."""
    if count <= 0 or len(paths) < 2 * count:
        return paths, []
    stride = len(paths) // count
    held = set(range(stride // 2, stride * count, stride))
    return [p for i, p in enumerate(paths) if i not in held], [p for i, p in enumerate(paths) if i in held]
