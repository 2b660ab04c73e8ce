"""The pose refiner: its network, the round-trip training data, the loop, and its use by the pose tool."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ganstudio.models import configure_registry, model_cache
from ganstudio.models.arch import build_arch
from ganstudio.models.arch.pose_refiner import PoseRefiner
from ganstudio.pose.refine import edit_region, paste_weight
from ganstudio.tools import pose as pose_tool
from ganstudio.train import checkpoint as ckpt
from ganstudio.train import round_trips
from ganstudio.train.cli import run_train
from ganstudio.train.people import load_people
from ganstudio.train.pose_refiner import RefinerConfig
from ganstudio.train.round_trips import RefinerDataset, round_trip
from test_pose import _people_folder, person_image, standing_pose  # the synthetic person and people folder

TINY = dict(channels=4, levels=2, bottleneck=1)


def _randomised(model: PoseRefiner, seed: int = 0) -> PoseRefiner:
    """The fresh model's tail is zero (it starts as the identity): give it random weights so it changes pixels."""
    torch.manual_seed(seed)
    torch.nn.init.normal_(model.tail.weight, 0.0, 0.1)
    return model


# -- the network ---------------------------------------------------------------------------------------------


def test_the_refiner_keeps_shapes_stays_small_and_changes_nothing_outside_the_region() -> None:
    full = PoseRefiner()
    assert full.multiple_of == 8 and sum(p.numel() for p in full.parameters()) < 1_500_000
    model = _randomised(PoseRefiner(**TINY)).eval()
    rgb = torch.rand(2, 3, 24, 32)
    region = torch.zeros(2, 1, 24, 32)
    region[:, :, 6:14, 8:20] = torch.linspace(0.2, 1.0, 12)
    with torch.no_grad():
        out = model(torch.cat([rgb, region], dim=1))
    assert out.shape == (2, 3, 24, 32)
    outside = (region == 0).expand_as(rgb)
    assert torch.equal(out[outside], rgb[outside])
    assert not torch.allclose(out[~outside], rgb[~outside])
    fresh = PoseRefiner(**TINY)
    with torch.no_grad():
        assert torch.equal(fresh(torch.cat([rgb, region], dim=1)), rgb), "untrained, it is the identity"
    assert isinstance(build_arch("pose_refiner", TINY), PoseRefiner)


def test_edit_region_is_one_on_changed_pixels_and_exactly_zero_far_from_them() -> None:
    changed = np.zeros((40, 40), bool)
    changed[10:20, 10:20] = True
    region = edit_region(changed, grow=4)
    assert region.dtype == np.float32 and region[changed].min() == 1.0
    assert region[15, 23] == 1.0 and 0.0 < region[15, 26] < 1.0
    assert region[15, 29:].max() == 0.0 and region[30:].max() == 0.0
    assert not edit_region(np.zeros((8, 8), bool)).any()


def test_the_paste_weight_keeps_the_refiner_off_the_filled_background() -> None:
    changed = np.zeros((40, 60), bool)
    changed[5:35, 5:55] = True
    region = edit_region(changed, grow=2)
    fill_mask = np.zeros_like(changed)
    fill_mask[10:30, 10:30] = True  # where a limb was
    person_alpha = np.zeros((40, 60), np.float32)
    person_alpha[10:30, 20:50] = 1.0  # the moved limb covers half of that again
    weight = paste_weight(region, fill_mask, person_alpha)
    assert weight.dtype == np.float32 and weight.shape == changed.shape
    assert weight[10:30, 10:20].max() == 0.0, "the uncovered background is the fill's"
    assert weight[region == 0].max() == 0.0
    assert weight[12:28, 24:50].min() == 1.0 and weight[32:35, 5:55].min() > 0.99, "limb and seams are refined"
    assert 0.0 < weight[20, 21] < 1.0, "a soft edge beside the fill"
    no_fill = paste_weight(region, np.zeros_like(changed), person_alpha)
    assert np.array_equal(no_fill, (region > 0).astype(np.float32))


# -- data ----------------------------------------------------------------------------------------------------


def test_the_round_trip_degrades_the_person_inside_a_region_and_keeps_the_original_as_target(
        tmp_path: Path) -> None:
    samples, _ = load_people(_people_folder(tmp_path, count=2))
    for sample in samples:  # one photo with a mask, one without
        degraded, region, original = round_trip(sample, np.random.default_rng(3))
        assert degraded.shape == original.shape == sample.image.shape and degraded.dtype == np.uint8
        assert region.shape == sample.image.shape[:2] and region.any() and region.max() == 1.0
        assert np.array_equal(original, sample.image)
        assert not np.array_equal(degraded, original)
        assert np.array_equal(degraded[region == 0], original[region == 0]), "outside the region nothing changed"
    degraded, region, original = round_trip(samples[0], np.random.default_rng(3), scale=0.75)
    assert degraded.shape[:2] == region.shape == original.shape[:2] == (192, 120)

    cfg = RefinerConfig(data="", out="", crop=64, **TINY)
    x, weight, y = RefinerDataset(samples, cfg)[0]
    assert x.shape == y.shape == (3, 64, 64) and weight.shape == (1, 64, 64) and weight.max() == 1.0


