"""The packer that makes the cat and dog folders small enough to travel to a lent GPU (training/translate)."""
import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

from ganstudio.train.data import list_images

_SCRIPT = Path(__file__).resolve().parents[1] / "training" / "translate" / "pack_data.py"


def _pack_module():
    spec = importlib.util.spec_from_file_location("pack_data", _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _photo(path: Path, width: int, height: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(width * height)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)


def test_photos_shrink_to_the_load_size_keep_their_names_and_broken_files_are_skipped(tmp_path, capsys):
    source, target = tmp_path / "cats", tmp_path / "pack" / "cats"
    _photo(source / "big.jpg", 300, 200)
    _photo(source / "small.png", 120, 90)
    _photo(source / "breeds" / "tall.jpg", 150, 400)
    (source / "broken.jpg").write_bytes(b"not a jpeg")

    count, size = _pack_module().pack_folder(source, target, short_side=143, quality=80)

    assert count == 3
    packed = {path.relative_to(target).as_posix(): path for path in list_images(target)}
    assert sorted(packed) == ["big.webp", "breeds/tall.webp", "small.webp"]
    assert size == sum(path.stat().st_size for path in packed.values())
    sizes = {}
    for name, path in packed.items():
        with Image.open(path) as image:
            sizes[name] = image.size
    assert sizes["big.webp"] == (214, 143)
    assert sizes["breeds/tall.webp"] == (143, 381)
    assert sizes["small.webp"] == (120, 90)  # never enlarged: training decides how to upscale
    assert "broken.jpg" in capsys.readouterr().err
    assert (source / "broken.jpg").exists()
