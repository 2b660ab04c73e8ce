"""Folder -> folder processing through a chain of tools, shared by ``ganstudio batch`` and the GUI's Batch dialog.

Three stages overlap: a reader thread decodes the next files, the calling thread (the one that owns the device)
runs the chain, and a writer thread encodes and writes results. Pillow and OpenCV release the GIL while they
decode and encode, so on a CPU the codecs run beside the model, and on a GPU the device never waits for a file.

Nothing here modifies an input: outputs go to their own paths, written atomically, so a cancelled or killed batch
leaves only whole files, and running it again with ``skip_existing`` finishes the rest.
"""
from __future__ import annotations

import fnmatch
import json
import os
import queue
import threading
import time
import typing
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .atomic import write_text_atomic
from .engine import CancelToken, Cancelled, Runtime
from .engine.jobs import cancel_between_layers
from .imaging import READ_SUFFIXES, SAVE_FORMATS, ImageError, ImageMeta, LoadedImage, read_image, write_image
from .imaging.color import resize
from .tools import get_tool

#: Output formats by the name users give them; "same" keeps each input's own format where it can be written.
FORMATS = {"same": None, "png": ".png", "jpeg": ".jpg", "jpg": ".jpg", "webp": ".webp", "tiff": ".tif", "tif": ".tif"}
DEFAULT_NAMING = "{stem}.{ext}"
DEFAULT_MASK_PATTERN = "{stem}.mask.png"
# Bounded so a slow model never lets decoded images pile up in memory.
_QUEUE_DEPTH = 4


def _writer_count() -> int:
    # Encoding (PNG's zlib above all) often costs more than a fast tool: one writer per core keeps up with the
    # device stage; more would only compete with it.
    return max(1, min(4, os.cpu_count() or 1))


class BatchError(ValueError):
    """The batch as a whole cannot start (bad folder, bad chain): one line for the user."""


@dataclass
class ChainStep:
    tool: str
    params: dict[str, Any] = field(default_factory=dict)

    def build_params(self) -> Any:
        spec = get_tool(self.tool)
        if not spec.batchable:
            raise BatchError(f"{spec.title} works on one photo at a time (each needs its own pose), not in a batch")
        hints = typing.get_type_hints(spec.params_type)
        known = {f.name for f in fields(spec.params_type)}
        unknown = set(self.params) - known
        if unknown:
            raise BatchError(f"{self.tool} has no parameter {', '.join(sorted(unknown))} "
                             f"(it has {', '.join(sorted(known))})")
        values = {}
        for name, value in self.params.items():
            values[name] = _convert(value, hints[name], f"{self.tool}.{name}")
        return spec.params_type(**values)

    @classmethod
    def parse(cls, text: str) -> "ChainStep":
        """``tool[:key=value[,key=value...]]``, e.g. ``superres:model=srresnet-x4,scale=2``."""
        tool, _, rest = text.partition(":")
        params: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in rest.split(","))):
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise BatchError(f"bad chain step {text!r}: write tool:key=value,key=value")
            params[key.strip()] = value.strip()
        step = cls(tool.strip(), params)
        try:
            step.build_params()
        except ValueError as error:
            raise BatchError(str(error)) from None
        return step

    def __str__(self) -> str:
        args = ",".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.tool}:{args}" if args else self.tool


def _convert(value: Any, kind: Any, name: str) -> Any:
    if kind is bool and isinstance(value, str):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise BatchError(f"{name} must be true or false, not {value!r}")
    if kind in (int, float, str, bool):
        try:
            return kind(value)
        except (TypeError, ValueError):
            raise BatchError(f"{name} must be {kind.__name__}, not {value!r}") from None
    return value


