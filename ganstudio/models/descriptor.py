"""What a model is, as far as the app needs to know before loading it."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

TASKS = ("superres", "inpaint", "translate", "pose", "pose_refine", "generate", "colorize", "head_locator")

#: ``arch`` of the classic, non-learned baselines; the tools implement them directly.
CLASSIC = "classic"
#: ``arch`` of foreign weights whose architecture spandrel detects from the state dict.
SPANDREL = "spandrel"


@dataclass(frozen=True)
class ModelDescriptor:
    name: str
    title: str
    task: str
    arch: str
    #: Output size / input size; 0 means any scale (the classic resamplers).
    scale: int = 1
    #: "builtin", "pretrained" (shipped in pretrained/), "user" (the user's model folder) or "foreign" (imported .pth).
    source: str = "builtin"
    multiple_of: int = 1
    min_size: int = 1
    supports_half: bool = False
    supports_bf16: bool = False
    tiling: bool = True
    weights: Path | None = None
    #: One line on what the model is for, shown under a tool's model list (the card's ``summary``).
    summary: str = ""
    arch_params: dict = field(default_factory=dict, compare=False, hash=False)
    card: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_classic(self) -> bool:
        return self.arch == CLASSIC

    @property
    def label(self) -> str:
        """What a model list shows: the title, and the name when they differ."""
        return self.title if self.title == self.name else f"{self.title} ({self.name})"
