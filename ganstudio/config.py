"""User preferences shared by the GUI and the CLI, stored as JSON in the per-user config folder."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import platformdirs

from .atomic import write_text_atomic

APP_NAME = "ganstudio"
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
MAX_RECENT_FILES = 10


def config_dir() -> Path:
    """``$GANSTUDIO_CONFIG_DIR`` when set (tests, portable installs), else the platform's user config folder."""
    override = os.environ.get("GANSTUDIO_CONFIG_DIR")
    return Path(override) if override else Path(platformdirs.user_config_dir(APP_NAME))


def default_model_dir() -> Path:
    override = os.environ.get("GANSTUDIO_MODEL_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME)) / "models"


@dataclass
class Preferences:
    device: str = "auto"
    precision: str = "auto"
    #: Tile edge in input pixels; 0 lets the engine choose from the device's memory.
    tile: int = 0
    model_dir: str = ""
    max_megapixels: int = 256
    jpeg_quality: int = 95
    recent_files: list[str] = field(default_factory=list)

    @property
    def model_path(self) -> Path:
        return Path(self.model_dir) if self.model_dir else default_model_dir()

    def add_recent(self, path: str | Path) -> None:
        entry = str(Path(path).resolve())
        self.recent_files = [entry] + [p for p in self.recent_files if p != entry]
        del self.recent_files[MAX_RECENT_FILES:]

    def validated(self) -> "Preferences":
        """A copy with unknown or out-of-range values replaced by defaults, so a hand-edited file cannot break start-up."""
        default = Preferences()
        clean = Preferences(**asdict(self))
        if clean.device not in DEVICES:
            clean.device = default.device
        if clean.precision not in PRECISIONS:
            clean.precision = default.precision
        if not isinstance(clean.tile, int) or clean.tile < 0:
            clean.tile = default.tile
        if not isinstance(clean.max_megapixels, int) or clean.max_megapixels <= 0:
            clean.max_megapixels = default.max_megapixels
        if not isinstance(clean.jpeg_quality, int) or not 1 <= clean.jpeg_quality <= 100:
            clean.jpeg_quality = default.jpeg_quality
        if not isinstance(clean.recent_files, list):
            clean.recent_files = []
        return clean


def preferences_file() -> Path:
    return config_dir() / "preferences.json"


def load_preferences() -> Preferences:
    """Read the preferences; a missing or damaged file gives the defaults rather than an error at start-up."""
    try:
        raw = json.loads(preferences_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Preferences()
    if not isinstance(raw, dict):
        return Preferences()
    known = {f.name for f in fields(Preferences)}
    try:
        return Preferences(**{k: v for k, v in raw.items() if k in known}).validated()
    except TypeError:
        return Preferences()


def save_preferences(prefs: Preferences) -> None:
    target = preferences_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(target, json.dumps(asdict(prefs), indent=2))