@dataclass
class BatchOptions:
    input_dir: Path
    output_dir: Path
    chain: list[ChainStep]
    patterns: tuple[str, ...] = ("*",)
    recursive: bool = False
    #: ``{stem}`` input name without suffix, ``{ext}`` the output format's suffix, ``{chain}`` the tools' names.
    naming: str = DEFAULT_NAMING
    format: str = "same"
    quality: int = 95
    keep_metadata: bool = True
    skip_existing: bool = False
    mask_pattern: str = DEFAULT_MASK_PATTERN
    max_pixels: int | None = 256_000_000

    def preset(self) -> dict[str, Any]:
        """What a preset file keeps: the chain and the output settings, not the folders."""
        data = asdict(self)
        for key in ("input_dir", "output_dir", "max_pixels"):
            data.pop(key)
        data["chain"] = [asdict(step) for step in self.chain]
        data["patterns"] = list(self.patterns)
        return data

    def with_preset(self, preset: dict[str, Any]) -> "BatchOptions":
        known = {f.name for f in fields(BatchOptions)} - {"input_dir", "output_dir", "max_pixels"}
        unknown = set(preset) - known
        if unknown:
            raise BatchError(f"the preset has unknown settings: {', '.join(sorted(unknown))}")
        values = asdict(self)
        values.update(preset)
        chain = values["chain"]
        if not isinstance(chain, list) or not all(
            isinstance(s, dict) and isinstance(s.get("tool"), str) and isinstance(s.get("params", {}), dict)
            for s in chain
        ):
            raise BatchError('the preset\'s chain must be a list of {"tool": NAME, "params": {...}} objects')
        values["chain"] = [ChainStep(s["tool"], dict(s.get("params", {}))) for s in chain]
        values["patterns"] = tuple(values["patterns"])
        values["input_dir"], values["output_dir"] = self.input_dir, self.output_dir
        return BatchOptions(**values)

    def validate(self) -> None:
        if not self.input_dir.is_dir():
            raise BatchError(f"the input folder {self.input_dir} does not exist")
        if self.output_dir.resolve() == self.input_dir.resolve():
            # outputs beside their inputs would be picked up as inputs by a later run, and could replace them
            raise BatchError("the output folder must differ from the input folder")
        if not self.chain:
            raise BatchError("the chain is empty: add at least one tool")
        for step in self.chain:
            step.build_params()
        if self.format not in FORMATS:
            raise BatchError(f"unknown format {self.format!r} (use {', '.join(FORMATS)})")
        if not 1 <= self.quality <= 100:
            raise BatchError("quality must be between 1 and 100")
        try:
            self.naming.format(stem="x", ext="png", chain="c")
        except (KeyError, IndexError, ValueError) as error:
            raise BatchError(f"bad naming pattern {self.naming!r}: use {{stem}}, {{ext}} and {{chain}}") from error
        try:
            self.mask_pattern.format(stem="x")
        except (KeyError, IndexError, ValueError) as error:
            raise BatchError(f"bad mask pattern {self.mask_pattern!r}: use {{stem}}, e.g. {DEFAULT_MASK_PATTERN}") from error


def save_preset(options: BatchOptions, path: Path) -> None:
    write_text_atomic(path, json.dumps(options.preset(), indent=2))


def load_preset(path: Path) -> dict[str, Any]:
    try:
        preset = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BatchError(f"cannot read the preset {path}: {error}") from None
    if not isinstance(preset, dict):
        raise BatchError(f"{path}: a preset must be a JSON object")
    return preset


@dataclass
class FileResult:
    input: str
    status: str  # "done", "skipped" or "failed"
    output: str | None = None
    reason: str = ""
    seconds: float = 0.0


@dataclass
class BatchProgress:
    total: int
    done: int = 0
    skipped: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    current: str = ""

    @property
    def finished(self) -> int:
        return self.done + self.skipped + self.failed

    @property
    def files_per_s(self) -> float:
        return self.finished / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        rate = self.files_per_s
        return (self.total - self.finished) / rate if rate > 0 else None


@dataclass
class BatchReport:
    input_dir: str
    output_dir: str
    chain: list[str]
    files: list[FileResult]
    #: Inputs found; after a cancel, those not in ``files`` were never started.
    total: int = 0
    cancelled: bool = False
    elapsed_s: float = 0.0
    #: Share of the wall time the device stage spent running tools: how well the reader and writer keep it fed.
    device_busy: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def ok(self) -> bool:
        return not self.cancelled and self.count("failed") == 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["summary"] = {s: self.count(s) for s in ("done", "skipped", "failed")}
        data["summary"]["not_started"] = self.total - len(self.files)
        return data

    def save(self, path: Path) -> None:
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2))


def find_inputs(options: BatchOptions) -> list[Path]:
    """Readable images under the input folder matching the patterns, sorted; mask files and the output folder are
    left out, so a batch never reads its own results or treats a mask as a photo."""
    walker = options.input_dir.rglob("*") if options.recursive else options.input_dir.glob("*")
    output = options.output_dir.resolve()
    mask_glob = options.mask_pattern.format(stem="*")
    found = []
    for path in walker:
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.suffix.lower() not in READ_SUFFIXES or fnmatch.fnmatch(path.name, mask_glob):
            continue
        if not any(fnmatch.fnmatch(path.name.lower(), p.lower()) for p in options.patterns):
            continue
        if output == path.parent.resolve() or output in path.resolve().parents:
            continue
        found.append(path)
    return sorted(found)


