"""Domain translation: the CycleGAN generator, the translate tool and CLI, and the CycleGAN training engine."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from ganstudio.cli import main as cli_main
from ganstudio.engine import run_rgb_model
from ganstudio.models import configure_registry, get_registry
from ganstudio.models.arch import build_arch
from ganstudio.models.arch.cyclegan import CycleGANGenerator
from ganstudio.tools import get_tool
from ganstudio.tools.base import feather_weights, working_shape
from ganstudio.tools.translate import TranslateParams
from ganstudio.train import checkpoint as ckpt
from ganstudio.train.cyclegan import CycleGANConfig, export, lr_factor, train
from ganstudio.train.data import FLAT_CROP_SPREAD, UnpairedCrops, load_folder, spread
from ganstudio.train.discriminators import ImagePool
from ganstudio.train.discriminators import PatchGANDiscriminator
from ganstudio.train.events import EventWriter
from ganstudio.imaging import read_image

translate = get_tool("translate").run
TINY = dict(name_a="cat", name_b="dog", ngf=4, blocks=1, ndf=4, load_size=36, crop=32, sample_images=1, threads=1,
            log_every=1)


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """Training sets torch's global thread count (1 here, for shared CI cores): give later tests theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("ngf, blocks", [(4, 0), (8, 2)])
@pytest.mark.parametrize("size", [(32, 32), (20, 44)])
def test_generator_keeps_size_and_range(ngf: int, blocks: int, size: tuple[int, int]) -> None:
    model = CycleGANGenerator(ngf=ngf, n_blocks=blocks).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, *size))
    assert out.shape == (2, 3, *size)
    assert out.min() >= 0 and out.max() <= 1


def test_generator_rejects_sizes_not_multiple_of_4() -> None:
    with pytest.raises(ValueError, match="multiple of 4"):
        CycleGANGenerator(ngf=4, n_blocks=1)(torch.rand(1, 3, 30, 32))


def test_generator_upsamples_without_transposed_convs() -> None:
    model = build_arch("cyclegan-resnet", {"ngf": 64, "n_blocks": 9})
    kinds = {type(m) for m in model.modules()}
    assert not any(issubclass(k, torch.nn.modules.conv._ConvTransposeNd) for k in kinds)
    assert torch.nn.Upsample in kinds and torch.nn.ReflectionPad2d in kinds and torch.nn.InstanceNorm2d in kinds
    # the paper's size: 11.378 M parameters (transposed convs would give 11.378 M too: this pins the layout)
    assert sum(p.numel() for p in model.parameters()) == 11_378_179


def test_a_third_downsampling_halves_the_residual_blocks_grid_and_needs_multiples_of_8() -> None:
    seen = []
    model = build_arch("cyclegan-resnet", {"ngf": 4, "n_blocks": 1, "n_down": 3}).eval()
    block = next(m for m in model.modules() if type(m).__name__ == "ResnetBlock")
    block.register_forward_hook(lambda module, inputs, output: seen.append(tuple(output.shape)))
    with torch.no_grad():
        out = model(torch.rand(1, 3, 48, 64))
    assert out.shape == (1, 3, 48, 64) and 0 <= out.min() and out.max() <= 1
    assert seen == [(1, 16, 6, 8)]  # 1/8 of the input, at 4 x ngf
    assert model.multiple_of == 8
    assert not any(isinstance(m, torch.nn.modules.conv._ConvTransposeNd) for m in model.modules())
    with pytest.raises(ValueError, match="multiple of 8"):
        model(torch.rand(1, 3, 44, 64))


def test_patchgan_sees_70_pixel_patches() -> None:
    disc = PatchGANDiscriminator(ndf=8)
    # a 70x70 input is the smallest that gives a full patch at every layer: 6x6 logits with this padding
    assert disc(torch.rand(1, 3, 70, 70)).shape == (1, 1, 6, 6)
    assert disc(torch.rand(2, 3, 128, 128)).shape == (2, 1, 14, 14)


def _install_tiny_model(folder: Path, name: str = "tinycat2dog") -> Path:
    torch.manual_seed(0)
    model = CycleGANGenerator(ngf=4, n_blocks=1)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / f"{name}.safetensors"))
    card = {"name": name, "title": "Tiny cat → dog", "task": "translate",
            "architecture": {"name": "cyclegan-resnet", "params": {"ngf": 4, "n_blocks": 1}},
            "multiple_of": 4, "tiling": False}
    (folder / f"{name}.json").write_text(json.dumps(card))
    configure_registry(folder)
    return folder


@pytest.fixture
def tiny_model(tmp_path: Path) -> str:
    _install_tiny_model(tmp_path / "models")
    return "tinycat2dog"


