import json

import pytest
import torch
from safetensors.torch import save_file

from ganstudio.models import (
    ModelLoadError,
    Registry,
    UnknownModelError,
    configure_registry,
    get_registry,
    import_foreign_model,
    model_cache,
)
from ganstudio.models.arch import ARCHITECTURES, build_arch, register_arch
from ganstudio.models.registry import descriptor_from_card


@register_arch("test-doubler")
class Doubler(torch.nn.Module):
    """A ×2 model with one weight, so a loaded state dict is easy to check."""

    def __init__(self, gain: float = 1.0) -> None:
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor(gain))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest") * self.gain


def write_model(folder, name="doubler", gain=0.5, **card_extra):
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"gain": torch.tensor(gain)}, str(folder / f"{name}.safetensors"))
    card = {"name": name, "title": "Doubler", "task": "superres", "scale": 2,
            "architecture": {"name": "test-doubler", "params": {}}, **card_extra}
    (folder / f"{name}.json").write_text(json.dumps(card))
    return folder / f"{name}.json"


def test_builtin_baselines_are_registered():
    registry = Registry()
    assert {m.name for m in registry.for_task("superres")} >= {"bicubic", "lanczos"}
    assert {m.name for m in registry.for_task("inpaint")} >= {"opencv-telea", "opencv-ns"}
    assert all(m.is_classic for m in registry.all())


def test_unknown_model_lists_the_available_ones():
    with pytest.raises(UnknownModelError) as info:
        Registry().get("nope", "inpaint")
    assert "opencv-telea" in str(info.value) and "bicubic" not in str(info.value)
    with pytest.raises(UnknownModelError):
        Registry().get("bicubic", "inpaint")


def test_scan_reads_cards_and_loads_safetensors(tmp_path):
    write_model(tmp_path / "models")
    registry = configure_registry(tmp_path / "models")
    assert registry is get_registry()
    model = registry.get("doubler", "superres")
    assert (model.scale, model.source, model.weights.name) == (2, "user", "doubler.safetensors")
    module = model_cache.get(model, torch.device("cpu"), torch.float32)
    assert module.gain.item() == 0.5
    assert module(torch.ones(1, 3, 4, 4)).shape == (1, 3, 8, 8)
    assert model_cache.get(model, torch.device("cpu"), torch.float32) is module


def test_cache_reloads_when_the_weights_file_changes(tmp_path):
    write_model(tmp_path, gain=0.5)
    model = descriptor_from_card(tmp_path / "doubler.json", "user")
    first = model_cache.get(model, torch.device("cpu"), torch.float32)
    import os
    import time

    save_file({"gain": torch.tensor(3.0)}, str(model.weights))
    os.utime(model.weights, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    second = model_cache.get(model, torch.device("cpu"), torch.float32)
    assert second is not first and second.gain.item() == 3.0


def test_broken_cards_are_reported_not_raised(tmp_path):
    (tmp_path / "garbage.json").write_text("{not json")
    (tmp_path / "no-task.json").write_text(json.dumps({"architecture": {"name": "x"}}))
    write_model(tmp_path, name="orphan").with_suffix(".safetensors").unlink()
    registry = Registry()
    registry.scan_folder(tmp_path, "user")
    assert len(registry.problems) == 3
    assert any("garbage.json" in p for p in registry.problems)
    assert any("orphan.safetensors is missing" in p for p in registry.problems)


def test_weights_that_do_not_fit_the_architecture_fail_clearly(tmp_path):
    write_model(tmp_path)
    save_file({"something_else": torch.zeros(2)}, str(tmp_path / "doubler.safetensors"))
    model = descriptor_from_card(tmp_path / "doubler.json", "user")
    with pytest.raises(ModelLoadError, match="doubler"):
        model_cache.get(model, torch.device("cpu"), torch.float32)


def test_build_arch_rejects_unknown_names():
    with pytest.raises(KeyError, match="unknown architecture"):
        build_arch("no-such-arch", {})
    assert "test-doubler" in ARCHITECTURES


def esrgan_pth(path, scale=4):
    """A randomly initialised, small ESRGAN (RRDBNet) state dict, saved the way foreign projects ship them."""
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    net = ESRGAN(num_filters=8, num_blocks=1, scale=scale)
    torch.save(net.state_dict(), path)
    return path


def test_foreign_esrgan_imports_through_spandrel_and_runs(tmp_path):
    source = esrgan_pth(tmp_path / "RealESRGAN_tiny.pth")
    models = tmp_path / "models"
    card_path = import_foreign_model(source, models)
    card = json.loads(card_path.read_text())
    assert card["task"] == "superres" and card["scale"] == 4 and card["architecture"]["detected"] == "ESRGAN"
    registry = configure_registry(models)
    model = registry.get("RealESRGAN_tiny", "superres")
    assert model.source == "foreign"
    module = model_cache.get(model, torch.device("cpu"), torch.float32)
    assert module(torch.rand(1, 3, 8, 8)).shape == (1, 3, 32, 32)
    with pytest.raises(ModelLoadError, match="already exists"):
        import_foreign_model(source, models)


def test_import_refuses_files_that_are_not_models(tmp_path):
    bogus = tmp_path / "notes.pth"
    bogus.write_bytes(b"definitely not a state dict")
    with pytest.raises(ModelLoadError, match="notes.pth"):
        import_foreign_model(bogus, tmp_path / "models")
    assert not (tmp_path / "models" / "notes.pth").exists()


def test_import_without_spandrel_says_what_is_missing(tmp_path, monkeypatch):
    """A bundle built without torchvision cannot import spandrel: the user gets the reason, and nothing is copied."""
    import sys

    source = esrgan_pth(tmp_path / "RealESRGAN_tiny.pth")
    monkeypatch.setitem(sys.modules, "spandrel", None)
    with pytest.raises(ModelLoadError, match="needs spandrel with torchvision"):
        import_foreign_model(source, tmp_path / "models")
    models = tmp_path / "models"
    assert not models.exists() or not any(models.iterdir())
