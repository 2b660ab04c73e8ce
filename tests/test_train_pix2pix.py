"""Before/after pairs: matching two folders by name, the pix2pix family on the engine, and its Translate model."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganstudio.models import configure_registry, get_registry
from ganstudio.models.arch import build_arch
from ganstudio.tools import get_tool
from ganstudio.tools.translate import TranslateParams
from ganstudio.train import checkpoint as ckpt
from ganstudio.train.cli import parse_train_args, run_train
from ganstudio.train.folder_check import check_folder, match_pairs
from ganstudio.train.pix2pix import load_pairs


@pytest.fixture(autouse=True)
def keep_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _picture(size: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    width, height = size
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def paired_folders(root: Path, count: int, size: tuple[int, int] = (72, 64)) -> tuple[Path, Path]:
    """``count`` pairs whose after picture is the before one's colours inverted: a change a model can learn."""
    before, after = root / "Sketches", root / "Paintings"
    before.mkdir(parents=True)
    after.mkdir(parents=True)
    for index in range(count):
        picture = _picture(size, index)
        Image.fromarray(picture).save(before / f"{index:02d}.png")
        Image.fromarray(255 - picture).save(after / f"{index:02d}.jpg", quality=95)
    return before, after


def test_pairs_match_by_name_and_the_report_names_what_is_left_out(tmp_path: Path) -> None:
    before, after = paired_folders(tmp_path, 4)
    Image.fromarray(_picture((72, 64), 10)).save(before / "only-before.png")
    Image.fromarray(_picture((72, 64), 11)).save(after / "only-after.png")
    Image.fromarray(_picture((72, 64), 12)).save(after / "00.png")  # a second after file for 00: not its pair
    Image.fromarray(_picture((144, 128), 1)).save(after / "01.jpg")  # the same shape at twice the size
    Image.fromarray(_picture((64, 64), 2)).save(after / "02.jpg")  # another shape
    (before / "sub").mkdir()
    (after / "sub").mkdir()
    Image.fromarray(_picture((72, 64), 13)).save(before / "sub" / "Deep.PNG")
    Image.fromarray(_picture((72, 64), 14)).save(after / "sub" / "deep.webp")
    report = match_pairs(check_folder(before), check_folder(after))
    paired = {(b.path.name, a.path.name) for b, a in report.pairs}
    assert paired == {("00.png", "00.jpg"), ("01.png", "01.jpg"), ("02.png", "02.jpg"), ("03.png", "03.jpg"),
                      ("Deep.PNG", "deep.webp")}
    assert [p.name for p in report.only_before] == ["only-before.png"]
    assert sorted(p.name for p in report.only_after) == ["00.png", "only-after.png"]
    assert [(b.path.name, a.path.name) for b, a in report.mismatched] == [("02.png", "02.jpg")]
    assert [b.path.name for b, _ in report.resized] == ["01.png"]
    assert len(report.usable(64)) == 4 and len(report.usable(65)) == 0
    assert not report.verdict(64, min_pairs=5).ok and report.verdict(64, min_pairs=4).ok
    text = "\n".join(report.problem_lines(64))
    assert "only-before.png" in text and "only-after.png" in text
    assert "02.png (72×64) ≠ 02.jpg (64×64)" in text and "01.png (72×64) ← 01.jpg (144×128)" in text
    # training takes the same pairs: the resized one at the before size, the mismatched one reported
    stacks, skipped = load_pairs(before, after, min_side=64)
    assert len(stacks) == 4 and all(stack.shape == (64, 72, 6) for stack in stacks)
    reasons = {item.path.name: item.reason for item in skipped}
    assert "not one picture" in reasons["02.png"] and "no file of the same name" in reasons["only-after.png"]


def test_an_untrained_pairs_model_changes_nothing() -> None:
    model = build_arch("pix2pix_unet", {"channels": 4, "levels": 2}).eval()
    picture = torch.rand(1, 3, 16, 20)
    assert torch.equal(model(picture), picture)


