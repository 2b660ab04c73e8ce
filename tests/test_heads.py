"""The head locator: its targets decode back to the head, training views keep the head where they say, and the
locator's boxes come back in the photo's pixels."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from ganstudio.tools.heads import HeadBox, decode_head, letterbox
from ganstudio.train.heads import STRIDE, HeadSample, HeadsConfig, random_view, targets


@pytest.mark.parametrize("centre, side", [((40.3, 22.7), 30.0), ((100.0, 90.5), 12.0), ((64.0, 64.0), 90.0)])
def test_the_training_targets_decode_to_the_head_they_were_drawn_for(centre, side) -> None:
    heat, disc = targets(np.array(centre), side, 128, 2.0)
    head = decode_head(heat[0], disc / 255.0, STRIDE)
    assert abs(head.cx - centre[0]) < 0.3 and abs(head.cy - centre[1]) < 0.3
    assert abs(head.side / side - 1) < 0.12
    assert head.confidence > 0.9


def test_a_mask_that_misses_the_peak_gives_the_nearest_part_of_it() -> None:
    heat, _ = targets(np.array([30.0, 30.0]), 20.0, 64, 2.0)
    _, disc = targets(np.array([44.0, 30.0]), 20.0, 64, 2.0)
    head = decode_head(heat[0], disc / 255.0, STRIDE)
    assert abs(head.side / 20.0 - 1) < 0.15


def test_a_training_view_shows_the_head_where_it_says() -> None:
    # a photo whose "head" is a red disc: every view must put that disc at the centre and side it reports
    photo = np.full((150, 200, 3), 90, np.uint8)
    import cv2

    cv2.circle(photo, (130, 50), 20, (255, 0, 0), -1)
    sample = HeadSample(photo, HeadBox(130.5, 50.5, 40.0, 1.0))
    cfg = HeadsConfig(domain_a="", domain_b="", out="", size=128)
    rng = np.random.default_rng(3)
    for _ in range(20):
        view, centre, side = random_view(sample, cfg, rng)
        assert view.shape == (128, 128, 3)
        assert 0.1 * 128 * 0.99 <= side <= 0.85 * 128 * 1.01
        assert (0 <= centre).all() and (centre <= 128).all()
        if (view[..., 0] == view[..., 1]).all():
            continue  # a grey view: no red to find
        # the recolouring changes the red, not that it stands out from the grey around it
        red = view[..., 0].astype(int) - view[..., 1:].mean(axis=2)
        ys, xs = np.nonzero(red > red.max() * 0.5)
        assert abs(xs.mean() + 0.5 - centre[0]) < 1.5 + side * 0.05
        assert abs(ys.mean() + 0.5 - centre[1]) < 1.5 + side * 0.05
        assert abs(np.sqrt(len(xs) / np.pi) * 2 / side - 1) < 0.2


def test_the_letterbox_maps_the_photo_into_the_square_and_back() -> None:
    photo = np.zeros((90, 240, 3), np.uint8)
    photo[30:60, 200:230] = 255
    view, matrix = letterbox(photo, 128)
    assert view.shape == (128, 128, 3)
    ys, xs = np.nonzero(view[..., 0] > 200)
    cx, cy = xs.mean() + 0.5, ys.mean() + 0.5
    scale = matrix[0, 0]
    assert abs((cx - matrix[0, 2]) / scale - 215) < 1.5 and abs((cy - matrix[1, 2]) / scale - 45) < 1.5
    # outside the photo is mid grey, which the locator learnt as "nothing"
    assert (view[0, 0] == 128).all()


def _head_model(folder, monkeypatch, head: HeadBox | None) -> str:
    """A tiny untrained translator whose card says it learnt heads, and a locator that finds ``head``."""
    import json

    import torch
    from safetensors.torch import save_file

    from ganstudio.models import configure_registry
    from ganstudio.models.arch.cyclegan import CycleGANGenerator
    from ganstudio.tools import translate

    torch.manual_seed(0)
    model = CycleGANGenerator(ngf=4, n_blocks=1)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "tinyhead.safetensors"))
    card = {"name": "tinyhead", "title": "Tiny head", "task": "translate", "region": "head", "head_context": 2.0,
            "working_size": 32, "architecture": {"name": "cyclegan-resnet", "params": {"ngf": 4, "n_blocks": 1}},
            "multiple_of": 4, "tiling": False}
    (folder / "tinyhead.json").write_text(json.dumps(card))
    configure_registry(folder)
    monkeypatch.setattr(translate, "locate_head", lambda image, runtime=None, cancel=None: head)
    return "tinyhead"


@pytest.mark.parametrize("head", [HeadBox(80.0, 60.0, 30.0, 0.9), HeadBox(8.0, 110.0, 40.0, 0.9)])
def test_a_head_model_changes_the_head_and_leaves_every_other_pixel(tmp_path, monkeypatch, head) -> None:
    from ganstudio.tools.translate import TranslateParams, head_square, run

    name = _head_model(tmp_path / "models", monkeypatch, head)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    result = run(image, TranslateParams(model=name))
    x0, y0, side = head_square(head, 2.0)
    assert side == round(head.side * 2)
    ys, xs = np.ogrid[:120, :160]
    distance = np.hypot(xs + 0.5 - (x0 + side / 2), ys + 0.5 - (y0 + side / 2))
    outside = distance > side / 2
    assert np.array_equal(result[outside], image[outside]), "only the head's disc may change"
    core = distance < side / 2 * 0.7
    assert np.abs(result[core].astype(float) - image[core]).mean() > 30
    assert np.array_equal(run(image, TranslateParams(model=name, strength=0.0)), image)


def test_a_head_model_on_a_photo_with_no_head_says_so_and_a_mask_still_works(tmp_path, monkeypatch) -> None:
    from ganstudio.tools.translate import TranslateParams, run

    name = _head_model(tmp_path / "models", monkeypatch, None)
    image = np.full((64, 64, 3), 100, np.uint8)
    with pytest.raises(ValueError, match="no cat's or dog's head"):
        run(image, TranslateParams(model=name))
    mask = np.zeros((64, 64), np.uint8)
    mask[10:40, 10:40] = 255
    result = run(image, TranslateParams(model=name, use_mask=True), mask=mask)
    assert np.array_equal(result[mask == 0], image[mask == 0]) and not np.array_equal(result, image)


ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "eval" / "cat2dog"
#: Heads marked by looking at held-out photos on a 20 px grid: centre x, y and the head's side (ears left out).
MARKED = {"cats/cat_000.jpg": (95, 112, 120), "cats/cat_025.jpg": (150, 110, 100), "cats/cat_050.jpg": (138, 133, 75),
          "cats/cat_075.jpg": (92, 55, 100), "dogs/dog_000.jpg": (110, 150, 130), "dogs/dog_025.jpg": (150, 110, 220),
          "dogs/dog_050.jpg": (162, 95, 90), "dogs/dog_075.jpg": (75, 135, 130)}


@pytest.mark.skipif(not EVAL.is_dir() or not (ROOT / "pretrained" / "head-locator.json").is_file(),
                    reason="needs ../shared/eval/cat2dog and the shipped head locator")
def test_the_shipped_locator_finds_the_heads_marked_by_hand() -> None:
    from ganstudio.tools.heads import locate_head
    from ganstudio.train.data import load_rgb

    found = {}
    for name, (cx, cy, side) in MARKED.items():
        head = locate_head(load_rgb(EVAL / name))
        found[name] = head is not None and bool(np.hypot(head.cx - cx, head.cy - cy) <= 0.5 * side
                                                 and 0.5 <= head.side / side <= 2.0)
    # what the shipped locator does on these (training/heads/README.md): a lying black cat in shadow and a cat
    # seen large are missed; six of eight is the floor a new locator must keep
    assert sum(found.values()) >= 6, found


def test_head_crops_are_cut_as_the_tool_cuts_them_and_a_rerun_keeps_them(tmp_path, monkeypatch) -> None:
    from PIL import Image

    from ganstudio.tools import heads
    from ganstudio.tools.translate import head_square, square_crop
    from ganstudio.train.events import EventWriter
    from ganstudio.train.heads import write_head_crops

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    pixels = {}
    for name in ("a", "b", "none"):
        pixels[name] = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
        Image.fromarray(pixels[name]).save(photos / f"{name}.png")
    (photos / "broken.jpg").write_bytes(b"not a photo")
    found = {"a": HeadBox(20.0, 20.0, 10.0, 0.9), "b": HeadBox(70.0, 50.0, 20.0, 0.9)}

    def locate(image, model="head-locator", runtime=None, cancel=None):
        return next((head for name, head in found.items() if np.array_equal(image, pixels[name])), None)

    monkeypatch.setattr(heads, "locate_head", locate)
    out = tmp_path / "crops"
    counts = write_head_crops(photos, out, 16, 2.0, "head-locator", EventWriter(io.StringIO()))
    assert counts == {"written": 2, "kept": 0, "no_head": 1, "broken": 1}
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]  # no temporary files left behind
    # b's square reaches past the photo's corner: its outside is the nearest edge pixels, as in the tool
    x0, y0, side = head_square(found["b"], 2.0)
    expected = square_crop(pixels["b"], x0, y0, side)
    crop = np.asarray(Image.open(out / "b.png"))
    assert crop.shape == (16, 16, 3) and side == 40
    from ganstudio.imaging.color import resize

    assert np.array_equal(crop, resize(expected, (16, 16), "area"))
    assert (expected[-10:, -10:] == pixels["b"][-1, -1]).all()
    counts = write_head_crops(photos, out, 16, 2.0, "head-locator", EventWriter(io.StringIO()))
    assert counts["kept"] == 2 and counts["written"] == 0


def test_views_of_photos_with_no_animal_teach_that_there_is_no_head() -> None:
    from ganstudio.train.heads import make_batch

    cfg = HeadsConfig(domain_a="", domain_b="", out="", size=64, negatives=0.5)
    rng = np.random.default_rng(0)
    animal = HeadSample(np.full((80, 100, 3), 120, np.uint8), HeadBox(50.0, 40.0, 30.0, 1.0))
    others = [np.random.default_rng(1).integers(0, 256, (90, 70, 3), dtype=np.uint8)]
    x, heat, disc = make_batch([animal], np.zeros(16, int), cfg, rng, others)
    assert x.shape == (16, 3, 64, 64) and heat.shape == (16, 1, 32, 32) and disc.shape == (16, 32, 32)
    empty = heat.amax(dim=(1, 2, 3)) == 0
    assert 2 <= int(empty.sum()) <= 14, "about half the views are of the other photos"
    assert (disc[empty] == 0).all() and (disc[~empty].amax(dim=(1, 2)) == 1).all()
    # the other photo is noise, the animal's a flat grey: the empty views are the noisy ones
    roughness = (x[..., 1:] - x[..., :-1]).abs().mean(dim=(1, 2, 3))
    assert roughness[empty].min() > 5 * roughness[~empty].max()
