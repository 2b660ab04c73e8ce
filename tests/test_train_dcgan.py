"""The DCGAN generator, its training loop (DiffAugment, checkpoints, resume, export) and the generate tool."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganstudio.cli import main as cli_main
from ganstudio.imaging import read_image
from ganstudio.models import ModelLoadError, configure_registry, get_registry, model_cache
from ganstudio.models.arch import build_arch
from ganstudio.models.arch.dcgan import DCGANGenerator
from ganstudio.tools.generate import GenerateParams
from ganstudio.tools.generate import run as generate
from ganstudio.train import checkpoint as ckpt
from ganstudio.train.common import tile
from ganstudio.train.dcgan import DCGANConfig, train
from ganstudio.train.diffaugment import diff_augment
from ganstudio.train.discriminators import DCGANDiscriminator
from ganstudio.train.events import EventWriter

TINY = dict(size=16, latent_dim=8, ngf=4, ndf=4, batch=4, log_every=1, threads=1)


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """Training sets torch's global thread count (1 here, for shared CI cores): give later tests theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _photos(folder: Path, count: int = 9) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (20 + 2 * i, 24, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    (folder / "tiny.png").write_bytes((folder / "0.png").read_bytes())
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "thumb.png")
    return folder


def _events(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("size", [16, 32, 64])
def test_generator_makes_pictures_of_its_size_in_0_1(size: int) -> None:
    generator = DCGANGenerator(latent_dim=16, ngf=8, size=size).eval()
    with torch.no_grad():
        pictures = generator(torch.randn(3, 16))
    assert pictures.shape == (3, 3, size, size)
    assert pictures.min() >= 0 and pictures.max() <= 1
    assert DCGANDiscriminator(ndf=8, size=size)(pictures * 2 - 1).shape == (3,)


def test_default_generator_is_small_and_registered() -> None:
    generator = build_arch("dcgan", {"latent_dim": 128, "ngf": 64, "size": 64})
    assert isinstance(generator, DCGANGenerator)
    assert 1e6 < sum(p.numel() for p in generator.parameters()) < 4e6
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in generator.modules())
    with pytest.raises(ValueError, match="4 times a power of 2"):
        DCGANGenerator(size=48)
    with pytest.raises(ValueError, match="latent"):
        generator(torch.randn(2, 64))


def test_discriminator_is_spectrally_normalised() -> None:
    convs = [m for m in DCGANDiscriminator(ndf=8, size=32).modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 4 and all(hasattr(conv, "parametrizations") for conv in convs)


def test_diff_augment_moves_pictures_and_lets_gradients_through() -> None:
    torch.manual_seed(0)
    x = (torch.rand(8, 3, 16, 16) * 2 - 1).requires_grad_(True)
    assert torch.equal(diff_augment(x, ()), x)
    shifted = diff_augment(x, ("translation",))
    assert shifted.shape == x.shape
    # some picture moved, and what moved in is the zero fill, never pixels from another picture
    moved = [i for i in range(8) if not torch.equal(shifted[i], x[i])]
    assert moved and all((shifted[i] == 0).any() for i in moved)
    out = diff_augment(x, ("color", "translation", "cutout"))
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="unknown augmentation"):
        DCGANConfig(data="", out="", augment="color,zoom")


def test_tile_makes_a_square_grid() -> None:
    pictures = torch.rand(5, 3, 4, 6)
    grid = tile(pictures)
    assert grid.shape == (3, 8, 18)  # 3 columns x 2 rows, the sixth cell black
    assert torch.equal(grid[:, 4:8, 6:12], pictures[4]) and grid[:, 4:8, 12:].abs().sum() == 0