def _photo(height: int = 60, width: int = 84, channels: int = 3, dtype: type = np.uint8) -> np.ndarray:
    rng = np.random.default_rng(1)
    peak = np.iinfo(dtype).max
    return rng.integers(0, peak + 1, (height, width, channels), dtype=np.int64).astype(dtype)


@pytest.mark.parametrize("channels, dtype", [(3, np.uint8), (4, np.uint8), (1, np.uint8), (2, np.uint16),
                                             (3, np.uint16)])
def test_strength_zero_returns_input_and_one_changes_it(tiny_model: str, channels: int, dtype: type) -> None:
    image = _photo(channels=channels, dtype=dtype)
    untouched = translate(image, TranslateParams(model=tiny_model, strength=0.0, working_size=64))
    assert untouched.dtype == image.dtype and np.array_equal(untouched, image)
    full = translate(image, TranslateParams(model=tiny_model, strength=1.0, working_size=64))
    half = translate(image, TranslateParams(model=tiny_model, strength=0.5, working_size=64))
    assert full.shape == image.shape and full.dtype == image.dtype
    colour = channels - (channels in (2, 4))
    # random noise in, a near-grey untrained output: the colour must change a lot, and half as much at 0.5
    change = np.abs(full[..., :colour].astype(float) - image[..., :colour]).mean() / np.iinfo(dtype).max
    assert change > 0.15
    halfway = np.abs(half[..., :colour].astype(float) - image[..., :colour]).mean() / np.iinfo(dtype).max
    assert halfway == pytest.approx(change / 2, rel=0.05)
    if colour < channels:
        assert np.array_equal(full[..., colour:], image[..., colour:]), "alpha must be kept as it was"


def test_region_mode_changes_only_inside_the_mask(tiny_model: str) -> None:
    image = _photo(120, 160)
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[30:90, 50:130] = 255
    params = TranslateParams(model=tiny_model, use_mask=True, feather=8, working_size=64)
    result = translate(image, params, mask=mask)
    outside = mask == 0
    assert np.array_equal(result[outside], image[outside])
    core = np.zeros_like(outside)
    core[38:82, 58:122] = True  # further than the feather from the mask's edge
    assert np.abs(result[core].astype(float) - image[core]).mean() > 30
    edge = np.abs(result[30, 50:130].astype(float) - image[30, 50:130]).mean()
    assert 0 < edge < np.abs(result[core].astype(float) - image[core]).mean() / 4, "the edge must fade in"
    with pytest.raises(ValueError, match="empty"):
        translate(image, params, mask=np.zeros_like(mask))
    with pytest.raises(ValueError, match="needs a mask"):
        translate(image, params)


def test_feather_ramps_inside_the_mask_only() -> None:
    mask = np.zeros((40, 40), bool)
    mask[10:30, 0:30] = True  # touches the left image edge: no fade there
    weights = feather_weights(mask, 4)
    assert weights[~mask].max() == 0
    assert weights[20, 0] == 1 and weights[20, 15] == 1
    assert 0 < weights[10, 15] < 0.5 and weights[20, 29] < 0.5
    assert np.array_equal(feather_weights(mask, 0), mask.astype(np.float32))


def test_working_shape_keeps_aspect_on_multiples() -> None:
    assert working_shape(480, 640, 256, 4) == (340, 256)
    assert working_shape(1000, 300, 128, 4) == (128, 428)


def test_rejects_bad_params(tiny_model: str) -> None:
    image = _photo()
    for bad in (dict(strength=1.5), dict(working_size=250), dict(working_size=32), dict(feather=-1)):
        with pytest.raises(ValueError):
            translate(image, TranslateParams(model=tiny_model, **bad))


def test_run_rgb_model_at_a_model_size_comes_back_at_the_image_size() -> None:
    image = _photo(50, 70, channels=4)
    seen: list[tuple[int, ...]] = []

    def identity(x: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(x.shape[-2:]))
        return x

    out = run_rgb_model(image, identity, model_size=(28, 20), tile=64)
    assert seen == [(20, 28)]
    assert out.shape == image.shape and np.array_equal(out[..., 3], image[..., 3])
    # the same size through the new path is exact, like the old one
    assert np.array_equal(run_rgb_model(image, identity, model_size=(70, 50), tile=128), image)
    assert np.array_equal(run_rgb_model(image, identity, tile=128), image)


def _write(path: Path, pixels: np.ndarray) -> Path:
    Image.fromarray(pixels).save(path)
    return path


