"""A tool job and how one is run, the same way in the worker thread and in the worker process. No Qt."""
from __future__ import annotations

import itertools
import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from ..imaging import ImageError
from .cancel import CancelToken, ProgressCallback
from .device import Runtime

log = logging.getLogger(__name__)

_job_ids = itertools.count(1)

#: Progress reports closer together than this are dropped (except the last), so a tool reporting per row
#: cannot flood the UI thread's event queue.
PROGRESS_INTERVAL_S = 0.05


@dataclass
class Job:
    """A tool run. The image and mask are copied on creation: the document may change while the job runs."""

    tool: str
    params: Any
    image: np.ndarray
    mask: np.ndarray | None = None
    runtime: Runtime = field(default_factory=Runtime)
    cancel: CancelToken = field(default_factory=CancelToken)
    id: int = field(default_factory=lambda: next(_job_ids))
    #: Work other than the tool's run (a pose detection), called like ``ToolSpec.run``; its result may be any
    #: object and is passed on as it is. In the worker process it must be a module-level function (it is sent
    #: by reference).
    function: Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        self.image = self.image.copy()
        if self.mask is not None:
            self.mask = self.mask.copy()


def describe_error(error: BaseException) -> str:
    """A one-line message for the user."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, MemoryError) or "out of memory" in text.lower():
        return "Out of memory: try a smaller tile size in Preferences, the CPU, or a smaller image."
    if isinstance(error, (ImageError, ValueError, RuntimeError)) and text:
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def throttled(report: Callable[[float, str], None], interval_s: float = PROGRESS_INTERVAL_S) -> ProgressCallback:
    """``report`` called at most every ``interval_s`` (always for the last step)."""
    import time

    last = 0.0

    def progress(fraction: float, message: str) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= interval_s or fraction >= 1.0:
            last = now
            report(float(fraction), message)

    return progress


_job_token = threading.local()
_layer_hook: list[Any] = []
_layer_hook_lock = threading.Lock()


def _check_before_layer(_module: torch.nn.Module, _inputs: Any) -> None:
    token = getattr(_job_token, "value", None)
    if token is not None:
        token.raise_if_cancelled()


@contextmanager
def cancel_between_layers(cancel: CancelToken):
    """Within the block, every torch module run on this thread checks ``cancel`` first.

    Tiles are the tools' own cancel points, but one tile of a ×4 GAN or a whole image through an inpainting net
    takes seconds on a CPU; a check before each layer makes Cancel take effect within one layer, whatever the tool.
    One global pre-hook serves every job; outside a job (no token on the thread) it does nothing.
    """
    with _layer_hook_lock:
        if not _layer_hook:
            _layer_hook.append(torch.nn.modules.module.register_module_forward_pre_hook(_check_before_layer))
    previous = getattr(_job_token, "value", None)
    _job_token.value = cancel
    try:
        yield
    finally:
        _job_token.value = previous


def execute(tool: str, params: Any, image: np.ndarray, mask: np.ndarray | None, runtime: Runtime,
            cancel: CancelToken, progress: ProgressCallback, function: Callable[..., Any] | None = None) -> Any:
    """Run one job; raises :class:`Cancelled` when cancelled, any other error when it fails."""
    from ..tools import get_tool

    run = function if function is not None else get_tool(tool).run
    with cancel_between_layers(cancel):
        result = run(image, params, mask=mask, progress=progress, cancel=cancel, runtime=runtime)
    cancel.raise_if_cancelled()
    if function is None and (not isinstance(result, np.ndarray) or result.ndim not in (2, 3)):
        raise RuntimeError(f"the {tool} tool returned no image")
    return result
