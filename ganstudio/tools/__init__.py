"""User-facing tools: each a parameters dataclass and ``run(image, params, mask, progress, cancel, runtime)``."""
from __future__ import annotations

from . import colorize, inpaint, pose, superres, translate
from .base import ToolSpec

TOOLS: dict[str, ToolSpec] = {
    tool.name: tool for tool in (superres.TOOL, inpaint.TOOL, translate.TOOL, colorize.TOOL, pose.TOOL)}


def get_tool(name: str) -> ToolSpec:
    try:
        return TOOLS[name]
    except KeyError:
        raise ValueError(f"unknown tool {name!r} (available: {', '.join(TOOLS)})") from None


__all__ = ["TOOLS", "ToolSpec", "get_tool"]
