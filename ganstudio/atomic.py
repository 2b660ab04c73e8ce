"""Atomic file output: write beside the target under a hidden temporary name, then rename over it.

A crash, an error or a cancel in the middle leaves the target as it was and no partial file behind. The data is
flushed to disk before the rename, so a power cut cannot leave a renamed but empty file, and the result gets the
permissions a plain ``open()`` would give it (or keeps those of the file it replaces), not mkstemp's owner-only ones.
"""
from __future__ import annotations

import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

_UMASK = os.umask(0)
os.umask(_UMASK)


def _final_mode(target: Path) -> int:
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~_UMASK


@contextmanager
def atomic_output(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path in ``target``'s folder; on a clean exit it replaces ``target`` in one step.

    Code inside the block may raise to abandon the output (the temporary file is removed).
    """
    target = Path(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, _final_mode(target))
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(target: Path | str, text: str) -> None:
    with atomic_output(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
