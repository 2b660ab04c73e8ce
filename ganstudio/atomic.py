"""Atomic file output: write beside the target under a hidden temporary name, then rename over it.

A crash, an error or a cancel in the middle leaves the target as it was and no partial file behind.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_output(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path in ``target``'s folder; on a clean exit it replaces ``target`` in one step."""
    target = Path(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(target: Path | str, text: str) -> None:
    with atomic_output(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
