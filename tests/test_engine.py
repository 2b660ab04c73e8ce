import pytest
import torch
import torch.nn as nn

from ganstudio.engine import CancelToken, Cancelled, TilingError, resolve_device, resolve_dtype, run_tiled
from ganstudio.engine.tiling import computed_ratio, tile_layout, tile_starts


def small_net(scale: int = 1) -> nn.Module:
    """Three 3x3 convs (receptive radius 3 input pixels) and an optional pixel-shuffle upsampler."""
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()]
    layers.append(nn.Conv2d(8, 3 * scale * scale, 3, padding=1))
    if scale > 1:
        layers.append(nn.PixelShuffle(scale))
    return nn.Sequential(*layers).eval()


@pytest.mark.parametrize("scale", [1, 2])
def test_tiled_equals_untiled_away_from_border(scale):
    model = small_net(scale)
    image = torch.rand(1, 3, 150, 201)
    whole = run_tiled(model, image, scale=scale, tile=1024)
    tiled = run_tiled(model, image, scale=scale, tile=64, overlap=16)
    assert tiled.shape == whole.shape == (1, 3, 150 * scale, 201 * scale)
    assert torch.allclose(tiled, whole, atol=1e-5)


def test_blending_hides_a_model_that_differs_per_tile():
    """A model whose output depends on the tile's own mean would show hard steps at tile edges without blending."""
    image = torch.rand(1, 3, 96, 96)

    def per_tile_offset(x: torch.Tensor) -> torch.Tensor:
        return x + x.mean()

    out = run_tiled(per_tile_offset, image, tile=48, overlap=16)
    column_jumps = (out[..., 1:] - out[..., :-1] - (image[..., 1:] - image[..., :-1])).abs().amax()
    assert column_jumps < 0.02


def test_tile_starts_cover_the_whole_length():
    for length in (1, 63, 64, 65, 200, 1001):
        starts = tile_starts(length, 64, 16)
        covered = set()
        for s in starts:
            covered.update(range(s, min(s + 64, length)))
        assert covered == set(range(length))
        assert all(b - a <= 64 - 16 for a, b in zip(starts, starts[1:]))


def test_tiles_are_equal_spread_evenly_and_keep_the_overlap():
    for length in (513, 700, 1000, 1500, 2000, 4321):
        for multiple in (1, 4, 8):
            starts, size = tile_layout(length, 512, 32, multiple)
            assert size <= 512 and starts[0] == 0 and starts[-1] + size == length
            assert size % multiple == 0 or size == 512
            assert all(a + size - b >= 32 for a, b in zip(starts, starts[1:]))
            gaps = [b - a for a, b in zip(starts, starts[1:])]
            assert max(gaps) - min(gaps) <= 1


def test_tiling_computes_little_more_than_the_image():
    # Full tiles laid from the edge computed 2.36x a 1000 px square's pixels and 1.64x a 2000 px square's.
    assert computed_ratio(512, 512, 512) == 1.0
    for side in (1000, 2000, 3000):
        assert computed_ratio(side, side, 512) < 1.2
    assert computed_ratio(1500, 2000, 512, multiple_of=4) < 1.2


def test_padding_to_a_size_multiple():
    seen_shapes = []

    def needs_multiple_of_8(x: torch.Tensor) -> torch.Tensor:
        seen_shapes.append(tuple(x.shape[-2:]))
        assert x.shape[-2] % 8 == 0 and x.shape[-1] % 8 == 0
        return x * 2

    image = torch.rand(1, 3, 37, 45)
    out = run_tiled(needs_multiple_of_8, image, multiple_of=8, tile=512)
    assert out.shape == image.shape
    assert torch.allclose(out, image * 2)
    assert seen_shapes == [(40, 48)]


def test_out_of_memory_retries_with_smaller_tiles():
    model = small_net()
    tiles_seen = []

    def runs_out_above_64(x: torch.Tensor) -> torch.Tensor:
        tiles_seen.append(max(x.shape[-2:]))
        if max(x.shape[-2:]) > 64:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return model(x)

    messages = []
    image = torch.rand(1, 3, 200, 200)
    out = run_tiled(runs_out_above_64, image, tile=256, overlap=16, progress=lambda f, m: messages.append(m))
    # 256 -> 128 -> 64 px tile budgets; the tiles themselves are the smallest equal ones under each budget.
    assert tiles_seen[0] == 200 and 64 < tiles_seen[1] <= 128 and max(tiles_seen[2:]) <= 64
    assert [m for m in messages if "retrying" in m] == ["out of memory: retrying with 128-pixel tiles",
                                                        "out of memory: retrying with 64-pixel tiles"]
    assert torch.allclose(out, run_tiled(model, image, tile=1024), atol=1e-5)


def test_out_of_memory_at_the_smallest_tile_gives_up_clearly():
    def always_out_of_memory(x: torch.Tensor) -> torch.Tensor:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(TilingError, match="out of memory"):
        run_tiled(always_out_of_memory, torch.rand(1, 3, 100, 100), tile=128)


