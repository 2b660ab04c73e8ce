import pytest
import torch
import torch.nn.functional as F

from ganstudio.train.lpips import LPIPS, weights_path

pytestmark = pytest.mark.skipif(not weights_path().exists(), reason="needs ../shared/weights/lpips_alexnet.npz")


@pytest.fixture(scope="module")
def lpips():
    return LPIPS()


def smooth_image(seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    return F.interpolate(torch.rand(1, 3, 8, 8), size=64, mode="bicubic", align_corners=False).clamp(0, 1)


def test_identical_images_are_at_distance_zero(lpips):
    image = smooth_image(0)
    assert lpips(image, image).item() == pytest.approx(0.0, abs=1e-6)


def test_distance_grows_with_noise_and_is_symmetric(lpips):
    image = smooth_image(1)
    torch.manual_seed(2)
    noise = torch.randn_like(image)
    distances = [lpips(image, (image + s * noise).clamp(0, 1)).item() for s in (0.02, 0.05, 0.1, 0.2)]
    assert distances == sorted(distances) and distances[0] > 0
    other = smooth_image(3)
    assert lpips(image, other).item() == pytest.approx(lpips(other, image).item(), rel=1e-5)


def test_one_value_per_image(lpips):
    batch_a = torch.cat([smooth_image(4), smooth_image(5)])
    batch_b = torch.cat([smooth_image(4), smooth_image(6)])
    values = lpips(batch_a, batch_b)
    assert values.shape == (2,) and values[0].item() < 1e-6 < values[1].item()
