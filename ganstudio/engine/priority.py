"""Background work yields the CPU to the editor: its processes run at a lower scheduling priority.

On a machine with few cores a worker's torch threads take every core; at the same priority the UI thread then
waits its turn for tens of milliseconds, long enough to see the canvas stutter. A lower priority costs the worker
nothing while the editor is idle.
"""
from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)

#: Added to the niceness on POSIX (0 is normal, 19 the lowest); Windows gets "below normal".
BACKGROUND_NICENESS = 10
_BELOW_NORMAL_PRIORITY_CLASS = 0x4000


def lower_priority() -> None:
    """Run the calling process (all its threads) at background priority; failures are only logged."""
    try:
        if hasattr(os, "nice"):
            os.nice(BACKGROUND_NICENESS)
        elif sys.platform == "win32":
            import ctypes

            kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
            kernel32.SetPriorityClass(kernel32.GetCurrentProcess(), _BELOW_NORMAL_PRIORITY_CLASS)
    except (OSError, AttributeError) as error:
        log.info("could not lower the worker's priority: %s", error)