def output_path(options: BatchOptions, source: Path) -> Path:
    suffix = FORMATS[options.format]
    if suffix is None:
        suffix = source.suffix.lower() if source.suffix.lower() in SAVE_FORMATS else ".png"
    chain = "-".join(step.tool for step in options.chain)
    name = options.naming.format(stem=source.stem, ext=suffix.lstrip("."), chain=chain)
    if not Path(name).suffix:
        name += suffix
    return options.output_dir / source.parent.relative_to(options.input_dir) / name


@dataclass
class _Loaded:
    index: int
    source: Path
    target: Path
    image: LoadedImage | None = None
    mask: np.ndarray | None = None
    result: FileResult | None = None


@dataclass
class _Processed:
    item: _Loaded
    pixels: np.ndarray | None
    started: float


_DONE = object()


class ActiveClock:
    """Seconds since ``start()``, the time between ``pause()`` and ``resume()`` left out; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started: float | None = None
        self._paused_s = 0.0
        self._pause_began: float | None = None

    def start(self) -> None:
        with self._lock:
            self._started, self._paused_s, self._pause_began = time.monotonic(), 0.0, None

    def pause(self) -> None:
        with self._lock:
            if self._pause_began is None:
                self._pause_began = time.monotonic()

    def resume(self) -> None:
        with self._lock:
            if self._pause_began is not None:
                self._paused_s += time.monotonic() - self._pause_began
                self._pause_began = None

    def seconds(self) -> float:
        with self._lock:
            if self._started is None:
                return 0.0
            now = time.monotonic()
            pausing = now - self._pause_began if self._pause_began is not None else 0.0
            return now - self._started - self._paused_s - pausing


class BatchRunner:
    """Runs one batch. ``run()`` does the device work on the calling thread; ``cancel`` and ``pause`` come from
    any thread. ``on_file`` and ``on_progress`` are called from the writer threads, one call at a time."""

    def __init__(
        self,
        options: BatchOptions,
        runtime: Runtime | None = None,
        *,
        cancel: CancelToken | None = None,
        on_file: Callable[[FileResult], None] | None = None,
        on_progress: Callable[[BatchProgress], None] | None = None,
    ) -> None:
        options.validate()
        self.options = options
        self.runtime = runtime or Runtime()
        self.cancel = cancel or CancelToken()
        self.paused = threading.Event()
        self._on_file = on_file
        self._on_progress = on_progress
        self._steps = [(get_tool(step.tool), step.build_params()) for step in options.chain]
        self._needs_mask = any(spec.uses_mask(params) for spec, params in self._steps)
        self._clock = ActiveClock()

    def pause(self) -> None:
        self.paused.set()

    def resume(self) -> None:
        self.paused.clear()

    def run(self) -> BatchReport:
        inputs = find_inputs(self.options)
        self._clock.start()
        progress = BatchProgress(total=len(inputs))
        results: list[FileResult | None] = [None] * len(inputs)
        loaded: queue.Queue = queue.Queue(_QUEUE_DEPTH)
        processed: queue.Queue = queue.Queue(_QUEUE_DEPTH)
        lock = threading.Lock()

        def record(index: int, result: FileResult) -> None:
            with lock:
                results[index] = result
                setattr(progress, result.status, getattr(progress, result.status) + 1)
                progress.elapsed_s = self.active_seconds()
                progress.current = result.input
                if self._on_file:
                    self._on_file(result)
                if self._on_progress:
                    self._on_progress(replace(progress))

        targets = [output_path(self.options, source) for source in inputs]
        reader = threading.Thread(target=self._read_all, args=(inputs, targets, loaded), name="batch-reader", daemon=True)
        writers = [threading.Thread(target=self._write_all, args=(processed, record), name=f"batch-writer-{i}",
                                    daemon=True) for i in range(_writer_count())]
        reader.start()
        for writer in writers:
            writer.start()
        busy = 0.0
        try:
            while True:
                item = loaded.get()
                if item is _DONE:
                    break
                if item.result is not None or self.cancel.cancelled:
                    processed.put(_Processed(item, None, time.monotonic()))
                    continue
                self._wait_while_paused()
                begin = time.monotonic()
                pixels = self._process(item)
                busy += time.monotonic() - begin
                processed.put(_Processed(item, pixels, begin))
        except BaseException:
            self.cancel.cancel()  # e.g. KeyboardInterrupt: the reader must stop too
            raise
        finally:
            for writer in writers:
                processed.put(_DONE)
            for writer in writers:
                writer.join()
            # the reader may be blocked on a full queue after a cancel: drain it so it can see the end
            while reader.is_alive():
                try:
                    loaded.get(timeout=0.05)
                except queue.Empty:
                    pass
        elapsed = self.active_seconds()
        files = [r for r in results if r is not None]
        return BatchReport(
            input_dir=str(self.options.input_dir),
            output_dir=str(self.options.output_dir),
            chain=[str(step) for step in self.options.chain],
            files=files,
            total=len(inputs),
            cancelled=self.cancel.cancelled,
            elapsed_s=elapsed,
            device_busy=busy / elapsed if elapsed > 0 else 0.0,
        )

    def _wait_while_paused(self) -> None:
        if not self.paused.is_set():
            return
        self._clock.pause()
        while self.paused.is_set() and not self.cancel.cancelled:
            time.sleep(0.05)
        self._clock.resume()

    def active_seconds(self) -> float:
        """Time since the run started, pauses left out (a pause still going on included), for rates and the report."""
        return self._clock.seconds()

    def _read_all(self, inputs: list[Path], targets: list[Path], loaded: queue.Queue) -> None:
        first_with_target: dict[Path, Path] = {}
        try:
            for index, (source, target) in enumerate(zip(inputs, targets)):
                if self.cancel.cancelled:
                    break
                first = first_with_target.setdefault(target, source)
                loaded.put(self._read_one(index, source, target, first))
        finally:
            loaded.put(_DONE)

    def _read_one(self, index: int, source: Path, target: Path, first_with_target: Path) -> _Loaded:
        item = _Loaded(index, source, target)
        name = str(source.relative_to(self.options.input_dir))
        if first_with_target != source:
            item.result = FileResult(name, "failed", None, f"{first_with_target.name} already writes {target.name}: "
                                                           "use {stem} and {ext} in the naming pattern")
            return item
        if self.options.skip_existing and target.exists():
            item.result = FileResult(name, "skipped", str(target), "the output exists")
            return item
        if target.resolve() == source.resolve():
            item.result = FileResult(name, "failed", None, "the output would overwrite the input: "
                                                           "choose another output folder or naming pattern")
            return item
        mask_path = source.with_name(self.options.mask_pattern.format(stem=source.stem))
        if self._needs_mask and not mask_path.is_file():
            item.result = FileResult(name, "skipped", None, f"no mask: expected {mask_path.name} beside it")
            return item
        try:
            item.image = read_image(source, max_pixels=self.options.max_pixels)
            if self._needs_mask:
                item.mask = read_image(mask_path, max_pixels=self.options.max_pixels).pixels[..., 0]
        except ImageError as error:
            item.result = FileResult(name, "failed", None, str(error))
        return item

    def _process(self, item: _Loaded) -> np.ndarray | None:
        assert item.image is not None
        pixels = item.image.pixels
        mask = item.mask
        try:
            with cancel_between_layers(self.cancel):
                pixels = self._run_chain(pixels, mask)
        except Cancelled:
            return None
        except Exception as error:  # noqa: BLE001 - one file's failure is reported and the batch goes on
            item.result = FileResult(str(item.source.relative_to(self.options.input_dir)), "failed", None,
                                     _one_line(error))
            return None
        return pixels

    def _run_chain(self, pixels: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        for spec, params in self._steps:
            if mask is not None and mask.shape != pixels.shape[:2]:
                # a tool earlier in the chain resized the image: the mask follows it
                mask = resize(mask[..., None], (pixels.shape[1], pixels.shape[0]), "nearest")[..., 0]
            pixels = spec.run(pixels, params, mask=mask if spec.uses_mask(params) else None,
                              cancel=self.cancel, runtime=self.runtime)
        return pixels

    def _write_all(self, processed: queue.Queue, record: Callable[[int, FileResult], None]) -> None:
        while True:
            entry = processed.get()
            if entry is _DONE:
                return
            item = entry.item
            if item.result is not None:
                record(item.index, item.result)
                continue
            if entry.pixels is None or self.cancel.cancelled:
                # cancelled: results not yet written are dropped, so Cancel stops at once; skip_existing redoes them
                continue
            record(item.index, self._write_one(item, entry.pixels, entry.started))

    def _write_one(self, item: _Loaded, pixels: np.ndarray, started: float) -> FileResult:
        name = str(item.source.relative_to(self.options.input_dir))
        meta = item.image.meta if self.options.keep_metadata and item.image else ImageMeta()
        try:
            item.target.parent.mkdir(parents=True, exist_ok=True)
            # skip_existing already passed over existing outputs; without it a rerun replaces its own outputs
            write_image(item.target, pixels, meta, quality=self.options.quality, overwrite=True)
        except (ImageError, OSError) as error:
            return FileResult(name, "failed", None, _one_line(error))
        return FileResult(name, "done", str(item.target), "", time.monotonic() - started)


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
