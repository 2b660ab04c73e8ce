"""The Colourise tool and `ganstudio apply colorize`: lightness kept, strength, masks, grey and colour input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from ganstudio.cli import main as cli_main
from ganstudio.imaging.color import lab_to_rgb, lab_to_rgb_keeping_lightness, rgb_to_lab
from ganstudio.models import configure_registry
from ganstudio.models.arch.colorize import ColorizeUNet
from ganstudio.tools import get_tool
from ganstudio.tools.colorize import ColorizeParams, input_note, is_colour

colorize = get_tool("colorize")


def _install_vivid_model(folder: Path, name: str = "vivid") -> str:
    """A tiny colourisation model that paints everything one strong colour (a* ~ +80, b* ~ +70: a warm red,
    outside sRGB for dark and light greys), so what the tool does with a model's colour is plain to see."""
    model = ColorizeUNet(channels=4, levels=2)
    with torch.no_grad():
        model.head.bias.copy_(torch.atanh(torch.tensor([80 / 110, 70 / 110])))
    folder.mkdir(parents=True, exist_ok=True)
    save_file(model.state_dict(), folder / f"{name}.safetensors")
    card = {"name": name, "title": "Vivid", "task": "colorize", "scale": 1,
            "architecture": {"name": "colorize_unet", "params": {"channels": 4, "levels": 2}},
            "multiple_of": 4, "working_size": 64, "tiling": False}
    (folder / f"{name}.json").write_text(json.dumps(card))
    configure_registry(folder)
    return name


@pytest.fixture
def vivid(tmp_path: Path) -> str:
    return _install_vivid_model(tmp_path / "models")


def _grey_photo(height: int = 50, width: int = 70, channels: int = 1, dtype: type = np.uint8) -> np.ndarray:
    ramp = np.linspace(0.05, 0.95, width)[None, :] * np.linspace(0.6, 1.0, height)[:, None]
    grey = (ramp * np.iinfo(dtype).max).astype(dtype)[..., None]
    return np.repeat(grey, channels, axis=2) if channels > 1 else grey


def _lightness(rgb: np.ndarray) -> np.ndarray:
    scale = np.iinfo(rgb.dtype).max
    return rgb_to_lab(rgb[..., :3].astype(np.float32) / scale)[..., 0]


def test_a_grey_photo_comes_back_in_colour_with_its_lightness_kept(vivid: str) -> None:
    grey = _grey_photo()
    out = colorize.run(grey, ColorizeParams(model=vivid))
    assert out.shape == (50, 70, 3) and out.dtype == np.uint8
    assert is_colour(out) and not is_colour(np.repeat(grey, 3, axis=2))
    # every pixel's L* is the grey photo's, to the 8-bit rounding
    assert np.abs(_lightness(out) - _lightness(np.repeat(grey, 3, axis=2))).max() < 0.6
    # and the colour is the model's: red-orange, a* and b* both well above zero
    lab = rgb_to_lab(out.astype(np.float32) / 255)
    assert lab[..., 1].mean() > 20 and lab[..., 2].mean() > 20


def test_without_keep_lightness_colours_out_of_gamut_are_clipped_and_lightness_drifts(vivid: str) -> None:
    grey = _grey_photo()
    kept = colorize.run(grey, ColorizeParams(model=vivid, keep_lightness=True))
    free = colorize.run(grey, ColorizeParams(model=vivid, keep_lightness=False))
    drift = np.abs(_lightness(free) - _lightness(np.repeat(grey, 3, axis=2)))
    assert drift.max() > 3.0  # a strong red at the grey's lightness is not in sRGB: clipping moves L*
    chroma = lambda rgb: np.hypot(*np.moveaxis(rgb_to_lab(rgb.astype(np.float32) / 255)[..., 1:], 2, 0)).mean()
    assert chroma(free) > chroma(kept)  # keeping lightness gives up chroma, never lightness


def test_keeping_lightness_is_exact_for_any_colour_and_a_no_op_inside_srgb() -> None:
    rng = np.random.default_rng(0)
    lab = np.stack([rng.uniform(0, 100, (64, 64)), rng.uniform(-110, 110, (64, 64)),
                    rng.uniform(-110, 110, (64, 64))], axis=2).astype(np.float32)
    rgb = lab_to_rgb_keeping_lightness(lab)
    assert rgb.min() >= 0 and rgb.max() <= 1
    assert np.abs(rgb_to_lab(rgb)[..., 0] - lab[..., 0]).max() < 0.3
    inside = rgb_to_lab(rng.uniform(0, 1, (32, 32, 3)).astype(np.float32))
    np.testing.assert_allclose(lab_to_rgb_keeping_lightness(inside), lab_to_rgb(inside), atol=1e-6)


