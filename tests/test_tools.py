import numpy as np
import pytest

from ganstudio.engine import CancelToken, Cancelled
from ganstudio.tools import TOOLS, get_tool
from ganstudio.tools.inpaint import InpaintParams
from ganstudio.tools.superres import SuperResParams


def photo(height=48, width=64, channels=3, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    y, x = np.mgrid[0:height, 0:width]
    base = (np.sin(x / 7.0) + np.cos(y / 5.0) + 2) / 4
    layers = [base * (0.5 + 0.5 * c / max(channels, 1)) for c in range(channels)]
    image = np.stack(layers, axis=2) + rng.normal(0, 0.01, (height, width, channels))
    return (np.clip(image, 0, 1) * top).round().astype(dtype)


def test_tools_are_listed():
    assert set(TOOLS) >= {"superres", "inpaint"}
    assert get_tool("inpaint").needs_mask and not get_tool("superres").needs_mask
    with pytest.raises(ValueError, match="available"):
        get_tool("sharpen")


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("model", ["bicubic", "lanczos"])
def test_classic_superres_keeps_layout(channels, dtype, model):
    image = photo(channels=channels, dtype=dtype)
    out = get_tool("superres").run(image, SuperResParams(model=model, scale=2))
    assert out.shape == (96, 128, channels) and out.dtype == dtype
    # a smooth image upscaled keeps its mean colour
    assert abs(out.astype(float).mean() - image.astype(float).mean()) < 0.01 * np.iinfo(dtype).max


def test_superres_rejects_bad_scale_and_model():
    with pytest.raises(ValueError, match="scale"):
        get_tool("superres").run(photo(), SuperResParams(scale=5))
    with pytest.raises(KeyError, match="available"):
        get_tool("superres").run(photo(), SuperResParams(model="opencv-telea"))


def test_inpaint_fills_only_the_mask():
    image = photo(64, 80)
    image[20:40, 30:50] = [255, 0, 0]  # a red "object" to remove
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[18:42, 28:52] = 255
    for model in ("opencv-telea", "opencv-ns"):
        out = get_tool("inpaint").run(image, InpaintParams(model=model), mask=mask)
        outside = mask == 0
        assert np.array_equal(out[outside], image[outside])
        filled = out[20:40, 30:50].astype(int)
        assert filled[..., 0].mean() < 200 and filled[..., 1].mean() > 40  # the red is gone


@pytest.mark.parametrize("channels,dtype", [(1, np.uint8), (4, np.uint8), (3, np.uint16), (2, np.uint16)])
def test_inpaint_any_layout(channels, dtype):
    image = photo(40, 40, channels, dtype)
    mask = np.zeros((40, 40), bool)
    mask[10:20, 10:20] = True
    out = get_tool("inpaint").run(image, InpaintParams(), mask=mask)
    assert out.shape == image.shape and out.dtype == dtype
    assert np.array_equal(out[~mask], image[~mask])
    neighbourhood = image[5:25, 5:25].astype(float).mean()
    assert abs(out[10:20, 10:20].astype(float).mean() - neighbourhood) < 0.1 * np.iinfo(dtype).max


def test_soft_mask_edges_count_from_half_white():
    image = photo(20, 20)
    mask = np.zeros((20, 20), np.uint8)
    mask[5:10, 5:10] = 255
    mask[0, 0] = 100  # faint anti-aliasing is not part of the area
    out = get_tool("inpaint").run(image, InpaintParams(), mask=mask)
    assert np.array_equal(out[0, 0], image[0, 0])


def test_inpaint_reports_mask_problems():
    run = get_tool("inpaint").run
    with pytest.raises(ValueError, match="needs a mask"):
        run(photo(), InpaintParams())
    with pytest.raises(ValueError, match="empty"):
        run(photo(), InpaintParams(), mask=np.zeros((48, 64), np.uint8))
    with pytest.raises(ValueError, match="64x48"):
        run(photo(), InpaintParams(), mask=np.ones((10, 10), np.uint8) * 255)


def test_a_cancelled_tool_raises():
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        get_tool("superres").run(photo(), SuperResParams(), cancel=token)