def test_other_errors_are_not_retried():
    calls = []

    def broken(x: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_tiled(broken, torch.rand(1, 3, 100, 100), tile=64)
    assert len(calls) == 1


def test_cancel_between_tiles_and_progress_per_tile():
    token = CancelToken()
    fractions = []

    def progress(fraction: float, message: str) -> None:
        fractions.append(fraction)
        if len(fractions) == 2:
            token.cancel()

    net = small_net()
    with pytest.raises(Cancelled):  # a plain function: progress comes per tile only
        run_tiled(lambda x: net(x), torch.rand(1, 3, 128, 128), tile=48, overlap=16, progress=progress, cancel=token)
    assert len(fractions) == 2 and fractions[0] < fractions[1] < 1

    all_fractions = []
    run_tiled(small_net(), torch.rand(1, 3, 128, 128), tile=48, overlap=16,
              progress=lambda f, m: all_fractions.append(f))
    assert all_fractions == sorted(all_fractions) and all_fractions[-1] == 1.0 and len(all_fractions) > 4


def test_a_module_reports_progress_as_its_layers_run_inside_one_tile():
    reports = []
    run_tiled(small_net(), torch.rand(1, 3, 64, 64), tile=128, progress=lambda f, m: reports.append((f, m)))
    fractions = [fraction for fraction, _ in reports]
    # five layers: 20 %, 40 %, ... then the tile's end
    assert fractions == sorted(fractions) and len(set(fractions)) >= 5 and 0 < fractions[0] < 0.5
    assert fractions[-1] == 1.0 and all(message == "1/1 tile" for _, message in reports)
    net = small_net()
    run_tiled(net, torch.rand(1, 3, 64, 64), tile=128, progress=lambda f, m: None)
    assert not any(module._forward_hooks for module in net.modules()), "the hooks are removed afterwards"


def test_precision_policy():
    cpu = torch.device("cpu")
    for precision in ("auto", "fp16", "bf16", "fp32"):
        assert resolve_dtype(cpu, precision, supports_half=True, supports_bf16=True) == torch.float32
    cuda = torch.device("cuda")
    assert resolve_dtype(cuda, "fp16", supports_half=False, supports_bf16=False) == torch.float32
    assert resolve_dtype(cuda, "fp32", supports_half=True, supports_bf16=True) == torch.float32
    with pytest.raises(ValueError):
        resolve_dtype(cuda, "fp8", supports_half=True, supports_bf16=True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown on machines without CUDA")
def test_asking_for_cuda_without_a_gpu_is_a_clear_error():
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_tiled_matches_cpu():
    model = small_net(2)
    image = torch.rand(1, 3, 130, 170)
    cpu = run_tiled(model, image, scale=2, tile=64, overlap=16)
    gpu = run_tiled(model.cuda(), image, scale=2, tile=64, overlap=16, device=torch.device("cuda"))
    assert torch.allclose(cpu, gpu, atol=1e-4)


def test_rgb_model_pipeline_keeps_alpha_grey_and_depth():
    import numpy as np

    from ganstudio.engine import run_rgb_model

    seen = []

    def upscale_nearest(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.shape[1])
        return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")

    rng = np.random.default_rng(0)
    for channels, dtype in ((4, np.uint8), (2, np.uint16), (1, np.uint16), (3, np.uint8)):
        top = np.iinfo(dtype).max
        pixels = rng.integers(0, top + 1, (20, 30, channels), dtype=dtype)
        out = run_rgb_model(pixels, upscale_nearest, scale=2)
        assert out.shape == (40, 60, channels) and out.dtype == dtype
        colour_channels = channels - (channels in (2, 4))
        # nearest ×2 of the colour is exact: the model saw RGB and the colour came back unchanged
        assert np.array_equal(out[::2, ::2, :colour_channels], pixels[..., :colour_channels])
    assert seen == [3, 3, 3, 3]  # alpha never goes through the model; grey runs as RGB


def test_a_self_ensemble_averages_the_turned_back_outputs_of_the_dihedral_copies():
    from ganstudio.engine.ensemble import self_ensemble

    torch.manual_seed(0)
    x = torch.rand(1, 3, 8, 12)
    calls = []

    def pixelwise(t: torch.Tensor) -> torch.Tensor:  # no notion of position: every copy agrees
        calls.append(tuple(t.shape))
        return t * 2 + 1

    for size in (1, 2, 4, 8):
        calls.clear()
        torch.testing.assert_close(self_ensemble(pixelwise, size)(x), x * 2 + 1)
        assert len(calls) == size
    assert (1, 3, 12, 8) in calls, "the transposed copies run with height and width swapped"

    ramp = torch.linspace(0, 1, 12).expand(1, 1, 8, 12)

    def grid_tied(t: torch.Tensor) -> torch.Tensor:  # adds a pattern fixed to the grid, whatever the content
        return t + torch.linspace(0, 1, t.shape[3]).expand_as(t)

    torch.testing.assert_close(self_ensemble(grid_tied, 1)(torch.zeros_like(ramp)), ramp)
    # the left-right flip puts the pattern the other way round, so the pair averages it to its mean
    torch.testing.assert_close(self_ensemble(grid_tied, 2)(torch.zeros_like(ramp)), torch.full_like(ramp, 0.5))
    with pytest.raises(ValueError, match="copies"):
        self_ensemble(pixelwise, 3)