def test_cli_apply_translate_with_mask_and_strength(tiny_model: str, tmp_path: Path) -> None:
    image = _photo(64, 96)
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[16:48, 24:72] = 255
    source, mask_file = _write(tmp_path / "in.png", image), _write(tmp_path / "mask.png", mask)
    output = tmp_path / "out.png"
    code = cli_main(["apply", "translate", str(source), "-o", str(output), "--model", tiny_model, "--mask",
                     str(mask_file), "--strength", "0.8", "--working-size", "64", "-q"])
    assert code == 0
    result = read_image(output).pixels
    assert np.array_equal(result[mask == 0], image[mask == 0])
    assert np.abs(result[24:40, 32:64].astype(float) - image[24:40, 32:64]).mean() > 20
    assert cli_main(["apply", "superres", str(source), "-o", str(tmp_path / "x.png"), "--strength", "1"]) == 2


def test_lr_is_constant_then_decays_linearly_to_zero() -> None:
    assert [lr_factor(s, 100) for s in (0, 49, 50, 75, 100)] == [1.0, 1.0, 1.0, 0.5, 0.0]


def test_image_pool_fills_then_mixes_old_and_new() -> None:
    torch.manual_seed(0)
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 2, 2) / 255
    assert torch.equal(pool.query(first), first)
    values = (10 + torch.arange(40.0)) / 255
    out = torch.cat([pool.query(torch.full((1, 3, 2, 2), float(v))) for v in values])
    old = (out[:, 0, 0, 0] - values).abs() > 0.5 / 255
    assert 5 < int(old.sum()) < 35, "about half the answers must come from the pool"
    assert torch.allclose(out[old, 0, 0, 0] * 255, (out[old, 0, 0, 0] * 255).round(), atol=1e-4)
    assert len(pool.images) == 4 and pool.images[0].dtype == torch.uint8


def test_crops_flip_and_shrink_for_the_low_resolution_phase() -> None:
    image = np.zeros((40, 50, 3), np.uint8)
    image[:, :25] = 255
    dataset = UnpairedCrops([image], [image], crop=32)
    a, b = dataset[0]
    assert a.shape == b.shape == (3, 32, 32)
    dataset.out_size = 16
    assert dataset[0][0].shape == (3, 16, 16)
    torch.manual_seed(0)
    left_bright = {bool(dataset[0][0][0, 8, 0] > 0.5) for _ in range(20)}
    assert left_bright == {True, False}, "crops must be mirrored about half the time"


def test_flat_crops_are_drawn_again_so_instance_norm_never_sees_one() -> None:
    # A white studio background beside the animal: without redrawing, most 64 px crops of this are pure white,
    # and one such crop put a 64 px run on the cat folder out with NaN losses at step 39.
    image = np.full((64, 256, 3), 255, np.uint8)
    image[:, 128:] = np.random.default_rng(0).integers(0, 256, (64, 128, 3), dtype=np.uint8)
    dataset = UnpairedCrops([image], [image], crop=64)
    torch.manual_seed(0)
    spreads = [spread((dataset[0][0] * 255).permute(1, 2, 0).numpy()) for _ in range(50)]
    assert min(spreads) >= FLAT_CROP_SPREAD


def test_blank_photos_are_skipped_with_a_reason(tmp_path: Path) -> None:
    Image.new("RGB", (64, 64), (250, 250, 250)).save(tmp_path / "blank.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
        tmp_path / "photo.png")
    images, skipped = load_folder(sorted(tmp_path.iterdir()), min_side=32, min_spread=FLAT_CROP_SPREAD)
    assert len(images) == 1
    assert [(item.path.name, item.reason) for item in skipped] == [("blank.png", "blank: one flat colour")]
    assert len(load_folder(sorted(tmp_path.iterdir()), min_side=32)[0]) == 2


