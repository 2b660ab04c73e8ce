"""The inpainting generator, the learned path of the inpaint tool (paste-back, feather, colour match), the mask
generator and the inpainting training loop (checkpoint, resume, export)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image
from safetensors.torch import load_file

from ganstudio.cli import main as cli_main
from ganstudio.engine import CancelToken, Cancelled
from ganstudio.models import configure_registry, get_registry
from ganstudio.models.arch import build_arch, register_arch
from ganstudio.models.arch.inpaint_gated import GatedInpaintNet, push_pull
from ganstudio.tools import get_tool
from ganstudio.tools.inpaint import InpaintParams, border_offset, feather_weights
from ganstudio.train import checkpoint as ckpt
from ganstudio.train.checkpoint import export_safetensors
from ganstudio.train.discriminators import SNPatchGANDiscriminator
from ganstudio.train.events import EventWriter
from ganstudio.train.inpaint import InpaintConfig, build_card, export, train
from ganstudio.train.masks import random_mask

TINY_ARCH = dict(channels=4, levels=2, dilations=(2,))


@register_arch("test_constant_fill")
class ConstantFill(nn.Module):
    """Outputs one grey level everywhere: stands in for a model whose colours are off."""

    def __init__(self) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.tensor(0.8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value.expand(x.shape[0], 3, *x.shape[2:])


@pytest.mark.parametrize("size", [(8, 8), (16, 24), (40, 64)])
def test_generator_maps_rgb_and_mask_to_rgb_of_the_same_size(size: tuple[int, int]) -> None:
    model = build_arch("inpaint_gated", {"channels": 4, "levels": 3, "dilations": [2, 4]}).eval()
    assert isinstance(model, GatedInpaintNet) and model.multiple_of == 8
    with torch.no_grad():
        out = model(torch.rand(2, 4, *size))
    assert out.shape == (2, 3, *size)
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("prefill", [False, True])
def test_generator_ignores_the_pixels_under_the_hole(prefill: bool) -> None:
    torch.manual_seed(0)
    model = GatedInpaintNet(**TINY_ARCH, prefill=prefill).eval()
    x = torch.rand(1, 4, 32, 32)
    x[:, 3] = 0
    x[:, 3, 8:20, 8:20] = 1
    changed_hole, changed_known = x.clone(), x.clone()
    changed_hole[:, :3, 8:20, 8:20] = torch.rand(3, 12, 12)
    changed_known[:, :3, 24:, 24:] = torch.rand(3, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), model(changed_hole))
        assert not torch.allclose(model(x), model(changed_known))


def test_push_pull_keeps_known_pixels_and_fills_the_hole_from_its_border() -> None:
    known = torch.ones(1, 1, 40, 56)
    known[..., 10:30, 12:44] = 0
    ramp = torch.linspace(0, 1, 56).expand(1, 3, 40, 56).contiguous()
    filled = push_pull(ramp * known, known)
    assert torch.allclose(filled * known, ramp * known)
    assert torch.allclose(push_pull(torch.full_like(ramp, 0.3) * known, known), torch.full_like(ramp, 0.3))
    row = filled[0, 0, 20, 12:44]
    assert row[0] < row[len(row) // 2] < row[-1]  # dark side to bright side, not one flat colour
    assert 0.1 < row[0] < 0.4 and 0.6 < row[-1] < 0.9


def test_an_untrained_prefill_generator_starts_from_the_push_pull_fill() -> None:
    torch.manual_seed(0)
    model = GatedInpaintNet(channels=8, levels=3, dilations=(2, 4), prefill=True).eval()
    x = torch.rand(1, 4, 48, 64)
    x[:, 3] = 0
    x[:, 3, 10:30, 20:50] = 1
    with torch.no_grad():
        out = model(x)
    start = push_pull(x[:, :3] * (1 - x[:, 3:]), 1 - x[:, 3:])
    # the tail starts small: a correction of a few grey levels, not a fill of its own
    assert (out - start).abs().mean() < 0.03


def test_generator_rejects_bad_levels() -> None:
    with pytest.raises(ValueError, match="levels"):
        GatedInpaintNet(levels=0)


@pytest.mark.parametrize("size,cells", [(64, 1), (128, 2), (96, 2)])
def test_sn_patchgan_gives_a_map_of_patch_logits(size: int, cells: int) -> None:
    disc = SNPatchGANDiscriminator(channels=4)
    assert disc(torch.rand(2, 4, size, size)).shape == (2, 16, cells, cells)


def test_mask_generator_covers_5_to_45_percent_and_is_seeded() -> None:
    areas = []
    for seed in range(150):
        for height, width in ((128, 128), (96, 160)):
            mask = random_mask(height, width, np.random.default_rng(seed))
            assert mask.shape == (height, width) and mask.dtype == bool
            areas.append(mask.mean())
    areas = np.array(areas)
    assert areas.min() >= 0.05 and areas.max() <= 0.45
    assert areas.std() > 0.05, "masks must span the range, not sit at one size"
    assert np.array_equal(random_mask(64, 64, np.random.default_rng(7)), random_mask(64, 64, np.random.default_rng(7)))
    narrow = [random_mask(64, 64, np.random.default_rng(s), 0.2, 0.25).mean() for s in range(30)]
    assert min(narrow) >= 0.2 and max(narrow) <= 0.25


def test_feather_fades_in_inside_the_mask_only() -> None:
    hole = np.zeros((40, 40), bool)
    hole[10:30, 10:30] = True
    weights = feather_weights(hole, 4)
    assert np.all(weights[~hole] == 0)
    assert weights[20, 20] == 1
    edge_row = weights[20, 10:16]
    assert 0 < edge_row[0] < 0.5 and np.all(np.diff(edge_row) >= 0) and edge_row[-1] == 1
    assert np.array_equal(feather_weights(hole, 0), hole.astype(np.float32))


def test_border_offset_measures_the_colour_shift_around_the_hole() -> None:
    rng = np.random.default_rng(0)
    original = rng.uniform(0.2, 0.8, (64, 64, 3)).astype(np.float32)
    hole = np.zeros((64, 64), bool)
    hole[16:48, 16:48] = True
    shift = np.array([0.1, -0.05, 0.2], np.float32)
    offset = border_offset(original + shift, original, hole)
    assert np.allclose(offset[hole], shift, atol=1e-3)
    assert np.allclose(border_offset(original, original, hole), 0, atol=1e-6)


def _install_model(folder: Path, name: str, arch: str, params: dict, module: nn.Module, **card: object) -> None:
    export_safetensors(module, folder / f"{name}.safetensors",
                       {"name": name, "task": "inpaint", "architecture": {"name": arch, "params": params},
                        "multiple_of": 4, "tiling": False, **card})
    configure_registry(folder)


def _photo(height: int, width: int, channels: int = 3, dtype: type = np.uint8) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    base = (np.sin(x / 9.0) + np.cos(y / 7.0) + 2) / 4
    image = np.stack([base * (0.6 + 0.4 * c / channels) for c in range(channels)], axis=2)
    return (image * np.iinfo(dtype).max).round().astype(dtype)


@pytest.mark.parametrize("channels,dtype", [(3, np.uint8), (4, np.uint8), (1, np.uint16)])
def test_learned_fill_changes_only_the_masked_pixels(tmp_path: Path, channels: int, dtype: type) -> None:
    torch.manual_seed(0)
    _install_model(tmp_path, "tiny-inpaint", "inpaint_gated", dict(TINY_ARCH), GatedInpaintNet(**TINY_ARCH))
    assert not get_registry().get("tiny-inpaint").is_classic
    image = _photo(90, 120, channels, dtype)
    mask = np.zeros((90, 120), np.uint8)
    mask[30:60, 50:85] = 255
    progress: list[float] = []
    out = get_tool("inpaint").run(image, InpaintParams(model="tiny-inpaint"), mask=mask,
                                  progress=lambda fraction, message: progress.append(fraction))
    assert out.shape == image.shape and out.dtype == dtype
    outside = mask == 0
    assert np.array_equal(out[outside], image[outside])
    assert not np.array_equal(out[~outside], image[~outside])
    if channels == 4:
        assert np.array_equal(out[..., 3], image[..., 3]), "alpha is the user's, not the model's"
    assert progress[-1] == 1.0 and progress == sorted(progress)


def test_learned_fill_can_be_cancelled(tmp_path: Path) -> None:
    _install_model(tmp_path, "tiny-inpaint", "inpaint_gated", dict(TINY_ARCH), GatedInpaintNet(**TINY_ARCH))
    token = CancelToken()
    token.cancel()
    mask = np.zeros((32, 32), bool)
    mask[8:16, 8:16] = True
    with pytest.raises(Cancelled):
        get_tool("inpaint").run(_photo(32, 32), InpaintParams(model="tiny-inpaint"), mask=mask, cancel=token)


def test_large_crops_run_at_the_working_size_and_come_back_full_size(tmp_path: Path) -> None:
    torch.manual_seed(0)
    _install_model(tmp_path, "tiny-inpaint", "inpaint_gated", dict(TINY_ARCH), GatedInpaintNet(**TINY_ARCH),
                   working_size=64)
    seen: list[tuple[int, ...]] = []
    handle = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda module, args: seen.append(tuple(args[0].shape)) if isinstance(module, GatedInpaintNet) else None)
    try:
        image = _photo(300, 400)
        mask = np.zeros((300, 400), bool)
        mask[100:200, 120:300] = True
        out = get_tool("inpaint").run(image, InpaintParams(model="tiny-inpaint"), mask=mask)
    finally:
        handle.remove()
    assert max(seen[0][2:]) <= 64
    assert out.shape == image.shape
    assert np.array_equal(out[~mask], image[~mask])


def test_colour_match_leaves_no_step_at_the_mask_edge(tmp_path: Path) -> None:
    _install_model(tmp_path, "constant", "test_constant_fill", {}, ConstantFill())
    # a horizontal ramp: the right colour differs along the border, so one global shift would leave steps
    ramp = np.linspace(0.3, 0.5, 128, dtype=np.float32)
    image = np.repeat((np.tile(ramp, (128, 1)) * 255).round().astype(np.uint8)[..., None], 3, axis=2)
    mask = np.zeros((128, 128), bool)
    mask[44:84, 44:84] = True
    out = get_tool("inpaint").run(image, InpaintParams(model="constant", feather=0), mask=mask).astype(float)
    for inside, outside in ((out[44:84, 44], out[44:84, 43]), (out[44:84, 83], out[44:84, 84]),
                            (out[44, 44:84], out[43, 44:84]), (out[83, 44:84], out[84, 44:84])):
        assert np.abs(inside - outside).mean() < 5, "a colour step shows at the mask's edge"
    assert abs(out[mask].mean() - image[mask].mean()) < 5  # the model's 0.8 grey (204) is gone


def _photos(folder: Path, count: int = 6) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (40 + 4 * i, 48, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def _events(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_training_checkpoints_resumes_and_exports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _photos(tmp_path / "photos")
    run = tmp_path / "run"
    tiny = dict(TINY_ARCH, disc_channels=4, crop=32, batch=2, val_images=2, log_every=1, adv_start=1)
    config = InpaintConfig(data=str(data), out=str(run), steps=2, val_every=2, sample_every=2, checkpoint_every=2,
                           **tiny)
    assert train(config, events=EventWriter()) == 0
    first = _events(capsys)
    steps = [e for e in first if e["event"] == "step"]
    assert [e["step"] for e in steps] == [1, 2]
    assert "d" not in steps[0]["losses"] and {"d", "g_adv", "l1"} <= set(steps[1]["losses"])
    assert any(e["event"] == "sample" and Path(e["path"]).is_file() for e in first)
    assert any(e["event"] == "validation" for e in first) and (run / "best.safetensors").is_file()
    saved = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))
    assert saved["step"] == 2 and saved["opt_d"]["state"], "the discriminator must have trained"

    # Resume through the command line: it starts from the checkpoint's weights and step, not from scratch.
    assert cli_main(["train", "inpaint", "--data", str(data), "--out", str(run), "--steps", "3", "--resume",
                     "--checkpoint-every", "100", "--log-every", "1", "--crop", "32", "--no-prefill"]) == 0
    second = _events(capsys)
    assert next(e for e in second if e["event"] == "start")["step"] == 2
    assert [e["step"] for e in second if e["event"] == "step"] == [3]
    final = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))
    assert final["step"] == 3 and final["config"]["channels"] == 4
    assert final["config"]["prefill"] is True, "the architecture comes from the checkpoint, not the command line"
    assert any(not torch.equal(final["generator"][k], v) for k, v in saved["generator"].items())

    weights = tmp_path / "models" / "tiny-inpaint.safetensors"
    card = json.loads(export(run, weights, "tiny-inpaint", "Tiny inpaint", machine="test", use_best=False).read_text())
    assert card["task"] == "inpaint" and card["multiple_of"] == 4 and card["training"]["steps"] == 3
    model = build_arch(card["architecture"]["name"], card["architecture"]["params"])
    model.load_state_dict(load_file(str(weights)))
    assert all(torch.equal(model.state_dict()[k], v) for k, v in final["generator"].items())
    configure_registry(weights.parent)
    image = _photo(48, 64)
    mask = np.zeros((48, 64), bool)
    mask[10:30, 20:40] = True
    out = get_tool("inpaint").run(image, InpaintParams(model="tiny-inpaint"), mask=mask)
    assert np.array_equal(out[~mask], image[~mask])


def test_a_config_saved_before_the_prefill_existed_reads_as_without_it() -> None:
    assert InpaintConfig.from_dict({"data": "", "out": ""}).prefill is False
    assert InpaintConfig.from_dict({"data": "", "out": "", "prefill": True}).prefill is True


def test_card_describes_the_generator() -> None:
    cfg = InpaintConfig(data="", out="", channels=8, levels=3, dilations=(2, 4))
    card = build_card(cfg, "inpaint-gan", "Inpaint GAN", {"machine": "test"})
    assert card["architecture"] == {"name": "inpaint_gated",
                                    "params": {"channels": 8, "levels": 3, "dilations": [2, 4], "prefill": True}}
    assert card["multiple_of"] == 8 and card["tiling"] is False and card["working_size"] == 512
    with pytest.raises(ValueError, match="multiple"):
        InpaintConfig(data="", out="", crop=100)


@pytest.mark.skipif(not (Path(__file__).parents[1] / "pretrained" / "inpaint-gan.safetensors").exists(),
                    reason="inpaint-gan is not shipped in this checkout")
def test_the_shipped_model_loads_from_its_card_and_fills_a_smooth_photo_smoothly() -> None:
    model = get_registry().get("inpaint-gan", "inpaint")
    assert model.source == "pretrained" and model.arch_params["prefill"] is True
    y, x = np.mgrid[0:96, 0:128] / 128.0
    image = (np.stack([0.2 + 0.6 * x, 0.3 + 0.4 * y, 0.7 - 0.5 * x], axis=2) * 255).round().astype(np.uint8)
    mask = np.zeros((96, 128), bool)
    mask[30:66, 40:90] = True
    out = get_tool("inpaint").run(image, InpaintParams(model="inpaint-gan", feather=0), mask=mask)
    assert np.array_equal(out[~mask], image[~mask])
    error = np.abs(out[mask].astype(float) - image[mask]).mean()
    grey = np.abs(128.0 - image[mask]).mean()  # what a fill that ignored the surroundings would be off by
    assert error < 8 and error < grey / 4


def test_a_card_asking_for_a_self_ensemble_runs_the_model_on_each_copy(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = GatedInpaintNet(**TINY_ARCH)
    _install_model(tmp_path, "tiny-inpaint", "inpaint_gated", dict(TINY_ARCH), net)
    _install_model(tmp_path, "tiny-inpaint-x8", "inpaint_gated", dict(TINY_ARCH), net, self_ensemble=8)
    image = _photo(48, 64)
    mask = np.zeros((48, 64), bool)
    mask[16:32, 20:44] = True
    calls: list[tuple[int, ...]] = []
    handle = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda module, args: calls.append(tuple(args[0].shape)) if isinstance(module, GatedInpaintNet) else None)
    try:
        single = get_tool("inpaint").run(image, InpaintParams(model="tiny-inpaint"), mask=mask)
        assert len(calls) == 1
        ensemble = get_tool("inpaint").run(image, InpaintParams(model="tiny-inpaint-x8"), mask=mask)
    finally:
        handle.remove()
    assert len(calls) == 9
    assert not np.array_equal(single, ensemble)
    assert np.array_equal(ensemble[~mask], image[~mask])
