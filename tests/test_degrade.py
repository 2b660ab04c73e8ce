"""The real-world degradation module: each step does what it says, the pipeline is seeded and sized exactly."""
from __future__ import annotations

import numpy as np
import pytest

from ganstudio.train import degrade
from ganstudio.train.data import SRCropDataset, SRValidationSet


def photo(size: int = 96, seed: int = 0) -> np.ndarray:
    """Smooth colour gradients with a few sharp edges: something blur, noise and JPEG visibly change."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    image = np.stack([x, y, 0.5 + 0.3 * np.sin(6 * x + 3 * y)], axis=-1)
    image[size // 3 : size // 2, size // 4 : 3 * size // 4] = rng.random(3)
    return (image * 255).clip(0, 255).astype(np.uint8)


def high_frequency(image: np.ndarray) -> float:
    """Mean absolute difference between neighbouring pixels: falls with blur, rises with noise."""
    image = image.astype(np.float32)
    return float(np.abs(np.diff(image, axis=0)).mean() + np.abs(np.diff(image, axis=1)).mean())


def test_gaussian_kernel_sums_to_one_and_is_anisotropic_along_its_angle():
    iso = degrade.gaussian_kernel(9, 1.5)
    assert iso.sum() == pytest.approx(1.0, abs=1e-6)
    assert np.allclose(iso, iso.T)
    wide = degrade.gaussian_kernel(15, 3.0, 0.5, 0.0)  # long axis horizontal
    assert wide[7, 7 + 4] > wide[7 + 4, 7] * 10
    turned = degrade.gaussian_kernel(15, 3.0, 0.5, np.pi / 2)
    assert np.allclose(turned, wide.T, atol=1e-6)
    with pytest.raises(ValueError):
        degrade.gaussian_kernel(8, 1.0)


def test_blur_softens_and_keeps_the_mean():
    image = degrade.gaussian_noise(degrade.to_float(photo()), 12.0, np.random.default_rng(0))  # fine detail
    soft = degrade.blur(image, degrade.gaussian_kernel(9, 2.0))
    assert soft.shape == image.shape
    assert high_frequency(soft) < 0.6 * high_frequency(image)
    assert soft.mean() == pytest.approx(image.mean(), abs=0.01)


@pytest.mark.parametrize("method", list(degrade.RESIZE_METHODS))
def test_resize_gives_the_size_asked_for_within_range(method):
    out = degrade.resize(degrade.to_float(photo()), (40, 30), method)
    assert out.shape == (30, 40, 3)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_noise_steps_add_noise_of_the_strength_asked():
    flat = np.full((64, 64, 3), 0.5, np.float32)
    rng = np.random.default_rng(0)
    noisy = degrade.gaussian_noise(flat, 10.0, rng)
    assert (noisy - flat).std() * 255 == pytest.approx(10.0, rel=0.1)
    gray = degrade.gaussian_noise(flat, 10.0, rng, gray=True)
    assert np.allclose(gray[..., 0], gray[..., 1]) and np.allclose(gray[..., 1], gray[..., 2])
    # Shot noise grows with brightness, unlike Gaussian noise.
    dark, bright = np.full((64, 64, 3), 0.1, np.float32), np.full((64, 64, 3), 0.8, np.float32)
    dark_noise = (degrade.poisson_noise(dark, 1.0, rng) - dark).std()
    bright_noise = (degrade.poisson_noise(bright, 1.0, rng) - bright).std()
    assert bright_noise > 2 * dark_noise


def test_jpeg_loses_more_at_lower_quality():
    image = degrade.to_float(photo(seed=3))
    image = degrade.gaussian_noise(image, 8.0, np.random.default_rng(1))  # texture for JPEG to lose
    error = {q: np.abs(degrade.jpeg(image, q) - image).mean() for q in (95, 60, 20)}
    assert 0 < error[95] < error[60] < error[20]
    with pytest.raises(ValueError):
        degrade.jpeg(image, 0)


def test_random_pipeline_is_deterministic_for_a_seed_and_sized_exactly():
    hr = photo(128)
    first = degrade.degrade_real(hr, 4, np.random.default_rng(7))
    again = degrade.degrade_real(hr, 4, np.random.default_rng(7))
    other = degrade.degrade_real(hr, 4, np.random.default_rng(8))
    assert first.dtype == np.uint8 and first.shape == (32, 32, 3)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert degrade.degrade_real(photo(96), 2, np.random.default_rng(0)).shape == (48, 48, 3)
    with pytest.raises(ValueError):
        degrade.degrade_real(photo(97), 4, np.random.default_rng(0))


def test_random_pipeline_degrades_more_than_bicubic_on_average():
    hr = photo(128, seed=5)
    bicubic = degrade.to_uint8(degrade.resize(degrade.to_float(hr), (32, 32), "bicubic")).astype(np.float32)
    diffs = [np.abs(degrade.degrade_real(hr, 4, np.random.default_rng(s)).astype(np.float32) - bicubic).mean()
             for s in range(20)]
    # A share of pairs stays clean bicubic (within rounding); most are visibly further from it.
    assert sum(d < 1.0 for d in diffs) < 8
    assert np.median(diffs) > 2.0


@pytest.mark.parametrize("strength", degrade.STRENGTHS)
def test_fixed_strengths_are_repeatable_sized_and_ordered(strength):
    hr = photo(128, seed=2)
    lr = degrade.degrade_fixed(hr, 4, strength, seed=0)
    assert lr.shape == (32, 32, 3) and lr.dtype == np.uint8
    assert np.array_equal(lr, degrade.degrade_fixed(hr, 4, strength, seed=0))


def test_fixed_strengths_get_further_from_the_clean_downscale():
    hr = photo(128, seed=4)
    clean = degrade.to_uint8(degrade.resize(degrade.to_float(hr), (32, 32), "bicubic")).astype(np.float32)
    error = [np.abs(degrade.degrade_fixed(hr, 4, s).astype(np.float32) - clean).mean() for s in degrade.STRENGTHS]
    assert 0 < error[0] < error[1] < error[2]
    with pytest.raises(ValueError):
        degrade.degrade_fixed(hr, 4, "extreme")


def test_datasets_make_real_pairs_from_torch_seed_and_fixed_validation():
    import torch

    images = [photo(128, seed=i) for i in range(3)]
    dataset = SRCropDataset(images, 64, 4, "none", degradation="real")
    torch.manual_seed(0)
    lr, hr = dataset[0]
    torch.manual_seed(0)
    lr_again, _ = dataset[0]
    assert lr.shape == (3, 16, 16) and hr.shape == (3, 64, 64)
    assert torch.equal(lr, lr_again)
    first = SRValidationSet(images, 64, 4, degradation="real")
    second = SRValidationSet(images, 64, 4, degradation="real")
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, second))
    bicubic = SRValidationSet(images, 64, 4)
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(first, bicubic))
    with pytest.raises(ValueError):
        SRCropDataset(images, 64, 4, degradation="film-grain")


def test_clean_share_sets_how_many_pairs_stay_a_plain_downscale():
    hr = photo(128, seed=5)
    downscales = [degrade.to_uint8(degrade.resize(degrade.to_float(hr), (32, 32), method)) for method in
                  ("bicubic", "area")]

    def clean_count(share: float) -> int:
        cfg = degrade.RealDegradation(clean_share=share)
        lrs = [degrade.degrade_real(hr, 4, np.random.default_rng(s), cfg) for s in range(40)]
        return sum(any(np.array_equal(lr, d) for d in downscales) for lr in lrs)

    assert clean_count(0.0) == 0
    assert clean_count(1.0) == 40
    assert 4 <= clean_count(0.3) <= 22


def test_training_crops_take_the_clean_share_and_validation_ignores_it():
    import torch

    images = [photo(128, seed=i) for i in range(2)]
    clean = SRCropDataset(images, 64, 4, "none", degradation="real", clean_share=1.0)
    torch.manual_seed(0)
    lr, hr = clean[0]
    plain = SRCropDataset(images, 64, 4, "none")
    torch.manual_seed(0)
    lr_bicubic, hr_bicubic = plain[0]
    # the same crop (the torch draws before the seed are the same), and a clean share of 1 gives its downscale
    # (bicubic or area): at most rounding away from the bicubic pair
    assert torch.equal(hr, hr_bicubic)
    assert (lr - lr_bicubic).abs().mean() < 2 / 255
    first = SRValidationSet(images, 64, 4, degradation="real")
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, SRValidationSet(images, 64, 4, degradation="real")))


def test_training_config_checks_the_clean_share():
    from ganstudio.train.superres import SuperResConfig

    assert SuperResConfig(data="d", out="o", degradation="real", clean_share=0.3).clean_share == 0.3
    with pytest.raises(ValueError, match="clean share"):
        SuperResConfig(data="d", out="o", degradation="real", clean_share=1.5)
