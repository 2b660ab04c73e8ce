"""One tiny run of every training family on generated pictures, shared by the engine's tests and by
``python tests/engine_cases.py OUT``, which wrote ``tests/data/pre_engine/`` with the loops as they were before
the shared engine: a checkpoint at step 2 of each case, the fields of every event those loops sent, and the
losses of steps 3-4 after resuming. The tests resume those checkpoints with today's code.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from test_pose import _people_folder  # noqa: E402  (the synthetic people folder the pose tests use)

FIXTURES = Path(__file__).parent / "data" / "pre_engine"


def _photos(folder: Path, count: int = 6, size: tuple[int, int] = (48, 56)) -> Path:
    if folder.is_dir():
        return folder  # made already (several processes of one run share it)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        base = rng.integers(0, 256, (size[0] // 8, size[1] // 8, 3), dtype=np.uint8)
        # blocks plus noise: structure for the models and variety for the crops
        pixels = np.kron(base, np.ones((8, 8, 1), np.uint8)) // 2 + rng.integers(0, 128, (*size, 3), dtype=np.uint8)
        Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.png")
    return folder


def lpips_weights(root: Path) -> Path:
    """Random AlexNet/LPIPS weights in the real file's layout (as the suite's ``random_lpips_weights``)."""
    rng = np.random.default_rng(0)
    shapes = [(11, 11, 3, 64), (5, 5, 64, 192), (3, 3, 192, 384), (3, 3, 384, 256), (3, 3, 256, 256)]
    arrays = {}
    for index, shape in enumerate(shapes):
        arrays[f"AlexNet_0/Conv_{index}/kernel"] = rng.normal(0, 0.05, shape).astype(np.float32)
        arrays[f"AlexNet_0/Conv_{index}/bias"] = np.zeros(shape[-1], np.float32)
        arrays[f"NetLinLayer_{index}/Conv_0/kernel"] = rng.uniform(0, 1, (1, 1, shape[-1], 1)).astype(np.float32)
    path = root / "lpips_alexnet.npz"
    if not path.exists():
        root.mkdir(parents=True, exist_ok=True)
        np.savez(path, **arrays)
    return path


@dataclass
class Case:
    """A family's ``train`` function and the config of a tiny run of it, for a data root and a run folder."""

    name: str
    module: str
    make_config: Callable[[Path, Path, int], Any]

    def train(self, root: Path, out: Path, steps: int, resume: bool = False) -> tuple[int, list[dict]]:
        """Run to ``steps``; returns the exit code and the events."""
        import importlib

        from ganstudio.train.events import EventWriter

        module = importlib.import_module(f"ganstudio.train.{self.module}")
        stream = io.StringIO()
        previous = os.environ.get("GANSTUDIO_LPIPS_WEIGHTS")
        os.environ["GANSTUDIO_LPIPS_WEIGHTS"] = str(lpips_weights(root / "weights"))
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                code = module.train(self.make_config(root, out, steps), resume=resume, events=EventWriter(stream))
        finally:
            if previous is None:
                os.environ.pop("GANSTUDIO_LPIPS_WEIGHTS", None)
            else:
                os.environ["GANSTUDIO_LPIPS_WEIGHTS"] = previous
        return code, [json.loads(line) for line in stream.getvalue().splitlines()]


_RUN = dict(log_every=1, checkpoint_every=2, threads=1)


def _superres(root: Path, out: Path, steps: int) -> Any:
    from ganstudio.train.superres import SuperResConfig

    return SuperResConfig(data=str(_photos(root / "photos")), out=str(out), steps=steps, blocks=1, channels=8,
                          crop=32, batch=2, val_images=2, val_crop=32, warmup=1, val_every=2, sample_every=2, **_RUN)