def test_strength_zero_gives_back_the_photo_and_half_strength_half_the_colour(vivid: str) -> None:
    grey = _grey_photo(channels=3)
    assert np.array_equal(colorize.run(grey, ColorizeParams(model=vivid, strength=0.0)), grey)
    chroma = lambda rgb: np.hypot(*np.moveaxis(rgb_to_lab(rgb.astype(np.float32) / 255)[..., 1:], 2, 0))
    half = chroma(colorize.run(grey, ColorizeParams(model=vivid, strength=0.5, keep_lightness=False)))
    full = chroma(colorize.run(grey, ColorizeParams(model=vivid, strength=1.0, keep_lightness=False)))
    middle = (slice(20, 30), slice(30, 40))  # mid-grey, where half the red fits sRGB unclipped
    assert 0.35 < half[middle].mean() / full[middle].mean() < 0.65
    with pytest.raises(ValueError, match="strength"):
        colorize.run(grey, ColorizeParams(model=vivid, strength=1.5))


def test_a_mask_colours_only_its_region_and_alpha_and_16_bit_are_kept(vivid: str) -> None:
    grey = _grey_photo(channels=2, dtype=np.uint16)
    grey[..., 1] = np.arange(70, dtype=np.uint16)[None, :] * 900
    mask = np.zeros((50, 70), np.uint8)
    mask[10:30, 20:50] = 255
    out = colorize.run(grey, ColorizeParams(model=vivid, use_mask=True, feather=0), mask=mask)
    assert out.shape == (50, 70, 4) and out.dtype == np.uint16
    assert np.array_equal(out[..., 3], grey[..., 1])
    outside = mask == 0
    for channel in range(3):  # outside the mask: the grey, replicated, exactly
        assert np.array_equal(out[..., channel][outside], grey[..., 0][outside])
    spread = out[..., :3].max(axis=2).astype(int) - out[..., :3].min(axis=2)
    assert spread[mask > 0].min() > 2000
    with pytest.raises(ValueError, match="mask is empty"):
        colorize.run(grey, ColorizeParams(model=vivid, use_mask=True), mask=np.zeros((50, 70), np.uint8))


def test_a_colour_photo_is_made_grey_first_and_the_user_is_told(vivid: str) -> None:
    rng = np.random.default_rng(3)
    photo = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    assert "made it grey first" in input_note(photo, ColorizeParams(model=vivid))
    assert input_note(_grey_photo(channels=3), ColorizeParams(model=vivid)) == ""
    assert colorize.note_for(photo, ColorizeParams(model=vivid)) == input_note(photo, ColorizeParams(model=vivid))
    out = colorize.run(photo, ColorizeParams(model=vivid))
    assert np.abs(_lightness(out) - _lightness(photo)).max() < 0.6
    # only the photo's lightness went in: the same lightness in other colours gives the same result
    lab = rgb_to_lab(photo.astype(np.float32) / 255)
    lab[..., 1:] *= -1
    other = np.rint(lab_to_rgb_keeping_lightness(lab) * 255).astype(np.uint8)
    assert np.abs(other.astype(int) - photo).max() > 100
    again = colorize.run(other, ColorizeParams(model=vivid))
    assert np.abs(again.astype(int) - out).max() <= 4


def test_a_jpeg_of_a_grey_photo_counts_as_grey(tmp_path: Path) -> None:
    grey = _grey_photo(200, 300, channels=3)
    Image.fromarray(grey).save(tmp_path / "grey.jpg", quality=70)
    assert not is_colour(np.asarray(Image.open(tmp_path / "grey.jpg").convert("RGB")))


def test_cli_apply_colorize_with_strength_and_mask(vivid: str, tmp_path: Path, capsys) -> None:
    source, mask_file, output = tmp_path / "old.png", tmp_path / "mask.png", tmp_path / "out.png"
    Image.fromarray(_grey_photo()[..., 0]).save(source)
    mask = np.zeros((50, 70), np.uint8)
    mask[:, 35:] = 255
    Image.fromarray(mask).save(mask_file)
    assert cli_main(["apply", "colorize", str(source), "-o", str(output), "--model", vivid, "--mask",
                     str(mask_file), "--strength", "0.8", "-q"]) == 0
    out = np.asarray(Image.open(output))
    assert out.shape == (50, 70, 3)
    assert not is_colour(out[:, :30]) and is_colour(out[:, 40:])
    capsys.readouterr()
    colourful = tmp_path / "colour.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 30, 3), dtype=np.uint8)).save(colourful)
    assert cli_main(["apply", "colorize", str(colourful), "-o", str(tmp_path / "c.png"), "--model", vivid]) == 0
    assert "made it grey first" in capsys.readouterr().out
    assert cli_main(["apply", "colorize", str(source), "-o", str(tmp_path / "x.png"), "--model", vivid,
                     "--scale", "2"]) == 2


def test_a_batch_chain_colours_a_folder_and_reports_a_broken_file(vivid: str, tmp_path: Path) -> None:
    folder, out = tmp_path / "old", tmp_path / "coloured"
    folder.mkdir()
    for index in range(2):
        Image.fromarray(_grey_photo()[..., 0]).save(folder / f"{index}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    code = cli_main(["batch", str(folder), "-o", str(out), "--chain", f"colorize:model={vivid},strength=0.5",
                     "--report", str(tmp_path / "report.json"), "-q"])
    assert code == 1  # one file failed, the others were written
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 2 and all(is_colour(np.asarray(Image.open(out / name))) for name in written)
    report = json.loads((tmp_path / "report.json").read_text())
    assert "broken.png" in json.dumps(report)
