"""The super-resolution quality benchmark's own pieces: the evenly spaced subset and the degraded real-world pairs."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SR_EVAL = ROOT.parent / "shared" / "eval" / "sr"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("superres_quality", ROOT / "benchmarks" / "superres_quality.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def test_evenly_spaced_takes_the_ends_and_spreads_the_rest():
    bench = load_benchmark()
    items = list(range(100))
    assert bench.evenly_spaced(items, None) == items
    assert bench.evenly_spaced(items, 200) == items
    assert bench.evenly_spaced(items, 1) == [0]
    picked = bench.evenly_spaced(items, 5)
    assert picked[0] == 0 and picked[-1] == 99 and len(set(picked)) == 5
    gaps = np.diff(picked)
    assert gaps.max() - gaps.min() <= 1


def write_set(folder: Path, count: int) -> None:
    from PIL import Image

    (folder / "HR").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (50, 66, 3), dtype=np.uint8)).save(folder / "HR" / f"img_{i:03d}.png")


def test_real_world_pairs_are_sized_seeded_by_index_and_a_subset_meets_the_same_inputs(tmp_path):
    bench = load_benchmark()
    write_set(tmp_path, 5)
    full = bench.real_world_pairs(tmp_path, "medium")
    assert [name for name, _, _ in full] == [f"img_{i:03d}" for i in range(5)]
    for _, lr, hr in full:
        assert hr.size == (64, 48) and lr.size == (16, 12)  # cropped to a multiple of the scale
    subset = bench.real_world_pairs(tmp_path, "medium", limit=2)
    assert [name for name, _, _ in subset] == ["img_000", "img_004"]
    assert np.array_equal(np.asarray(subset[1][1]), np.asarray(full[4][1]))
    light = bench.real_world_pairs(tmp_path, "light", limit=1)
    assert not np.array_equal(np.asarray(light[0][1]), np.asarray(full[0][1]))


@pytest.mark.skipif(not (SR_EVAL / "Set14" / "HR").is_dir(), reason="needs ../shared/eval/sr")
def test_real_world_pairs_of_the_shared_sets_degrade_the_clean_downscale():
    from PIL import Image

    bench = load_benchmark()
    name, lr, hr = bench.real_world_pairs(SR_EVAL / "Set14", "heavy", limit=1)[0]
    clean = np.asarray(hr.resize(lr.size, Image.Resampling.BICUBIC), dtype=np.float32)
    assert lr.size == (hr.width // 4, hr.height // 4)
    assert np.abs(np.asarray(lr, dtype=np.float32) - clean).mean() > 3.0