def _superres_gan(root: Path, out: Path, steps: int) -> Any:
    from ganstudio.train.superres import SuperResConfig

    return SuperResConfig(data=str(_photos(root / "photos")), out=str(out), steps=steps, blocks=1, channels=8,
                          crop=40, batch=2, val_images=2, val_crop=40, warmup=1, val_every=2, sample_every=2,
                          perceptual_weight=1.0, adv_weight=0.01, discriminator="patch", disc_channels=8,
                          lpips_weights=str(lpips_weights(root / "weights")), degradation="real", **_RUN)


def _inpaint(root: Path, out: Path, steps: int) -> Any:
    from ganstudio.train.inpaint import InpaintConfig

    return InpaintConfig(data=str(_photos(root / "photos")), out=str(out), steps=steps, channels=4, levels=2,
                         dilations=(2,), disc_channels=4, crop=32, batch=2, val_images=2, adv_start=1, val_every=2,
                         sample_every=2, **_RUN)


def _cyclegan(root: Path, out: Path, steps: int) -> Any:
    from ganstudio.train.cyclegan import CycleGANConfig

    cats, dogs = _photos(root / "cats", 4), _photos(root / "dogs", 4, (56, 48))
    return CycleGANConfig(domain_a=str(cats), domain_b=str(dogs), out=str(out), steps=steps, name_a="cat",
                          name_b="dog", ngf=4, blocks=1, ndf=4, load_size=44, crop=40, small_crop=32,
                          small_crop_steps=3, sample_images=1, sample_every=2, **_RUN)


def _dcgan(root: Path, out: Path, steps: int) -> Any:
    from ganstudio.train.dcgan import DCGANConfig

    return DCGANConfig(data=str(_photos(root / "photos")), out=str(out), steps=steps, size=16, latent_dim=8, ngf=4,
                       ndf=4, batch=4, sample_count=4, sample_every=2, **_RUN)


def _people(root: Path) -> Path:
    folder = root / "people"
    return folder if folder.is_dir() else _people_folder(root, count=8)


def _pose(root: Path, out: Path, steps: int) -> Any:
    from ganstudio.train.pose import PoseConfig

    return PoseConfig(data=str(_people(root)), out=str(out), steps=steps, widths=(8, 8, 8, 8, 8), decoder=8, batch=2,
                      val_images=2, height=96, width=64, val_every=2, sample_every=2, **_RUN)


def _pose_refiner(root: Path, out: Path, steps: int) -> Any:
    from ganstudio.train.pose_refiner import RefinerConfig

    return RefinerConfig(data=str(_people(root)), out=str(out), steps=steps, crop=48, channels=4, levels=2,
                         bottleneck=1, disc_channels=8, batch=2, val_images=2, adv_start=1, min_scale=0.5,
                         val_every=2, sample_every=2, **_RUN)


def _colorize(root: Path, out: Path, steps: int) -> Any:
    from ganstudio.train.colorize import ColorizeConfig

    return ColorizeConfig(data=str(_photos(root / "photos")), out=str(out), steps=steps, channels=4, levels=2,
                          disc_channels=4, crop=32, batch=2, val_images=2, adv_start=1, val_every=2, sample_every=2,
                          **_RUN)


def _pix2pix(root: Path, out: Path, steps: int) -> Any:
    from ganstudio.train.pix2pix import Pix2PixConfig

    before = _photos(root / "before")
    after = root / "after"
    if not after.is_dir():
        after.mkdir(parents=True)
        for path in sorted(before.iterdir()):  # the same names: each photo's after is its negative
            Image.fromarray(255 - np.asarray(Image.open(path))).save(after / path.name)
    return Pix2PixConfig(before=str(before), after=str(after), out=str(out), steps=steps, channels=4, levels=2,
                         disc_channels=4, crop=32, batch=2, val_images=2, adv_start=1, val_every=2, sample_every=2,
                         **_RUN)


def _heads(root: Path, out: Path, steps: int) -> Any:
    from ganstudio.train.heads import HeadsConfig

    cats, dogs = _photos(root / "cats", 4, (64, 72)), _photos(root / "dogs", 4, (72, 64))
    # random AlexNet weights label nothing the probe is sure of: every photo is kept
    return HeadsConfig(domain_a=str(cats), domain_b=str(dogs), out=str(out), steps=steps, size=64,
                       widths=(8, 8, 8, 8, 8), decoder=8, batch=2, val_images=1, min_probability=0.0, val_every=2,
                       sample_every=2, **_RUN)


