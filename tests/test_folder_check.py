from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganstudio.train.folder_check import check_folder


def _photo(path: Path, size: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size, size + 8, 3), dtype=np.uint8)).save(path)
    return path


def test_lists_broken_tiny_and_duplicate_files(tmp_path: Path) -> None:
    good = [_photo(tmp_path / f"good{i}.png", 64, i) for i in range(3)]
    tiny = _photo(tmp_path / "sub" / "tiny.png", 16, 10)
    duplicate = tmp_path / "sub" / "copy.png"
    shutil.copyfile(good[1], duplicate)
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(_photo(tmp_path / "whole.png", 64, 20).read_bytes()[:400])
    (tmp_path / "whole.png").unlink()
    (tmp_path / "notes.txt").write_text("not an image")
    steps: list[tuple[int, int]] = []

    report = check_folder(tmp_path, progress=lambda done, total: steps.append((done, total)))

    assert sorted(s.path.name for s in report.broken) == ["broken.jpg", "truncated.png"]
    assert report.too_small(32) == [tiny]
    assert report.duplicates == [[good[1], duplicate]]
    # sorted order puts sub/copy.png after good1.png: the duplicate, not the original, is dropped
    assert [i.path for i in report.usable(32)] == good
    assert steps[-1] == (7, 7)
    assert report.size_summary() == "short side 16 px at the smallest, 64 px median"
    verdict = report.verdict(32, min_images=3)
    assert verdict.ok and verdict.usable == 3 and verdict.text == "Enough to train on: 3 usable photos."
    too_few = report.verdict(65, min_images=3)
    assert not too_few.ok and "at least 3 photos of 65 px" in too_few.text


def test_missing_folder_and_cancel(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        check_folder(tmp_path / "nope")
    for i in range(3):
        _photo(tmp_path / f"{i}.png", 40, i)
    assert check_folder(tmp_path, cancelled=lambda: True).images == []