def test_a_short_pairs_run_resumes_and_exports_a_translate_model(tmp_path: Path, capsys) -> None:
    before, after = paired_folders(tmp_path, 10)
    run = tmp_path / "run"
    common = ["--before", str(before), "--after", str(after), "--out", str(run), "--channels", "4", "--levels", "2",
              "--disc-channels", "4", "--crop", "32", "--batch", "2", "--val-images", "2", "--adv-start", "2",
              "--threads", "1", "--log-every", "1", "--val-every", "2", "--sample-every", "2",
              "--checkpoint-every", "2", "--lr", "1e-2"]
    assert run_train(parse_train_args(["pix2pix", *common, "--steps", "3"])) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    start = next(e for e in events if e["event"] == "start")
    assert start["train_pairs"] == 8 and start["val_pairs"] == 2 and start["working_size"] == 64
    steps = [e for e in events if e["event"] == "step"]
    assert set(steps[0]["losses"]) == {"l1"} and {"d", "g_adv"} <= set(steps[-1]["losses"])
    first = next(e for e in events if e["event"] == "validation")
    assert first["unchanged_l1"] > 0.3  # inverted colours: doing nothing is far off
    assert run_train(parse_train_args(["pix2pix", *common, "--steps", "12", "--resume"])) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert any(e["event"] == "resume" and e["step"] == 3 for e in events)
    assert [e["step"] for e in events if e["event"] == "step"] == list(range(4, 13))
    last = [e for e in events if e["event"] == "validation"][-1]
    assert last["l1"] < first["l1"]

    models = tmp_path / "models"
    models.mkdir()
    assert run_train(parse_train_args(["export", "--run", str(run), "--output", str(models / "inv.safetensors"),
                                       "--title", "Sketch → Painting", "--machine", "test"])) == 0
    # a colourise run's export options are not a pairs run's: refused, nothing written
    assert run_train(parse_train_args(["export", "--run", str(run), "--output", str(models / "viv.safetensors"),
                                       "--title", "V", "--machine", "test", "--vividness", "1"])) == 1
    assert "not an option of a pix2pix run" in capsys.readouterr().out and not (models / "viv.json").exists()
    card = json.loads((models / "inv.json").read_text())
    assert card["task"] == "translate" and card["architecture"]["name"] == "pix2pix_unet"
    assert card["working_size"] == 64 and str(before) in card["data"]["licence"] and card["keeps_detail"] is True
    configure_registry(models)
    model = get_registry().get("inv", "translate")
    picture = _picture((90, 70), 99)
    out = get_tool("translate").run(picture, TranslateParams(model=model.name))
    assert out.shape == picture.shape and not np.array_equal(out, picture)
    assert ckpt.latest_checkpoint(run) is not None


@pytest.mark.parametrize("edit", [0.1, -0.1])
def test_a_change_learnt_at_a_small_working_size_keeps_a_large_photos_detail(edit: float) -> None:
    from ganstudio.engine import run_rgb_model

    rng = np.random.default_rng(3)
    photo = rng.integers(40, 200, (240, 320, 3), dtype=np.uint8)  # detail at every pixel

    def grade(x: torch.Tensor) -> torch.Tensor:
        return x + edit

    kept = run_rgb_model(photo, grade, model_size=(64, 48), keep_detail=True)
    soft = run_rgb_model(photo, grade, model_size=(64, 48))
    change = kept.astype(int) - photo.astype(int)
    levels = round(edit * 255)
    assert np.abs(change - levels).max() <= 1  # the photo's every pixel, 0.1 brighter or darker
    assert np.abs(soft.astype(int) - photo.astype(int) - levels).mean() > 10  # the whole picture enlarged: soft
    with pytest.raises(ValueError, match="scale 1"):
        run_rgb_model(photo, grade, scale=2, model_size=(64, 48), keep_detail=True)