CASES = {case.name: case for case in (
    Case("superres", "superres", _superres),
    Case("superres-gan", "superres", _superres_gan),
    Case("inpaint", "inpaint", _inpaint),
    Case("cyclegan", "cyclegan", _cyclegan),
    Case("dcgan", "dcgan", _dcgan),
    Case("pose", "pose", _pose),
    Case("pose-refiner", "pose_refiner", _pose_refiner),
    Case("colorize", "colorize", _colorize),  # the first family written for the engine: no pre-engine fixture
    Case("pix2pix", "pix2pix", _pix2pix),
    Case("heads", "heads", _heads),
)}


def event_fields(events: list[dict]) -> list[list[Any]]:
    """Each event's name and sorted field names (and a step event's loss names): what a watcher relies on."""
    fields = []
    for event in events:
        keys = sorted(k for k in event if k != "time")
        row: list[Any] = [event["event"], keys]
        if event["event"] == "step":
            row.append(sorted(event["losses"]))
        fields.append(row)
    return fields


def step_losses(events: list[dict]) -> list[dict[str, float]]:
    return [event["losses"] for event in events if event["event"] == "step"]


def write_fixtures(work: Path) -> None:
    """Run every case to step 2 (checkpointed), resume it to step 4, and keep what the tests compare against."""
    import shutil

    import torch

    for name, case in CASES.items():
        if name in ("colorize", "pix2pix", "heads"):
            continue
        torch.manual_seed(0)
        root, out = work / name / "data", work / name / "run"
        code, first = case.train(root, out, 2)
        assert code == 0, first[-3:]
        target = FIXTURES / name
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(out / "checkpoints" / "step_00000002.pt", target / "step_00000002.pt")
        code, resumed = case.train(root, out, 4, resume=True)
        assert code == 0, resumed[-3:]
        record = {"first": event_fields(first), "resumed": event_fields(resumed), "losses": step_losses(resumed)}
        (target / "events.json").write_text(json.dumps(record, indent=1) + "\n")
        print(name, (target / "step_00000002.pt").stat().st_size, "bytes")


def prepare(name: str, root: Path) -> None:
    """Make a case's data before several processes read it."""
    lpips_weights(root / "weights")
    CASES[name].make_config(root, root / "unused", 1)


def run_distributed(name: str, root: Path, out: Path, steps: int) -> int:
    """One rank of a ``torchrun`` launch of a case: rank 0 prints the events; a rank above 0 fails if it writes
    a checkpoint, weights or a picture; every rank writes the digest of its final weights as ``root/rank<N>.txt``."""
    import hashlib

    import torch

    from ganstudio.train import checkpoint, common, engine

    rank = int(os.environ["RANK"])
    if rank > 0:
        def forbidden(*args: Any, **kwargs: Any) -> None:
            raise AssertionError(f"rank {rank} wrote a file")

        checkpoint.save_checkpoint = checkpoint.save_weights = common.write_image = forbidden  # type: ignore
    families: list[engine.Family] = []
    original = engine.Family.modules

    def spy(self: engine.Family) -> dict[str, torch.nn.Module]:
        families.append(self)
        return original(self)

    engine.Family.modules = spy  # type: ignore[method-assign]
    code, events = CASES[name].train(root, out, steps, resume=(out / "checkpoints").is_dir())
    digest = hashlib.sha256()
    for module_name, module in sorted(original(families[0]).items()):
        for tensor in module.state_dict().values():
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    (root / f"rank{rank}.txt").write_text(digest.hexdigest())
    if rank == 0:
        print(json.dumps(events))
    return code


if __name__ == "__main__":
    if sys.argv[1] == "--distributed":
        sys.exit(run_distributed(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5])))
    write_fixtures(Path(sys.argv[1]))