def _folders(root: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    folders = (root / "cats", root / "dogs")
    for index, folder in enumerate(folders):
        folder.mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(0, 128, (40 + 4 * i, 48, 3), dtype=np.uint8) + 127 * index
            Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.png")
    (folders[0] / "broken.jpg").write_bytes(b"not a jpeg")
    return folders


def _events(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_training_checkpoints_resumes_and_exports_loadable_models(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    cats, dogs = _folders(tmp_path)
    run = tmp_path / "run"
    config = CycleGANConfig(domain_a=str(cats), domain_b=str(dogs), out=str(run), steps=3, checkpoint_every=2,
                            sample_every=2, **TINY)
    assert train(config, events=EventWriter()) == 0
    first = _events(capsys)
    assert any(e["event"] == "warning" and "broken.jpg" in e["message"] for e in first)
    steps = [e for e in first if e["event"] == "step"]
    assert [e["step"] for e in steps] == [1, 2, 3]
    assert set(steps[0]["losses"]) == {"g_gan", "cycle", "identity", "d_a", "d_b"}
    sample = next(e for e in first if e["event"] == "sample")
    # two rows (a cat, a dog) of input | translated | back at the 32 px crop
    assert read_image(sample["path"]).pixels.shape[:2] == (64, 96)
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step_00000002.pt", "step_00000003.pt"]
    saved = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))
    assert saved["step"] == 3 and len(saved["pool_a"]) == 3

    resumed = CycleGANConfig(domain_a=str(cats), domain_b=str(dogs), out=str(run), steps=5, checkpoint_every=100,
                             **TINY)
    loaded: list[dict] = []
    original_load = CycleGANGenerator.load_state_dict

    def spy(self: CycleGANGenerator, state_dict: dict, *args: object, **kwargs: object) -> object:
        loaded.append(dict(state_dict))
        return original_load(self, state_dict, *args, **kwargs)

    CycleGANGenerator.load_state_dict = spy  # type: ignore[method-assign]
    try:
        assert train(resumed, resume=True, events=EventWriter()) == 0
    finally:
        CycleGANGenerator.load_state_dict = original_load  # type: ignore[method-assign]
    second = _events(capsys)
    assert next(e for e in second if e["event"] == "start")["step"] == 3
    assert [e["step"] for e in second if e["event"] == "step"] == [4, 5]
    final = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))
    assert final["step"] == 5 and len(final["pool_b"]) == 5, "the image pools must survive a resume"
    assert final["optimizer_g"]["state"] and final["optimizer_d"]["state"]
    assert len(loaded) == 2, "both generators must start from the checkpoint"
    assert all(torch.equal(loaded[0][k], v) for k, v in saved["g_ab"].items())
    assert all(torch.equal(loaded[1][k], v) for k, v in saved["g_ba"].items())
    assert any(not torch.equal(final["g_ab"][k], v) for k, v in saved["g_ab"].items())

    models = tmp_path / "models"
    cards = export(run, models, machine="test", licence="test data")
    assert [c.name for c in cards] == ["cat2dog.json", "dog2cat.json"]
    card = json.loads(cards[0].read_text())
    assert card["title"] == "Cat → Dog" and card["task"] == "translate" and card["tiling"] is False
    assert card["training"]["steps"] == 5 and card["data"]["licence"] == "test data"
    configure_registry(models)
    # beside the shipped cat2dog / dog2cat, the user's exports of the same names stay selectable under @user
    user = {m.name for m in get_registry().for_task("translate") if m.source == "user"}
    assert user == {"cat2dog@user", "dog2cat@user"} or user == {"cat2dog", "dog2cat"}
    image = _photo(40, 52)
    out = translate(image, TranslateParams(model=sorted(user)[1], working_size=64))
    assert out.shape == image.shape and not np.array_equal(out, image)


def test_a_run_with_three_downsamplings_exports_a_model_the_tool_runs_at_multiples_of_8(tmp_path: Path) -> None:
    cats, dogs = _folders(tmp_path)
    with pytest.raises(ValueError, match="multiple of 8"):
        CycleGANConfig(domain_a=str(cats), domain_b=str(dogs), out=str(tmp_path / "bad"),
                       **{**TINY, "downsamplings": 3, "crop": 36, "load_size": 40})
    config = CycleGANConfig(domain_a=str(cats), domain_b=str(dogs), out=str(tmp_path / "run"), steps=1,
                            sample_every=0, **{**TINY, "downsamplings": 3})
    assert train(config, events=EventWriter()) == 0
    cards = export(tmp_path / "run", tmp_path / "models", machine="test", licence="test data")
    card = json.loads(cards[0].read_text())
    assert card["multiple_of"] == 8 and card["architecture"]["params"]["n_down"] == 3
    configure_registry(tmp_path / "models")
    model = next(m for m in get_registry().for_task("translate") if m.source == "user")
    image = _photo(42, 54)  # neither side a multiple of 8: the tool pads to the model's multiple
    out = translate(image, TranslateParams(model=model.name, working_size=68))
    assert out.shape == image.shape and not np.array_equal(out, image)


