"""``ganstudio``: no arguments or image files open the GUI; sub-commands apply tools, list models and train."""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Sequence

from . import __version__

SUBCOMMANDS = ("apply", "batch", "models", "pose", "train")
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class CliError(Exception):
    """Bad input: printed as one line, exit code 2."""


class _VersionAction(argparse.Action):
    """``--version``: the app's version, then the torch build, device and precision it would run with."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0,
                         help="show the version, torch build, device and precision, and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()


def version_text() -> str:
    from .config import load_preferences
    from .engine.device import runtime_report

    prefs = load_preferences()
    return "\n".join([f"ganstudio {__version__}", *runtime_report(prefs.device, prefs.precision)])


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        return _run_subcommand(argv)
    parser = argparse.ArgumentParser(prog="ganstudio", description="GAN Studio photo editor. "
                                     f"Sub-commands: {', '.join(SUBCOMMANDS)} (ganstudio COMMAND --help).")
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument("files", nargs="*", help="images to open")
    parser.add_argument("--screenshot", type=Path, metavar="PNG",
                        help="open the window and FILES, run a tiny job in the worker, save a picture of the window "
                             "to PNG and quit (exit code 1 when a file did not open or the job did not run): a check "
                             "that an install or bundle works, also offscreen")
    args = parser.parse_args(argv)
    from .ui.app import run_gui  # Qt is imported only when the GUI is wanted

    return run_gui(args.files, screenshot=args.screenshot)


def _build_parser() -> argparse.ArgumentParser:
    from .batch import DEFAULT_MASK_PATTERN, DEFAULT_NAMING, FORMATS

    parser = argparse.ArgumentParser(prog="ganstudio")
    parser.add_argument("--version", action=_VersionAction)
    commands = parser.add_subparsers(dest="command", required=True)

    apply = commands.add_parser("apply", help="run a tool on one image")
    apply.add_argument("tool", help="superres, inpaint, translate, colorize or pose")
    apply.add_argument("input", type=Path)
    apply.add_argument("-o", "--output", type=Path, required=True)
    apply.add_argument("--model", help="model name (see `ganstudio models list`)")
    apply.add_argument("--mask", type=Path, help="mask image: white = the area the tool changes")
    apply.add_argument("--scale", type=int, help="superres: 2, 3 or 4 (default: the model's own scale, 4 for bicubic/lanczos)")
    apply.add_argument("--radius", type=int, help="inpaint: neighbourhood radius of the classic methods")
    apply.add_argument("--strength", type=float, help="translate, colorize: 0-1 blend with the original (default 1)")
    apply.add_argument("--free-lightness", dest="keep_lightness", action="store_false", default=None,
                       help="colorize: clip strong colours to sRGB rather than keep each pixel's lightness")
    apply.add_argument("--working-size", type=int,
                       help="translate: short side the model runs at (default: the model's own, 256 unless its card says)")
    apply.add_argument("--pose", type=Path, help="pose: the target pose JSON (from `ganstudio pose detect`, edited)")
    apply.add_argument("--source-pose", type=Path, help="pose: the person's pose now (default: detected)")
    apply.add_argument("--fill", dest="fill_model", metavar="MODEL",
                       help="pose: the inpainting model for the uncovered background (default: the best installed)")
    apply.add_argument("--no-refine", dest="refine", action="store_false", default=None,
                       help="pose: leave the seams as the warp made them, even with a refiner installed")
    apply.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default: the preference (auto)")
    apply.add_argument("--precision", choices=("auto", "fp32", "fp16", "bf16"))
    apply.add_argument("--tile", type=int, help="tile edge in pixels; 0 = automatic")
    apply.add_argument("--quality", type=int, help="JPEG/WebP quality (default: the preference, 95)")
    apply.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists (even the input)")
    apply.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    batch = commands.add_parser("batch", help="run a chain of tools over a folder of images")
    batch.add_argument("input_dir", type=Path)
    batch.add_argument("-o", "--output", dest="output_dir", type=Path, required=True)
    batch.add_argument("--chain", action="append", default=[], metavar="TOOL[:KEY=VALUE,...]",
                       help="a tool and its parameters, e.g. superres:model=bicubic,scale=2; repeat for a chain")
    batch.add_argument("--preset", type=Path, help="JSON preset (chain and output settings); flags override it")
    batch.add_argument("--save-preset", type=Path, help="write the effective settings as a preset and go on")
    batch.add_argument("--skip-existing", action="store_true", default=None, help="leave existing outputs alone")
    batch.add_argument("--format", choices=sorted(FORMATS), help="output format (default: same as input)")
    batch.add_argument("--quality", type=int, help="JPEG/WebP quality")
    batch.add_argument("--recursive", action="store_true", default=None, help="include sub-folders")
    batch.add_argument("--pattern", action="append", help="file name pattern, e.g. '*.jpg' (repeatable)")
    batch.add_argument("--naming", help=f"output name pattern with {{stem}}, {{ext}}, {{chain}} "
                                        f"(default {DEFAULT_NAMING})")
    batch.add_argument("--mask-pattern", help=f"mask file beside each image (default {DEFAULT_MASK_PATTERN})")
    batch.add_argument("--strip-metadata", action="store_true", default=None, help="drop EXIF and ICC")
    batch.add_argument("--report", type=Path, help="write the final report as JSON")
    batch.add_argument("--device", choices=("auto", "cpu", "cuda"))
    batch.add_argument("--precision", choices=("auto", "fp32", "fp16", "bf16"))
    batch.add_argument("--tile", type=int)
    batch.add_argument("-q", "--quiet", action="store_true")

    models = commands.add_parser("models", help="list or import models")
    model_commands = models.add_subparsers(dest="models_command", required=True)
    listing = model_commands.add_parser("list", help="name, task, scale and source of every model")
    listing.add_argument("--task")
    importing = model_commands.add_parser("import", help="add a foreign ESRGAN-family .pth/.safetensors file")
    importing.add_argument("file", type=Path)
    importing.add_argument("--name")

    pose = commands.add_parser("pose", help="find a person's skeleton")
    pose_commands = pose.add_subparsers(dest="pose_command", required=True)
    detect = pose_commands.add_parser("detect", help="write the detected pose as JSON (edit it, then apply pose)")
    detect.add_argument("input", type=Path)
    detect.add_argument("-o", "--output", type=Path, required=True, help="pose .json")
    detect.add_argument("--mask", type=Path, help="also write the person mask (PNG, white = person)")
    detect.add_argument("--model", help="pose model (default pose-net)")
    detect.add_argument("--device", choices=("auto", "cpu", "cuda"))
    detect.add_argument("--overwrite", action="store_true")

    from .train.cli import add_train_parser

    add_train_parser(commands)
    return parser


def _run_subcommand(argv: list[str]) -> int:
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "apply":
            return _apply(args)
        if args.command == "models":
            return _models(args)
        if args.command == "batch":
            return _batch(args)
        if args.command == "pose":
            return _pose(args)
        from .train.cli import run_train

        return run_train(args)
    except KeyboardInterrupt:
        print("\ninterrupted: nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except CliError as error:
        print(f"ganstudio: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _tool_params(tool, args: argparse.Namespace):
    values = {"model": args.model, "scale": args.scale, "radius": args.radius, "strength": args.strength,
              "working_size": args.working_size, "fill_model": args.fill_model, "refine": args.refine,
              "keep_lightness": args.keep_lightness}
    known = {f.name for f in fields(tool.params_type)}
    given = {k: v for k, v in values.items() if v is not None}
    if args.pose is not None or args.source_pose is not None or tool.name == "pose":
        given.update(_pose_params(tool, args))
    if args.mask is not None and "use_mask" in known:
        given["use_mask"] = True  # for a tool that works with or without a mask, giving one means: use it
    if tool.name == "superres" and "scale" not in given and "model" in given:
        given["scale"] = _model_scale(given["model"], tool.task)
    if tool.name == "superres" and "scale" in given and "model" not in given:
        from .tools.superres import default_model

        given["model"] = default_model(given["scale"])  # --scale 2 alone: the best ×2 model, not ×4 shrunk
    unused = set(given) - known
    if unused:
        flags = {"fill_model": "--fill", "refine": "--no-refine", "keep_lightness": "--free-lightness"}
        named = (flags.get(u, "--" + u.replace("_", "-")) for u in sorted(unused))
        raise CliError(f"{tool.name} takes no {', '.join(named)}")
    return tool.params_type(**given)


def _model_scale(name: str, task: str) -> int:
    """The scale a model was trained for (a ×2 model upscales ×2 unless --scale says otherwise); 4 for the
    classic resamplers, which take any."""
    from .models import get_registry

    try:
        return get_registry().get(name, task).scale or 4
    except KeyError:
        return 4  # the tool reports the unknown model with the list of known ones


def _pose_params(tool, args: argparse.Namespace) -> dict:
    from .pose import Pose

    if tool.name != "pose":
        raise CliError(f"{tool.name} takes no --pose or --source-pose")
    if args.pose is None:
        raise CliError("pose needs --pose TARGET.json (write one with `ganstudio pose detect IN -o pose.json`, "
                       "then move its joints)")
    try:
        given = {"target": Pose.load(args.pose)}
        if args.source_pose is not None:
            given["source"] = Pose.load(args.source_pose)
    except ValueError as error:
        raise CliError(str(error)) from None
    return given


def _pose(args: argparse.Namespace) -> int:
    from .config import load_preferences
    from .engine import Runtime
    from .imaging import ImageError, read_image, write_image
    from .models import ModelLoadError, UnknownModelError
    from .tools.pose import DEFAULT_MODEL, detect

    prefs = load_preferences()
    outputs = [args.output] + ([args.mask] if args.mask else [])
    for output in outputs:
        if output.exists() and not args.overwrite:
            raise CliError(f"{output} exists: pass --overwrite to replace it")
    runtime = Runtime(device=args.device or prefs.device, precision=prefs.precision, tile=prefs.tile)
    try:
        image = read_image(args.input, max_pixels=prefs.max_megapixels * 1_000_000)
        found = detect(image.pixels, args.model or DEFAULT_MODEL, runtime)
        found.pose.save(args.output)
        if args.mask:
            import numpy as np

            write_image(args.mask, (found.person * 255).round().astype(np.uint8)[..., None], overwrite=args.overwrite)
    except (ImageError, UnknownModelError, ModelLoadError, ValueError) as error:
        raise CliError(str(error)) from None
    sure = int((found.pose.confidence >= 0.3).sum())
    print(f"wrote {args.output} ({sure} of {len(found.pose.points)} joints found with confidence)")
    return EXIT_OK


class _ProgressBar:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.started = time.monotonic()

    def __call__(self, fraction: float, message: str) -> None:
        if not self.enabled:
            return
        filled = int(fraction * 30)
        print(f"\r[{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%} {message[:40]:<40}", end="", file=sys.stderr)

    def close(self) -> None:
        if self.enabled:
            print(file=sys.stderr)


def _apply(args: argparse.Namespace) -> int:
    from .config import load_preferences
    from .engine import Runtime
    from .imaging import ImageError, read_image, write_image
    from .models import ModelLoadError, UnknownModelError
    from .tools import get_tool

    prefs = load_preferences()
    try:
        tool = get_tool(args.tool)
    except ValueError as error:
        raise CliError(str(error)) from None
    params = _tool_params(tool, args)
    runtime = Runtime(device=args.device or prefs.device, precision=args.precision or prefs.precision,
                      tile=prefs.tile if args.tile is None else args.tile)
    output: Path = args.output
    if output.exists() and not args.overwrite:
        raise CliError(f"{output} exists: pass --overwrite to replace it")
    if not output.parent.is_dir():
        raise CliError(f"the output folder {output.parent} does not exist")
    max_pixels = prefs.max_megapixels * 1_000_000
    progress = _ProgressBar(enabled=not args.quiet)
    try:
        image = read_image(args.input, max_pixels=max_pixels)
        mask = read_image(args.mask, max_pixels=max_pixels).pixels if args.mask else None
        if tool.needs_mask and mask is None:
            raise CliError(f"{tool.name} needs --mask MASK.png (white = the area to fill)")
        note = tool.note_for(image.pixels, params)
        result = tool.run(image.pixels, params, mask=_mask_channel(mask), progress=progress, runtime=runtime)
        progress.close()
        write_image(output, result, image.meta, quality=args.quality or prefs.jpeg_quality, overwrite=args.overwrite)
    except (ImageError, UnknownModelError, ModelLoadError, ValueError) as error:
        progress.close()
        raise CliError(str(error)) from None
    except RuntimeError as error:
        progress.close()
        print(f"ganstudio: {tool.name} failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    height, width = result.shape[:2]
    if not args.quiet:
        print(f"wrote {output} ({width}x{height})" + (f". {note}" if note else ""))
    return EXIT_OK


def _mask_channel(mask):
    """A mask file may be grey, RGB or carry alpha; its first channel decides (white = change)."""
    return None if mask is None else mask[..., 0]


def _models(args: argparse.Namespace) -> int:
    from .config import load_preferences
    from .models import ModelLoadError, configure_registry, import_foreign_model

    model_dir = load_preferences().model_path
    if args.models_command == "import":
        try:
            card = import_foreign_model(args.file, model_dir, args.name)
        except (ModelLoadError, OSError) as error:
            raise CliError(str(error)) from None
        print(f"imported {args.file.name} as {card.stem} into {model_dir}")
        return EXIT_OK
    registry = configure_registry(model_dir)
    models = registry.for_task(args.task) if args.task else registry.all()
    print(f"{'name':<24} {'task':<12} {'scale':<6} {'source':<11} title")
    for model in models:
        scale = "any" if model.scale == 0 else f"x{model.scale}"
        print(f"{model.name:<24} {model.task:<12} {scale:<6} {model.source:<11} {model.title}")
    for problem in registry.problems:
        print(f"skipped: {problem}", file=sys.stderr)
    return EXIT_OK


def _batch(args: argparse.Namespace) -> int:
    import signal

    from .batch import BatchError, BatchOptions, BatchRunner, ChainStep, load_preset, save_preset
    from .config import load_preferences
    from .engine import CancelToken, Runtime

    prefs = load_preferences()
    try:
        options = BatchOptions(args.input_dir, args.output_dir, [], quality=prefs.jpeg_quality,
                               max_pixels=prefs.max_megapixels * 1_000_000)
        if args.preset:
            options = options.with_preset(load_preset(args.preset))
        overrides = {
            "chain": [ChainStep.parse(text) for text in args.chain] or None,
            "skip_existing": args.skip_existing,
            "format": args.format,
            "quality": args.quality,
            "recursive": args.recursive,
            "patterns": tuple(args.pattern) if args.pattern else None,
            "naming": args.naming,
            "mask_pattern": args.mask_pattern,
            "keep_metadata": False if args.strip_metadata else None,
        }
        for key, value in overrides.items():
            if value is not None:
                setattr(options, key, value)
        options.validate()
        if args.save_preset:
            save_preset(options, args.save_preset)
        options.output_dir.mkdir(parents=True, exist_ok=True)
        runtime = Runtime(device=args.device or prefs.device, precision=args.precision or prefs.precision,
                          tile=prefs.tile if args.tile is None else args.tile)
        cancel = CancelToken()
        bar = _BatchProgressBar(enabled=not args.quiet)
        runner = BatchRunner(options, runtime, cancel=cancel, on_progress=bar)
    except (BatchError, ValueError, OSError) as error:
        raise CliError(str(error)) from None

    def on_interrupt(signum, frame) -> None:
        if cancel.cancelled:
            raise KeyboardInterrupt  # a second Ctrl-C stops at once; outputs are still atomic
        cancel.cancel()
        print("\ncancelling: finishing the file being written...", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        report = runner.run()
    finally:
        signal.signal(signal.SIGINT, previous)
        bar.close()
    if args.report:
        report.save(args.report)
    done, skipped, failed = (report.count(s) for s in ("done", "skipped", "failed"))
    for result in report.files:
        if result.status == "failed" or (result.status == "skipped" and not args.quiet):
            # image errors already start with the file's name
            where = "" if result.reason.startswith(Path(result.input).name) else f"{result.input}: "
            print(f"{result.status}: {where}{result.reason}", file=sys.stderr)
    summary = f"{done} done, {skipped} skipped, {failed} failed in {report.elapsed_s:.1f} s"
    if report.cancelled:
        print(f"cancelled: {summary}, {report.total - len(report.files)} not started", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not args.quiet or failed:
        print(summary, file=sys.stderr if failed else sys.stdout)
    return EXIT_OK if report.ok else EXIT_FAILED


class _BatchProgressBar:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()

    def __call__(self, progress) -> None:
        if not self.enabled:
            return
        fraction = progress.finished / progress.total if progress.total else 1.0
        filled = int(fraction * 30)
        eta = progress.eta_s
        eta_text = f"{int(eta) // 60}:{int(eta) % 60:02d} left" if eta is not None else ""
        print(f"\r[{'#' * filled}{'.' * (30 - filled)}] {progress.finished}/{progress.total} "
              f"{progress.files_per_s:.1f} files/s {eta_text:<12} {progress.current[-30:]:<30}",
              end="", file=sys.stderr)

    def close(self) -> None:
        if self.enabled:
            print(file=sys.stderr)
