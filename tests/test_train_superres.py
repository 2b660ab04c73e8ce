"""SRResNet architecture and the super-resolution training engine: shapes, checkpoints, resume, export."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from ganstudio.models.arch import build_arch
from ganstudio.models.arch.srresnet import SRResNet
from ganstudio.train import checkpoint as ckpt
from ganstudio.train.data import bicubic_downscale
from ganstudio.train.discriminators import SRGANDiscriminator
from ganstudio.train.events import EventWriter
from ganstudio.train.superres import SuperResConfig, export, train

TINY = dict(blocks=1, channels=8, crop=32, batch=2, val_images=2, val_crop=32, warmup=1, log_every=1)
#: The perceptual losses' AlexNet needs larger crops.
GAN_TINY = {**TINY, "crop": 40, "val_crop": 40}


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("bicubic_residual", [False, True])
@pytest.mark.parametrize("size", [(7, 13), (16, 16)])
def test_output_is_scale_times_input_for_any_size(scale: int, bicubic_residual: bool, size: tuple[int, int]) -> None:
    model = SRResNet(num_blocks=2, channels=8, scale=scale, bicubic_residual=bicubic_residual).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, *size))
    assert out.shape == (1, 3, size[0] * scale, size[1] * scale)


def test_registered_as_srresnet() -> None:
    model = build_arch("srresnet", {"num_blocks": 2, "channels": 8, "scale": 2})
    assert isinstance(model, SRResNet)
    assert model.scale == 2


def test_rejects_unsupported_scale() -> None:
    with pytest.raises(ValueError):
        SRResNet(scale=3)


def test_bicubic_residual_starts_near_bicubic() -> None:
    # The residual branch is initialised small, so an untrained model is close to a plain bicubic upscale.
    torch.manual_seed(0)
    model = SRResNet(num_blocks=2, channels=8, scale=4, bicubic_residual=True).eval()
    x = torch.rand(1, 3, 12, 12)
    bicubic = torch.nn.functional.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    with torch.no_grad():
        assert (model(x) - bicubic).abs().mean() < 0.01


@pytest.mark.parametrize("size", [48, 96])
def test_discriminator_gives_one_logit_per_image_at_any_crop(size: int) -> None:
    disc = SRGANDiscriminator(channels=8)
    assert disc(torch.rand(2, 3, size, size)).shape == (2,)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in disc.modules()) == 8


def test_bicubic_downscale_matches_pillow_and_rejects_odd_sizes() -> None:
    hr = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    lr = bicubic_downscale(hr, 4)
    assert lr.shape == (8, 12, 3) and lr.dtype == np.uint8
    with pytest.raises(ValueError):
        bicubic_downscale(hr[:30], 4)


def _photos(folder: Path, count: int = 6) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (40 + 4 * i, 48, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    return folder


def _events(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_training_checkpoints_resumes_and_exports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _photos(tmp_path / "photos")
    run = tmp_path / "run"
    config = SuperResConfig(data=str(data), out=str(run), steps=3, checkpoint_every=2, val_every=2,
                            sample_every=2, **TINY)
    assert train(config, events=EventWriter()) == 0
    first = _events(capsys)
    assert any(e["event"] == "warning" and "broken.jpg" in e["message"] for e in first)
    assert [e["step"] for e in first if e["event"] == "step"] == [1, 2, 3]
    assert any(e["event"] == "sample" and Path(e["path"]).is_file() for e in first)
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step_00000002.pt", "step_00000003.pt"]
    saved = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))
    assert saved["step"] == 3

    # The resumed run must start from step 3 with the saved weights, not from scratch.
    resumed_config = SuperResConfig(data=str(data), out=str(run), steps=5, checkpoint_every=100, **TINY)
    loaded: dict[str, torch.Tensor] = {}
    original_load = SRResNet.load_state_dict

    def spy(self: SRResNet, state_dict: dict, *args: object, **kwargs: object) -> object:
        loaded.update(state_dict)
        return original_load(self, state_dict, *args, **kwargs)

    SRResNet.load_state_dict = spy  # type: ignore[method-assign]
    try:
        assert train(resumed_config, resume=True, events=EventWriter()) == 0
    finally:
        SRResNet.load_state_dict = original_load  # type: ignore[method-assign]
    second = _events(capsys)
    assert next(e for e in second if e["event"] == "start")["step"] == 3
    assert [e["step"] for e in second if e["event"] == "step"] == [4, 5]
    assert all(torch.equal(loaded[k], v) for k, v in saved["model"].items())
    final = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))
    assert final["step"] == 5
    assert final["optimizer"]["state"], "optimizer moments must survive a resume"
    assert any(not torch.equal(final["model"][k], v) for k, v in saved["model"].items())

    weights = tmp_path / "out" / "tiny-x4.safetensors"
    card_path = export(run, weights, "tiny-x4", "Tiny ×4", machine="test", use_best=False)
    card = json.loads(card_path.read_text())
    assert card_path == weights.with_suffix(".json")
    assert card["name"] == "tiny-x4" and card["task"] == "superres" and card["scale"] == 4
    assert card["training"]["steps"] == 5 and card["training"]["machine"] == "test"
    model = build_arch(card["architecture"]["name"], card["architecture"]["params"])
    model.load_state_dict(load_file(str(weights)))
    assert all(torch.equal(model.state_dict()[k], v) for k, v in final["model"].items())


def test_checkpoint_write_is_atomic_and_prunes_old(tmp_path: Path) -> None:
    for step in range(1, 5):
        ckpt.save_checkpoint(tmp_path, {"step": step}, keep=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step_00000003.pt", "step_00000004.pt"]
    assert not list((tmp_path / ckpt.CHECKPOINT_DIR).glob("*.tmp"))


def test_init_starts_from_given_weights_and_rejects_other_shapes(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    data = _photos(tmp_path / "photos")
    start = SRResNet(TINY["blocks"], TINY["channels"], 4, False)
    init = tmp_path / "init.safetensors"
    ckpt.save_weights(start, init)
    # lr_min = lr: the one step moves the weights a tiny, known-small amount from the init
    config = SuperResConfig(data=str(data), out=str(tmp_path / "run"), steps=1, lr=1e-9, lr_min=1e-9,
                            init=str(init), **TINY)
    assert train(config, events=EventWriter()) == 0
    trained = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "run"))["model"]
    assert all(torch.allclose(trained[k], v, atol=1e-6) for k, v in start.state_dict().items())
    assert any(v.abs().sum() > 0 for v in start.state_dict().values())

    wider = SRResNet(TINY["blocks"], TINY["channels"] * 2, 4, False)
    ckpt.save_weights(wider, init)
    with pytest.raises(RuntimeError, match="size mismatch"):
        train(SuperResConfig(data=str(data), out=str(tmp_path / "run2"), steps=1, init=str(init), **TINY),
              events=EventWriter())
    capsys.readouterr()


def test_the_card_states_the_terms_of_the_data_it_was_trained_on(tmp_path):
    from ganstudio.train.common import data_licence

    assert "research" in data_licence("/work/shared/data/photos")
    own = data_licence(str(tmp_path / "my photos"))
    assert "research" not in own and "my photos" in own
    init = tmp_path / "base.safetensors"
    (tmp_path / "base.json").write_text('{"data": {"licence": "non-commercial research terms"}}')
    tuned = data_licence(str(tmp_path / "my photos"), str(init))
    assert "Fine-tuned from base.safetensors (non-commercial research terms)" in tuned
    # a fine-tune of that fine-tune, on the same folder: the same terms, said once
    (tmp_path / "tuned.json").write_text(json.dumps({"data": {"licence": tuned}}))
    again = data_licence(str(tmp_path / "my photos"), str(tmp_path / "tuned.safetensors"))
    assert again == own + " Fine-tuned from tuned.safetensors (the same terms)"


@pytest.mark.parametrize("discriminator", ["projected", "srgan", "patch"])
def test_srgan_phase_trains_a_discriminator_that_survives_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                 random_lpips_weights: Path,
                                                                 discriminator: str) -> None:
    data = _photos(tmp_path / "photos")
    run = tmp_path / "run"
    gan = dict(perceptual_weight=1.0, adv_weight=0.01, discriminator=discriminator, disc_channels=8,
               lpips_weights=str(random_lpips_weights), val_every=2, sample_every=0)
    config = SuperResConfig(data=str(data), out=str(run), steps=2, checkpoint_every=2, **gan, **GAN_TINY)
    assert train(config, events=EventWriter()) == 0
    events = _events(capsys)
    steps = [e for e in events if e["event"] == "step"]
    assert set(steps[-1]["losses"]) == {"l1", "lpips", "g_adv", "d"}
    validation = next(e for e in events if e["event"] == "validation")
    assert validation["lpips"] == validation["best_lpips"] > 0
    saved = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))
    assert saved["discriminator"] and saved["disc_optimizer"]["state"]

    loaded: dict[str, torch.Tensor] = {}
    from ganstudio.train import engine

    original = engine.Family.track

    def spy(self: engine.Family, **objects: object) -> None:
        original(self, **objects)
        if "discriminator" in objects:
            loaded.update({k: v.clone() for k, v in objects["discriminator"].state_dict().items()})

    engine.Family.track = spy  # type: ignore[method-assign]
    try:
        resumed = SuperResConfig(data=str(data), out=str(run), steps=3, checkpoint_every=100, **gan, **GAN_TINY)
        assert train(resumed, resume=True, events=EventWriter()) == 0
    finally:
        engine.Family.track = original  # type: ignore[method-assign]
    assert loaded and all(torch.equal(loaded[k], v) for k, v in saved["discriminator"].items())
    final = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))
    assert final["step"] == 3
    assert any(not torch.equal(final["discriminator"][k], v) for k, v in saved["discriminator"].items())
    capsys.readouterr()

    card = json.loads(export(run, tmp_path / "sharp.safetensors", "sharp", "Sharp", machine="test").read_text())
    assert "LPIPS" in card["training"]["loss"] and "GAN" in card["training"]["loss"]
    assert card["training"]["validation_lpips"] == pytest.approx(final["best"]["lpips"])


def test_perceptual_run_keeps_the_weights_that_look_closest_not_the_sharpest_psnr(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], random_lpips_weights: Path) -> None:
    data = _photos(tmp_path / "photos")
    config = SuperResConfig(data=str(data), out=str(tmp_path / "run"), steps=4, val_every=1, sample_every=0,
                            perceptual_weight=1.0, lpips_weights=str(random_lpips_weights), **GAN_TINY)
    assert train(config, events=EventWriter()) == 0
    validations = [e for e in _events(capsys) if e["event"] == "validation"]
    best = min(validations, key=lambda e: e["lpips"])
    assert validations[-1]["best_step"] == best["step"]
    assert validations[-1]["best_lpips"] == pytest.approx(best["lpips"])


def test_srgan_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="discriminator"):
        SuperResConfig(data="", out="", discriminator="vgg")
    with pytest.raises(ValueError, match="at least one loss"):
        SuperResConfig(data="", out="", l1_weight=0)
    with pytest.raises(ValueError, match="0 or more"):
        SuperResConfig(data="", out="", adv_weight=-1)
    with pytest.raises(ValueError, match="at least 36 px"):
        SuperResConfig(data="", out="", adv_weight=0.01, crop=32)


def test_init_partial_takes_the_x4_body_for_a_x2_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ganstudio.train.common import load_matching

    x4 = SRResNet(2, 8, 4, True)
    x2 = SRResNet(2, 8, 2, True)
    source = tmp_path / "x4.safetensors"
    ckpt.save_weights(x4, source)
    taken, fresh = load_matching(x2, source)
    assert "body.0.conv1.weight" in taken and fresh == []
    assert torch.equal(x2.body[1].conv2.weight, x4.body[1].conv2.weight)
    assert torch.equal(next(x2.upsample[0].parameters()), next(x4.upsample[0].parameters()))

    back = SRResNet(2, 8, 4, True)
    x2_file = tmp_path / "x2.safetensors"
    ckpt.save_weights(x2, x2_file)
    taken, fresh = load_matching(back, x2_file)
    assert fresh and all(name.startswith("upsample.1.") for name in fresh)

    other = tmp_path / "other.safetensors"
    ckpt.save_weights(torch.nn.Linear(3, 5), other)
    with pytest.raises(ValueError, match="none of its tensors"):
        load_matching(x2, other)

    data = _photos(tmp_path / "photos")
    config = SuperResConfig(data=str(data), out=str(tmp_path / "run"), steps=1, scale=2, bicubic_residual=True,
                            init=str(source), init_partial=True, **{**TINY, "blocks": 2})
    assert train(config, events=EventWriter()) == 0
    assert any(e["event"] == "warning" and "--init-partial" in e["message"] for e in _events(capsys))


def test_perceptual_views_share_one_offset_and_the_blur_removes_the_aliasing_period() -> None:
    from ganstudio.train.lpips import perceptual_views

    torch.manual_seed(0)
    sr, hr = torch.rand(2, 3, 40, 40), torch.rand(2, 3, 40, 40)
    a, b = perceptual_views(sr, hr, blur=0.0)
    assert a.shape == b.shape and 37 <= a.shape[-1] <= 40
    offset = 40 - a.shape[-1]
    assert torch.equal(a, sr[..., 40 - a.shape[-2]:, offset:]) and torch.equal(b, hr[..., 40 - b.shape[-2]:, offset:])

    x = torch.arange(64, dtype=torch.float32)
    mesh = (torch.sin(2 * math.pi * x / 4)[None, :] * torch.ones(64, 1)).expand(1, 3, 64, 64)
    broad = (torch.sin(2 * math.pi * x / 16)[None, :] * torch.ones(64, 1)).expand(1, 3, 64, 64)
    inner = (..., slice(8, -8), slice(8, -8))
    mesh_left = perceptual_views(mesh, mesh, blur=1.5)[0][inner].abs().max()
    broad_left = perceptual_views(broad, broad, blur=1.5)[0][inner].abs().max()
    assert mesh_left < 0.1 and broad_left > 0.6
