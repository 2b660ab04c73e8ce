"""SRResNet architecture and the super-resolution training engine: shapes, checkpoints, resume, export."""
from __future__ import annotations

import json
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