def test_projected_discriminator_trains_on_frozen_features(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           random_lpips_weights: Path) -> None:
    weights = random_lpips_weights
    cats, dogs = _folders(tmp_path)
    config = CycleGANConfig(domain_a=str(cats), domain_b=str(dogs), out=str(tmp_path / "run"), steps=2,
                            discriminator="projected", sample_every=0, small_crop=32, small_crop_steps=1,
                            **{**TINY, "ndf": 8, "load_size": 52, "crop": 48})
    with pytest.raises(ValueError, match="at least 32"):
        CycleGANConfig(**{**config.__dict__, "small_crop": 16})
    assert train(config, events=EventWriter(), backbone_weights=str(weights)) == 0
    assert [e["step"] for e in _events(capsys) if e["event"] == "step"] == [1, 2]
    state = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "run"))
    # the frozen backbone is not part of the discriminators' state (it is reloaded from its own file)
    assert state["d_a"] and not any(key.startswith("convs.") for key in state["d_a"])


def test_batch_region_translation_takes_masks_from_beside_the_images(tiny_model: str, tmp_path: Path) -> None:
    from PIL import Image

    from ganstudio.batch import BatchOptions, BatchRunner, ChainStep

    folder = tmp_path / "in"
    folder.mkdir()
    pixels = _photo()
    Image.fromarray(pixels).save(folder / "cat.png")
    Image.fromarray(pixels).save(folder / "nomask.png")
    mask = np.zeros(pixels.shape[:2], np.uint8)
    mask[10:40, 20:60] = 255
    Image.fromarray(mask).save(folder / "cat.mask.png")
    chain = [ChainStep("translate", {"model": tiny_model, "use_mask": True})]
    report = BatchRunner(BatchOptions(folder, tmp_path / "out", chain)).run()
    assert {f.input: f.status for f in report.files} == {"cat.png": "done", "nomask.png": "skipped"}
    out = read_image(tmp_path / "out" / "cat.png").pixels
    assert np.array_equal(out[mask == 0], pixels[mask == 0])
    assert not np.array_equal(out[mask > 0], pixels[mask > 0])


def test_working_size_zero_runs_the_model_at_its_cards_size_and_a_given_size_wins(tmp_path: Path) -> None:
    from ganstudio.tools.translate import DEFAULT_WORKING_SIZE, model_working_size

    folder = _install_tiny_model(tmp_path / "models")
    card = json.loads((folder / "tinycat2dog.json").read_text())
    (folder / "tinycat2dog.json").write_text(json.dumps({**card, "working_size": 96}))
    configure_registry(folder)
    seen: list[tuple[int, ...]] = []
    handle = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda module, args: seen.append(tuple(args[0].shape)) if isinstance(module, CycleGANGenerator) else None)
    try:
        translate(_photo(60, 84), TranslateParams(model="tinycat2dog"))
        translate(_photo(60, 84), TranslateParams(model="tinycat2dog", working_size=64))
    finally:
        handle.remove()
    assert min(seen[0][2:]) == 96 and min(seen[1][2:]) == 64
    assert model_working_size({}) == DEFAULT_WORKING_SIZE
    assert model_working_size({"working_size": 250}) == DEFAULT_WORKING_SIZE, "a bad card value is ignored"
    assert model_working_size({"working_size": 144}) == 144


def test_a_run_on_head_crops_with_diffaugment_exports_a_head_model(tmp_path: Path, monkeypatch) -> None:
    from ganstudio.tools import translate as translate_tool
    from ganstudio.tools.heads import HeadBox

    cats, dogs = _folders(tmp_path)
    with pytest.raises(ValueError, match="unknown augmentation"):
        CycleGANConfig(domain_a=str(cats), domain_b=str(dogs), out=str(tmp_path / "bad"), diffaugment="colour",
                       **TINY)
    config = CycleGANConfig(domain_a=str(cats), domain_b=str(dogs), out=str(tmp_path / "run"), steps=2,
                            sample_every=0, diffaugment="color,translation,cutout", **TINY)
    assert train(config, events=EventWriter()) == 0
    cards = export(tmp_path / "run", tmp_path / "models", machine="test", licence="test data",
                   names=("headcat2dog", "headdog2cat"), head_context=2.5)
    card = json.loads(cards[0].read_text())
    assert (card["region"], card["head_context"], card["working_size"]) == ("head", 2.5, config.crop)
    assert card["training"]["diffaugment"] == "color,translation,cutout"
    configure_registry(tmp_path / "models")
    image = _photo(90, 120)
    head = HeadBox(60.0, 45.0, 16.0, 0.9)
    monkeypatch.setattr(translate_tool, "locate_head", lambda image, runtime=None, cancel=None: head)
    out = translate(image, TranslateParams(model="headcat2dog"))
    changed = np.nonzero(np.any(out != image, axis=2))
    # a 40 px square about the head, less its corners: nothing else changes
    assert changed[0].min() >= 25 and changed[0].max() < 65 and changed[1].min() >= 40 and changed[1].max() < 80