def test_person_pixels_the_round_trip_loses_are_given_back_not_left_as_fill(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A smear where the target shows the person would teach the refiner to paint ghost limbs into fills."""
    samples, _ = load_people(_people_folder(tmp_path, count=2))
    real_repose = round_trips.repose
    for sample in samples:  # with a mask, and without one (the warp then moves the limbs' capsules)
        dropped: list[np.ndarray] = []

        def losing_repose(image, person, source, target, fill):
            result = real_repose(image, person, source, target, fill)
            if not dropped:  # the way there: pick a band of what it moved
                band = np.zeros(person.shape, bool)
                rows = np.nonzero(result.source_person > 0.5)[0]
                band[rows.min():rows.min() + 30] = True
                dropped.append(band & (result.source_person > 0.5))
            else:  # the way back drops that band and leaves grey fill there
                result.image[dropped[0]] = 128
                result.person_alpha[dropped[0]] = 0.0
                result.changed[dropped[0]] = True
            return result

        monkeypatch.setattr(round_trips, "repose", losing_repose)
        degraded, region, original = round_trip(sample, np.random.default_rng(3), max_lost=1.0)
        assert dropped[0].sum() > 50 and region[dropped[0]].min() == 1.0, "the lost pixels are in the edited region"
        assert np.array_equal(degraded[dropped[0]], original[dropped[0]])
        assert not np.array_equal(degraded, original), "the rest of the round trip's damage stays"


# -- the loop ------------------------------------------------------------------------------------------------


def test_training_checkpoints_resumes_and_exports_a_card_the_registry_takes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        random_lpips_weights: Path) -> None:
    monkeypatch.setenv("GANSTUDIO_LPIPS_WEIGHTS", str(random_lpips_weights))
    data = _people_folder(tmp_path, count=6)
    run = tmp_path / "run"
    common = ["--data", str(data), "--out", str(run), "--crop", "48", "--channels", "4", "--levels", "2",
              "--bottleneck", "1", "--disc-channels", "8", "--batch", "2", "--val-images", "2", "--adv-start", "1",
              "--min-scale", "0.5", "--threads", "1", "--log-every", "1", "--val-every", "2", "--sample-every", "2",
              "--checkpoint-every", "2"]
    parser_args = _parse(["pose-refiner", *common, "--steps", "3"])
    assert run_train(parser_args) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    start = next(e for e in events if e["event"] == "start")
    assert start["train_images"] == 4 and start["val_images"] == 2 and start["perceptual"]
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == [1, 2, 3]
    assert "d" not in steps[0]["losses"] and {"l1", "lpips", "d", "g_adv"} <= set(steps[1]["losses"])
    validation = next(e for e in events if e["event"] == "validation")
    for name in ("l1", "psnr", "lpips"):
        assert name in validation and "degraded_" + name in validation
    assert any(e["event"] == "sample" for e in events)
    assert (run / "best.safetensors").exists()
    saved = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))
    assert saved["step"] == 3

    assert run_train(_parse(["pose-refiner", *common, "--steps", "5", "--resume"])) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert any(e["event"] == "resume" and e["step"] == 3 for e in events)
    assert [e["step"] for e in events if e["event"] == "step"] == [4, 5]
    final = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))
    assert final["step"] == 5
    assert any(not torch.equal(final["refiner"][k], v) for k, v in saved["refiner"].items())

    models = tmp_path / "models"
    output = models / "pose-refiner.safetensors"
    assert run_train(_parse(["export", "--run", str(run), "--output", str(output), "--title", "Pose refiner",
                             "--machine", "test"])) == 0
    card = json.loads(output.with_suffix(".json").read_text())
    assert card["task"] == "pose_refine" and card["architecture"] == {"name": "pose_refiner", "params": TINY}
    assert card["multiple_of"] == 4 and "research" in card["data"]["licence"]
    configure_registry(models)
    assert pose_tool.best_refiner().name == "pose-refiner"


def _parse(argv: list[str]):
    import argparse

    from ganstudio.train.cli import add_train_parser

    parser = argparse.ArgumentParser()
    add_train_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["train", *argv])


def test_the_config_checks_its_values() -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        RefinerConfig(data="", out="", crop=100)
    with pytest.raises(ValueError, match="min_scale"):
        RefinerConfig(data="", out="", min_scale=0.0)


# -- the tool ------------------------------------------------------------------------------------------------


def _install_refiner(folder: Path) -> None:
    model = _randomised(PoseRefiner(**TINY))
    card = {"name": "tiny-refiner", "title": "Tiny refiner", "task": "pose_refine",
            "architecture": {"name": "pose_refiner", "params": TINY}, "multiple_of": model.multiple_of,
            "tiling": False, "working_size": 64}
    ckpt.export_safetensors(model, folder / "tiny-refiner.safetensors", card)
    configure_registry(folder)
    model_cache.clear()


def _edit(**extra) -> tuple[np.ndarray, pose_tool.PoseParams, np.ndarray]:
    pose = standing_pose()
    image, mask = person_image(pose)
    target = pose.moved("left_knee", (pose["left_hip"][0] + 30, pose["left_hip"][1] + 15))
    params = pose_tool.PoseParams(source=pose, target=target, use_mask=True, fill_model="opencv-telea", **extra)
    return image, params, mask


def test_the_tool_refines_inside_the_edited_region_only(no_shipped_models, tmp_path: Path) -> None:
    image, params, mask = _edit(refine=False)
    plain = pose_tool.run(image, params, mask)
    changed = np.any(plain != image, axis=2)
    _install_refiner(tmp_path / "models")
    assert pose_tool.best_refiner().name == "tiny-refiner"
    refined = pose_tool.run(image, _edit()[1], mask)
    assert refined.shape == image.shape and refined.dtype == image.dtype
    assert not np.array_equal(refined, plain), "the installed refiner was used"
    # the region the refiner may touch: what the warp changed, grown by edit_region's margin
    from ganstudio.pose.warp import repose

    fill = pose_tool.inpaint.InpaintParams(model=params.fill_model)
    warp = repose(image, mask / 255.0, params.source, params.target,
                  lambda pixels, hole: pose_tool.inpaint.run(pixels, fill, hole))
    region = edit_region(warp.changed)
    assert changed.any() and not (changed & (region == 0)).any()
    assert np.array_equal(refined[region == 0], image[region == 0])
    uncovered = warp.fill_mask & (warp.person_alpha < 0.5)
    assert uncovered.sum() > 20 and np.array_equal(refined[uncovered], plain[uncovered]), "the fill is the fill's"
    seams = (paste_weight(region, warp.fill_mask, warp.person_alpha) > 0.5) & changed
    assert not np.array_equal(refined[seams], plain[seams]), "seams and the moved limb are refined"
    assert np.array_equal(pose_tool.run(image, params, mask), plain), "refine=False leaves the edit as it was"
    # the identity pose is still the input bit for bit, refiner or not
    same = pose_tool.PoseParams(source=params.source, target=params.source.copy(), use_mask=True)
    assert np.array_equal(pose_tool.run(image, same, mask), image)


def test_without_a_refiner_the_edit_is_the_warp_and_fill_alone(no_shipped_models) -> None:
    assert pose_tool.best_refiner() is None
    image, params, mask = _edit()
    image_plain, plain_params, _ = _edit(refine=False)
    assert np.array_equal(pose_tool.run(image, params, mask), pose_tool.run(image_plain, plain_params, mask))


def test_refine_shrinks_a_large_crop_to_the_working_size_and_keeps_alpha_and_16_bits(tmp_path: Path) -> None:
    _install_refiner(tmp_path / "models")
    rng = np.random.default_rng(0)
    image = (rng.integers(0, 65536, (150, 120, 4))).astype(np.uint16)
    changed = np.zeros((150, 120), bool)
    changed[30:120, 20:100] = True  # a 90 x 80 region: larger than the card's working size of 64
    region = edit_region(changed)
    out = pose_tool.refine(image, region, pose_tool.best_refiner())
    assert out.dtype == np.uint16 and out.shape == image.shape
    assert np.array_equal(out[..., 3], image[..., 3])
    assert np.array_equal(out[region == 0], image[region == 0])
    assert not np.array_equal(out[changed], image[changed])


def test_cli_refines_unless_told_not_to_and_takes_a_fill_model(no_shipped_models, tmp_path: Path) -> None:
    from ganstudio.cli import main as cli_main
    from ganstudio.imaging import read_image, write_image

    image, params, mask = _edit()
    photo, mask_file, target = tmp_path / "person.png", tmp_path / "mask.png", tmp_path / "target.json"
    write_image(photo, image)
    write_image(mask_file, mask[..., None])
    params.source.save(tmp_path / "source.json")
    params.target.save(target)
    common = ["--pose", str(target), "--source-pose", str(tmp_path / "source.json"), "--mask", str(mask_file), "-q"]

    def apply(name: str, *extra: str) -> np.ndarray:
        assert cli_main(["apply", "pose", str(photo), "-o", str(tmp_path / name), *common, *extra]) == 0
        return read_image(tmp_path / name).pixels

    plain = apply("plain.png", "--fill", "opencv-telea")
    _install_refiner(tmp_path / "models")
    refined = apply("refined.png", "--fill", "opencv-telea")
    assert not np.array_equal(refined, plain), "the installed refiner runs by default"
    assert np.array_equal(apply("unrefined.png", "--fill", "opencv-telea", "--no-refine"), plain)
    assert not np.array_equal(apply("ns.png", "--fill", "opencv-ns", "--no-refine"), plain), "--fill picks the fill"
    assert cli_main(["apply", "inpaint", str(photo), "-o", str(tmp_path / "x.png"), "--mask", str(mask_file),
                     "--no-refine"]) == 2
