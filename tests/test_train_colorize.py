"""The colourisation family (pix2pix on L* -> a*b*): its model, losses and a short run through the engine."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine_cases import _photos
from ganstudio.models import configure_registry, get_registry
from ganstudio.models.arch import build_arch
from ganstudio.models.arch.colorize import AB_SCALE, ColorizeUNet
from ganstudio.train import checkpoint as ckpt
from ganstudio.train.cli import parse_train_args, run_train
from ganstudio.train.colorize import ColorizeConfig, chroma_shortfall, to_lab_tensors, to_rgb_tensor


@pytest.fixture(autouse=True)
def keep_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_an_untrained_model_leaves_a_grey_photo_grey_at_any_multiple_of_its_size() -> None:
    model = build_arch("colorize_unet", {"channels": 8, "levels": 3})
    assert isinstance(model, ColorizeUNet) and model.multiple_of == 8
    for size in ((32, 48), (40, 24)):
        out = model(torch.rand(2, 1, *size))
        assert out.shape == (2, 2, *size) and torch.count_nonzero(out) == 0


def test_the_lab_round_trip_keeps_the_photo_and_grey_has_no_colour() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    lightness, ab = to_lab_tensors(rgb)
    assert lightness.shape == (1, 16, 24) and ab.shape == (2, 16, 24) and float(ab.abs().max()) <= 1.0
    back = to_rgb_tensor(lightness, ab).permute(1, 2, 0).numpy() * 255
    assert np.abs(back - rgb).max() < 2.0
    grey = to_rgb_tensor(lightness, torch.zeros_like(ab))
    assert float((grey.max(dim=0).values - grey.min(dim=0).values).max()) < 0.02
    _, red_ab = to_lab_tensors(np.full((2, 2, 3), (255, 0, 0), np.uint8))
    assert 70 < float(red_ab[0].mean()) * AB_SCALE < 90  # red's a* is about 80


def test_the_chroma_term_charges_a_sepia_guess_and_not_a_vivid_one() -> None:
    truth = torch.tensor([0.6, -0.3]).view(1, 2, 1, 1).expand(1, 2, 4, 4)
    sepia = torch.tensor([0.05, 0.05]).view(1, 2, 1, 1).expand(1, 2, 4, 4)
    other_vivid = torch.tensor([-0.3, 0.6]).view(1, 2, 1, 1).expand(1, 2, 4, 4)  # as strong, another hue
    assert chroma_shortfall(sepia, truth) > 0.5
    assert chroma_shortfall(other_vivid, truth) == pytest.approx(0.0, abs=1e-6)
    assert chroma_shortfall(truth, truth) == pytest.approx(0.0, abs=1e-6)


def test_a_short_run_checkpoints_resumes_and_exports_a_model_the_registry_takes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _photos(tmp_path / "photos", count=6)
    run = tmp_path / "run"
    common = ["--data", str(data), "--out", str(run), "--channels", "4", "--levels", "2", "--disc-channels", "4",
              "--bins", "0", "--l1-weight", "1", "--chroma-weight", "0.5", "--adv-weight", "0.02",
              "--crop", "32", "--photo-size", "48", "--batch", "2", "--val-images", "2", "--adv-start", "1",
              "--threads", "1", "--log-every", "1", "--val-every", "2", "--sample-every", "2",
              "--checkpoint-every", "2"]
    assert run_train(parse_train_args(["colorize", *common, "--steps", "3"])) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == [1, 2, 3]
    assert set(steps[0]["losses"]) == {"l1", "chroma"} and {"d", "g_adv"} <= set(steps[1]["losses"])
    validation = next(e for e in events if e["event"] == "validation")
    assert validation["ab_l1"] > 0 and 0 <= validation["chroma_share"] and validation["best_metric"] == "ab_l1"
    assert any(e["event"] == "sample" for e in events) and (run / "best.safetensors").exists()
    saved = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))

    assert run_train(parse_train_args(["colorize", *common, "--steps", "5", "--resume"])) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert any(e["event"] == "resume" and e["step"] == 3 for e in events)
    assert [e["step"] for e in events if e["event"] == "step"] == [4, 5]
    final = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))
    assert any(not torch.equal(final["generator"][k], v) for k, v in saved["generator"].items())

    models = tmp_path / "models"
    output = models / "colorize-test.safetensors"
    assert run_train(parse_train_args(["export", "--run", str(run), "--output", str(output), "--title",
                                       "Colourise (test)", "--machine", "test"])) == 0
    card = json.loads(output.with_suffix(".json").read_text())
    assert card["task"] == "colorize" and card["architecture"] == {
        "name": "colorize_unet", "params": {"channels": 4, "levels": 2, "context": True}}
    # the tool runs the model at the scale it learnt from
    assert card["working_size"] == 48
    configure_registry(models)
    # beside the shipped model
    assert "colorize-test" in [m.name for m in get_registry().for_task("colorize")]


def test_the_config_checks_its_values() -> None:
    with pytest.raises(ValueError, match="multiple of 16"):
        ColorizeConfig(data="", out="", crop=100)
    with pytest.raises(ValueError, match="loss weights"):
        ColorizeConfig(data="", out="", chroma_weight=-1)
    with pytest.raises(ValueError, match="no room for crops"):
        ColorizeConfig(data="", out="", crop=128, photo_size=140)


def test_crops_show_most_of_a_photo_brought_to_the_photo_size() -> None:
    from ganstudio.train.colorize import ColourCrops

    ramp = np.repeat(np.linspace(0, 255, 600).astype(np.uint8)[None, :, None], 3, axis=2)
    photo = np.ascontiguousarray(np.repeat(ramp, 400, axis=0))  # 400 x 600, dark to light from left to right

    def lightness_span(photo_size: int) -> float:
        crops = ColourCrops([photo], crop=64, augment_kind="none", photo_size=photo_size)
        lightness, ab = crops[0]
        assert lightness.shape == (1, 64, 64) and ab.shape == (2, 64, 64)
        return float(lightness[0, 0].max() - lightness[0, 0].min())

    torch.manual_seed(0)
    # a 64 px crop of the photo at its own size spans about a tenth of the ramp; brought to 128 px, about half
    assert lightness_span(0) < 0.2 < 0.35 < lightness_span(128)


def test_global_context_starts_as_the_model_without_it_and_then_changes_the_colours() -> None:
    plain, with_context = ColorizeUNet(4, 2, bins=22), ColorizeUNet(4, 2, bins=22, context=True)
    torch.manual_seed(1)
    for parameter in plain.parameters():
        torch.nn.init.normal_(parameter, std=0.3)
    missing, unexpected = with_context.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("context.") for k in missing)
    lightness = torch.rand(1, 1, 32, 48)
    with torch.no_grad():
        assert torch.allclose(with_context(lightness), plain(lightness), atol=1e-6)
        torch.nn.init.normal_(with_context.context[2].weight, std=0.5)
        assert (with_context(lightness) - plain(lightness)).abs().max() > 1e-3


def test_rare_colours_weigh_more_and_the_annealed_mean_picks_the_likeliest_colour() -> None:
    from ganstudio.models.arch.colorize import ab_bin_centres, ab_bin_index
    from ganstudio.train.colorize import cell_weights

    grey = np.full((32, 32, 3), 128, np.uint8)
    rare = grey.copy()
    rare[:4, :4] = (0, 90, 255)  # a little blue in a mostly grey folder
    weights = cell_weights([grey, rare], bins=22, rebalance=0.5)
    _, ab_grey = to_lab_tensors(grey[:1, :1])
    _, ab_blue = to_lab_tensors(rare[:1, :1])
    grey_cell, blue_cell = (int(ab_bin_index(ab[None], 22).flatten()[0]) for ab in (ab_grey, ab_blue))
    assert weights[blue_cell] > 5 * weights[grey_cell]
    # two plausible colours, one twice as likely: the mean of the two is a dull in-between, the annealed mean is
    # close to the likelier one
    model = ColorizeUNet(channels=4, levels=2, bins=22)
    centres = ab_bin_centres(22)
    with torch.no_grad():
        model.head.bias.fill_(-30.0)
        model.head.bias[blue_cell] = np.log(2.0)
        model.head.bias[grey_cell] = 0.0
    out = model(torch.rand(1, 1, 8, 8))[0, :, 0, 0]
    assert torch.dist(out, centres[blue_cell]) < 0.2 * torch.dist(centres[blue_cell], centres[grey_cell])


def test_a_run_saved_before_the_binned_head_resumes_as_the_regression_it_was() -> None:
    old = ColorizeConfig.from_dict({"data": "", "out": ""})
    assert (old.bins, old.context, old.photo_size) == (0, False, 0)
    new = ColorizeConfig(data="", out="")
    assert (new.bins, new.context, new.photo_size) == (22, True, 256)


def test_a_binned_run_starts_from_a_regression_model_and_the_tool_uses_it(tmp_path: Path, capsys) -> None:
    from safetensors.torch import save_file

    from ganstudio.tools import get_tool
    from ganstudio.tools.colorize import ColorizeParams

    data = _photos(tmp_path / "photos", count=6)
    regression = ColorizeUNet(4, 2)
    save_file(regression.state_dict(), tmp_path / "start.safetensors")
    run = tmp_path / "run"
    args = ["colorize", "--data", str(data), "--out", str(run), "--channels", "4", "--levels", "2", "--crop", "32",
            "--batch", "2", "--val-images", "2", "--threads", "1", "--log-every", "1", "--val-every", "2",
            "--sample-every", "0", "--checkpoint-every", "2", "--steps", "2", "--lr", "1e-2",
            "--init", str(tmp_path / "start.safetensors")]
    assert run_train(parse_train_args(args)) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    assert any("head starts afresh" in m for m in warnings) and any("no global context" in m for m in warnings)
    assert "ce" in next(e for e in events if e["event"] == "step")["losses"]
    models = tmp_path / "models"
    assert run_train(parse_train_args(["export", "--run", str(run), "--output", str(models / "binned.safetensors"),
                                       "--title", "Binned", "--machine", "test", "--latest"])) == 0
    card = json.loads((models / "binned.json").read_text())
    assert card["architecture"]["params"] == {"channels": 4, "levels": 2, "bins": 22, "context": True}
    assert "rebalanced cross-entropy" in card["training"]["losses"] and "vividness 1" in card["training"]["losses"]
    # the export chooses the vividness and temperature without retraining: the rebalancing folds into the bias
    plain = tmp_path / "plain" / "plain.safetensors"
    assert run_train(parse_train_args(["export", "--run", str(run), "--output", str(plain), "--title", "Plain",
                                       "--machine", "test", "--latest", "--vividness", "0",
                                       "--temperature", "0.5"])) == 0
    from safetensors.torch import load_file

    log_weights = torch.tensor(ckpt.load_checkpoint(ckpt.latest_checkpoint(run))["cell_weights"]).log()
    vivid_bias, plain_bias = (load_file(path)["head.bias"] for path in (models / "binned.safetensors", plain))
    assert torch.allclose(vivid_bias - plain_bias, log_weights, atol=1e-5)
    assert json.loads(plain.with_suffix(".json").read_text())["architecture"]["params"]["temperature"] == 0.5
    # a run started from the vivid export takes the folded vividness out of the bias: it starts from the run's
    # own odds (the plain export), not from odds rebalanced twice
    again = tmp_path / "again"
    replaced = {"--out": str(again), "--lr": "1e-9", "--init": str(models / "binned.safetensors")}
    again_args = [replaced.get(args[i - 1], a) if i else a for i, a in enumerate(args)]
    assert run_train(parse_train_args(again_args)) == 0
    restarted = tmp_path / "restarted.safetensors"
    assert run_train(parse_train_args(["export", "--run", str(again), "--output", str(restarted), "--title", "R",
                                       "--machine", "test", "--latest", "--vividness", "0"])) == 0
    assert torch.allclose(load_file(restarted)["head.bias"], plain_bias, atol=1e-4)
    configure_registry(models)
    grey = np.repeat(np.linspace(20, 230, 48 * 40).reshape(40, 48, 1).astype(np.uint8), 3, axis=2)
    out = get_tool("colorize").run(grey, ColorizeParams(model="binned"))
    assert out.shape == grey.shape and not np.array_equal(out, grey)


@pytest.mark.parametrize("calibrated", [True, False])
def test_rebalancing_inside_the_loss_leaves_the_head_with_the_photos_own_odds(calibrated: bool) -> None:
    from ganstudio.train.colorize import rebalanced_cross_entropy

    # three cells seen 70 %, 20 % and 10 % of the time, the rare ones weighted up
    target = torch.tensor([0] * 70 + [1] * 20 + [2] * 10).view(1, 10, 10)
    weights = torch.tensor([0.5, 2.0, 4.0])
    logits = torch.zeros(3, requires_grad=True)
    optimiser = torch.optim.Adam([logits], lr=0.05)
    for _ in range(600):
        optimiser.zero_grad()
        rebalanced_cross_entropy(logits.view(1, 3, 1, 1).expand(1, 3, 10, 10), target, weights, calibrated).backward()
        optimiser.step()
    share = torch.tensor([0.7, 0.2, 0.1])
    expected = share if calibrated else share * weights / (share * weights).sum()
    assert torch.allclose(torch.softmax(logits.detach(), 0), expected, atol=0.01)