def test_training_checkpoints_resumes_and_exports_a_loadable_generator(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    data = _photos(tmp_path / "photos")
    run = tmp_path / "run"
    config = DCGANConfig(data=str(data), out=str(run), steps=3, checkpoint_every=2, sample_every=2, sample_count=5,
                         augment="color,translation,cutout", **TINY)
    assert train(config, events=EventWriter()) == 0
    first = _events(capsys)
    assert any(e["event"] == "warning" and "thumb.png" in e["message"] for e in first)
    assert next(e for e in first if e["event"] == "start")["train_images"] == 10
    steps = [e for e in first if e["event"] == "step"]
    assert [e["step"] for e in steps] == [1, 2, 3]
    assert all(set(e["losses"]) == {"d", "g"} and all(math.isfinite(v) for v in e["losses"].values())
               for e in steps)
    samples = [e for e in first if e["event"] == "sample"]
    assert [e["step"] for e in samples] == [2, 3]
    assert read_image(samples[-1]["path"]).pixels.shape[:2] == (32, 48)  # 5 pictures: 2 rows of 3 at 16 px
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step_00000002.pt", "step_00000003.pt"]
    saved = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))
    assert saved["step"] == 3 and saved["opt_d"]["state"] and saved["opt_g"]["state"]

    # Resume through the command line: from the checkpoint's step and weights, with its run-defining settings.
    assert cli_main(["train", "dcgan", "--data", str(data), "--out", str(run), "--steps", "5", "--resume",
                     "--checkpoint-every", "100", "--log-every", "1", "--ngf", "32", "--threads", "1"]) == 0
    second = _events(capsys)
    assert next(e for e in second if e["event"] == "start")["step"] == 3
    assert [e["step"] for e in second if e["event"] == "step"] == [4, 5]
    final = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))
    assert final["step"] == 5 and final["config"]["ngf"] == 4
    for key in ("generator", "generator_ema", "discriminator"):
        assert any(not torch.equal(final[key][k], v) for k, v in saved[key].items() if v.is_floating_point()), key

    # Export through the command line, then load through the registry and the strict loader the app uses.
    models = tmp_path / "models"
    assert cli_main(["train", "dcgan-export", "--run", str(run), "--output", str(models / "tiny-gen.safetensors"),
                     "--title", "Tiny pictures", "--machine", "test"]) == 0
    assert next(e for e in _events(capsys) if e["event"] == "export")["card"] == str(models / "tiny-gen.json")
    card = json.loads((models / "tiny-gen.json").read_text())
    assert card["task"] == "generate" and card["training"]["steps"] == 5 and card["output_size"] == 16
    assert card["data"]["folder"] == str(data) and set(card["training"]["final_losses"]) == {"d", "g"}
    configure_registry(models)
    model = get_registry().get("tiny-gen", "generate")
    module = model_cache.get(model, torch.device("cpu"), torch.float32)
    assert all(torch.equal(module.state_dict()[k], v) for k, v in final["generator_ema"].items())

    first_picture = generate(None, GenerateParams("tiny-gen", seed=7))
    assert first_picture.shape == (16, 16, 3) and first_picture.dtype == np.uint8
    np.testing.assert_array_equal(generate(None, GenerateParams("tiny-gen", seed=7)), first_picture)
    assert not np.array_equal(generate(None, GenerateParams("tiny-gen", seed=8)), first_picture)

    # strict loading: a card that promises another architecture must fail, not load half the weights
    card["architecture"]["params"]["ngf"] = 8
    (models / "tiny-gen.json").write_text(json.dumps(card))
    model_cache.clear()
    configure_registry(models)
    with pytest.raises(ModelLoadError, match="size mismatch"):
        generate(None, GenerateParams("tiny-gen", seed=7))


def test_a_resumed_run_continues_the_same_random_stream(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _photos(tmp_path / "photos")
    straight = DCGANConfig(data=str(data), out=str(tmp_path / "straight"), steps=4, sample_every=0, **TINY)
    assert train(straight, events=EventWriter()) == 0
    halves = DCGANConfig(data=str(data), out=str(tmp_path / "halves"), steps=2, sample_every=0, **TINY)
    assert train(halves, events=EventWriter()) == 0
    halves.steps = 4
    assert train(halves, resume=True, events=EventWriter()) == 0
    capsys.readouterr()
    one = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "straight"))
    two = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "halves"))
    assert two["step"] == one["step"] == 4
    assert all(torch.allclose(one["generator"][k].float(), v.float(), atol=1e-6)
               for k, v in two["generator"].items())
