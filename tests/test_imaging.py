import os
import struct
import warnings
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from ganstudio.imaging import (
    ImageError,
    ImageMeta,
    ImageNotFoundError,
    ImageTooLargeError,
    OutputExistsError,
    TruncatedImageError,
    UnreadableImageError,
    composite_over,
    format_for_path,
    from_float,
    from_rgb,
    merge_alpha,
    read_image,
    resize,
    rgb_to_y,
    split_alpha,
    to_float,
    to_rgb,
    write_image,
)

SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
# Only the colour-space field matters to the writer's check; no decoder here interprets the profile.
GREY_ICC = SRGB_ICC[:16] + b"GRAY" + SRGB_ICC[20:]
MAKE, ORIENTATION, DATE_TAKEN = 271, 274, 36867


def noise(channels: int, dtype=np.uint8, height: int = 12, width: int = 17, seed: int = 0) -> np.ndarray:
    peak = np.iinfo(dtype).max
    return np.random.default_rng(seed).integers(0, peak, (height, width, channels), dtype=dtype, endpoint=True)


def gradient(height: int = 32, width: int = 48) -> np.ndarray:
    """Smooth RGB, so lossy codecs stay close to it."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 5, y * 7, 255 - x * 3], axis=-1).astype(np.uint8)


def camera_exif(orientation: int | None = None) -> bytes:
    exif = Image.Exif()
    exif[MAKE] = "GAN Studio test"
    if orientation is not None:
        exif[ORIENTATION] = orientation
    exif.get_ifd(0x8769)[DATE_TAKEN] = "2024:05:06 07:08:09"
    return exif.tobytes()


def parse_exif(data: bytes) -> Image.Exif:
    exif = Image.Exif()
    exif.load(data)
    return exif


def png_with_exif(png: bytes, exif: bytes) -> bytes:
    """Insert an eXIf chunk right after IHDR (for files Pillow cannot write, e.g. 16-bit RGB)."""
    body = exif.removeprefix(b"Exif\x00\x00")
    chunk = struct.pack(">I", len(body)) + b"eXIf" + body + struct.pack(">I", zlib.crc32(b"eXIf" + body))
    return png[:33] + chunk + png[33:]


def cv2_png(rgb: np.ndarray) -> bytes:
    bgr = rgb[..., [2, 1, 0, 3][: rgb.shape[2]]]
    ok, data = cv2.imencode(".png", np.ascontiguousarray(bgr))
    assert ok
    return data.tobytes()


# ------------------------------------------------------------------------------------------------ round trips


LOSSLESS_CASES = [
    (suffix, channels, dtype)
    for suffix in (".png", ".tif")
    for channels in (1, 2, 3, 4)
    for dtype in (np.uint8, np.uint16)
    if (suffix, channels, dtype) != (".tif", 2, np.uint16)  # see test_16bit_grey_alpha_tiff_becomes_rgba
]


@pytest.mark.parametrize(("suffix", "channels", "dtype"), LOSSLESS_CASES)
def test_lossless_round_trip(tmp_path, suffix, channels, dtype):
    pixels = noise(channels, dtype)
    loaded = read_image(write_image(tmp_path / f"x{suffix}", pixels))
    assert loaded.pixels.dtype == dtype
    assert loaded.pixels.flags.c_contiguous
    np.testing.assert_array_equal(loaded.pixels, pixels)
    assert loaded.meta.format == ("PNG" if suffix == ".png" else "TIFF")
    assert loaded.meta.source == tmp_path / f"x{suffix}"


def test_16bit_grey_alpha_tiff_becomes_rgba(tmp_path):
    pixels = noise(2, np.uint16)
    loaded = read_image(write_image(tmp_path / "ga.tif", pixels))
    np.testing.assert_array_equal(loaded.pixels, np.concatenate([np.repeat(pixels[..., :1], 3, 2), pixels[..., 1:]], 2))


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_colour_writer_is_read_by_pillow(tmp_path, suffix):
    """An independent decoder: Pillow reduces 16-bit colour to the high byte of each sample."""
    pixels = noise(4, np.uint16)
    with Image.open(write_image(tmp_path / f"x{suffix}", pixels)) as img:
        assert img.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(img), (pixels >> 8).astype(np.uint8))


@pytest.mark.parametrize("channels", [3, 4])
def test_16bit_colour_png_from_other_software_keeps_16_bits_and_rgb_order(tmp_path, channels):
    pixels = noise(channels, np.uint16)
    pixels[..., 0] = 1000  # distinct channels catch a BGR mix-up
    pixels[..., 2] = 60000
    (tmp_path / "cv.png").write_bytes(cv2_png(pixels))
    loaded = read_image(tmp_path / "cv.png")
    assert loaded.pixels.dtype == np.uint16
    np.testing.assert_array_equal(loaded.pixels, pixels)


def test_bmp_and_str_path(tmp_path):
    pixels = noise(3)
    Image.fromarray(pixels).save(tmp_path / "x.bmp")
    loaded = read_image(str(tmp_path / "x.bmp"))
    np.testing.assert_array_equal(loaded.pixels, pixels)
    assert loaded.meta.format == "BMP"


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_webp_lossless_at_quality_100(tmp_path, channels):
    pixels = noise(channels)
    loaded = read_image(write_image(tmp_path / "x.webp", pixels, quality=100))
    colour, alpha = split_alpha(pixels)
    np.testing.assert_array_equal(loaded.pixels, merge_alpha(to_rgb(colour), alpha))  # WebP has no grey


@pytest.mark.parametrize("suffix", [".jpg", ".webp"])
def test_lossy_round_trip_is_close(tmp_path, suffix):
    pixels = gradient()
    loaded = read_image(write_image(tmp_path / f"x{suffix}", pixels, quality=95))
    assert loaded.pixels.shape == pixels.shape and loaded.pixels.dtype == np.uint8
    assert np.abs(loaded.pixels.astype(int) - pixels).mean() < 3


def test_lossy_quality_is_applied(tmp_path):
    pixels = noise(3, height=64, width=64)
    small = write_image(tmp_path / "low.jpg", pixels, quality=10).stat().st_size
    assert small < write_image(tmp_path / "high.jpg", pixels, quality=95).stat().st_size / 2


def test_16bit_to_8bit_rounds_to_nearest(tmp_path):
    k = np.arange(0, 255, dtype=np.uint16)
    values = np.stack([257 * k + 128, 257 * k + 129, 257 * k], axis=-1)[None]  # just below / above x.5, exact
    loaded = read_image(write_image(tmp_path / "x.webp", values, quality=100))
    np.testing.assert_array_equal(loaded.pixels[0], np.stack([k, k + 1, k], axis=-1))


def test_jpeg_flattens_alpha_onto_white(tmp_path):
    pixels = np.zeros((16, 16, 4), np.uint8)
    pixels[..., 0] = 200
    pixels[:, 8:, 3] = 255  # left half transparent, right half opaque red-ish
    loaded = read_image(write_image(tmp_path / "x.jpg", pixels))
    assert loaded.pixels.shape == (16, 16, 3)
    assert np.abs(loaded.pixels[:, :4].astype(int) - 255).max() <= 3
    assert np.abs(loaded.pixels[:, 12:].astype(int) - [200, 0, 0]).max() <= 6

    grey = np.stack([np.full((16, 16), 40, np.uint8), np.zeros((16, 16), np.uint8)], axis=-1)
    loaded = read_image(write_image(tmp_path / "grey.jpg", grey))
    assert loaded.pixels.shape == (16, 16, 1) and loaded.pixels.min() >= 252


# ------------------------------------------------------------------------------------------------ modes on reading


def test_palette_one_bit_and_cmyk_are_converted(tmp_path):
    rgb = noise(3)
    palette = Image.fromarray(rgb).quantize(8)
    palette.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_image(tmp_path / "p.png").pixels, np.asarray(palette.convert("RGB")))
    palette.save(tmp_path / "pt.png", transparency=0)
    loaded = read_image(tmp_path / "pt.png").pixels
    assert loaded.shape[2] == 4 and set(np.unique(loaded[..., 3])) == {0, 255}

    Image.fromarray(rgb[..., 0] > 127).save(tmp_path / "bits.png")
    loaded = read_image(tmp_path / "bits.png").pixels
    assert loaded.shape == (12, 17, 1) and loaded.dtype == np.uint8
    np.testing.assert_array_equal(loaded[..., 0], np.where(rgb[..., 0] > 127, 255, 0))

    Image.fromarray(gradient()).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    loaded = read_image(tmp_path / "cmyk.jpg").pixels
    assert loaded.shape == (32, 48, 3)
    assert np.abs(loaded.astype(int) - gradient()).mean() < 4


def test_16bit_grey_big_endian_tiff(tmp_path):
    grey = noise(1, np.uint16)[..., 0]
    Image.frombytes("I;16B", (17, 12), grey.astype(">u2").tobytes()).save(tmp_path / "be.tif")
    loaded = read_image(tmp_path / "be.tif").pixels
    assert loaded.dtype == np.uint16 and loaded.dtype.isnative
    np.testing.assert_array_equal(loaded[..., 0], grey)


# ------------------------------------------------------------------------------------------------ metadata


@pytest.mark.parametrize(
    ("suffix", "dtype"),
    [(".png", np.uint8), (".png", np.uint16), (".tif", np.uint8), (".tif", np.uint16), (".jpg", np.uint8),
     (".webp", np.uint8)],
)
def test_icc_and_exif_are_kept(tmp_path, suffix, dtype):
    target = write_image(tmp_path / f"x{suffix}", noise(3, dtype), ImageMeta(SRGB_ICC, camera_exif()))
    with Image.open(target) as img:  # as other software sees the file
        assert img.info["icc_profile"] == SRGB_ICC
        exif = img.getexif()
        assert exif[MAKE] == "GAN Studio test"
        assert exif.get_ifd(0x8769)[DATE_TAKEN] == "2024:05:06 07:08:09"
    meta = read_image(target).meta
    assert meta.icc_profile == SRGB_ICC
    assert parse_exif(meta.exif)[MAKE] == "GAN Studio test"
    assert parse_exif(meta.exif).get_ifd(0x8769)[DATE_TAKEN] == "2024:05:06 07:08:09"


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_icc_profile_must_match_the_colour_space(tmp_path, dtype):
    def read_icc(name: str) -> bytes | None:
        return read_image(tmp_path / name).meta.icc_profile

    write_image(tmp_path / "grey_rgb.png", noise(1, dtype), ImageMeta(icc_profile=SRGB_ICC))
    write_image(tmp_path / "grey_grey.png", noise(1, dtype), ImageMeta(icc_profile=GREY_ICC))
    write_image(tmp_path / "rgb_grey.png", noise(3, dtype), ImageMeta(icc_profile=GREY_ICC))
    assert (read_icc("grey_rgb.png"), read_icc("grey_grey.png"), read_icc("rgb_grey.png")) == (None, GREY_ICC, None)


@pytest.mark.parametrize("orientation", [2, 3, 4, 5, 6, 7, 8])
def test_exif_orientation_is_applied_once(tmp_path, orientation):
    pixels = noise(3, height=5, width=7)
    Image.fromarray(pixels).save(tmp_path / "in.png", exif=camera_exif(orientation))
    loaded = read_image(tmp_path / "in.png")
    with Image.open(tmp_path / "in.png") as img:
        np.testing.assert_array_equal(loaded.pixels, np.asarray(ImageOps.exif_transpose(img)))
    assert loaded.pixels.shape[:2] == ((7, 5) if orientation >= 5 else (5, 7))
    exif = parse_exif(loaded.meta.exif)
    assert exif[ORIENTATION] == 1 and exif[MAKE] == "GAN Studio test"
    again = read_image(write_image(tmp_path / "out.png", loaded.pixels, loaded.meta))
    np.testing.assert_array_equal(again.pixels, loaded.pixels)


def test_exif_orientation_in_jpeg_tiff_and_16bit_colour(tmp_path):
    import ganstudio.imaging.io as imaging_io

    pixels = gradient(16, 24)
    upright = np.rot90(pixels, -1)  # orientation 6: the camera was turned clockwise
    Image.fromarray(pixels).save(tmp_path / "x.jpg", exif=camera_exif(6), quality=95)
    Image.fromarray(pixels).save(tmp_path / "x.tif", exif=camera_exif(6))
    wide = pixels.astype(np.uint16) * 257
    (tmp_path / "x16.png").write_bytes(png_with_exif(cv2_png(wide), camera_exif(6)))
    with open(tmp_path / "x16.tif", "wb") as file:  # write_image itself would reset the orientation
        imaging_io._write_tiff16(file, wide, None, camera_exif(6))

    jpeg = read_image(tmp_path / "x.jpg")
    assert np.abs(jpeg.pixels.astype(int) - upright).mean() < 3
    tiff = read_image(tmp_path / "x.tif")
    np.testing.assert_array_equal(tiff.pixels, upright)
    sixteen = read_image(tmp_path / "x16.png")
    np.testing.assert_array_equal(sixteen.pixels, np.rot90(wide, -1))
    sixteen_tiff = read_image(tmp_path / "x16.tif")  # OpenCV would apply a TIFF's orientation itself
    np.testing.assert_array_equal(sixteen_tiff.pixels, np.rot90(wide, -1))
    for loaded in (jpeg, tiff, sixteen, sixteen_tiff):
        assert parse_exif(loaded.meta.exif)[ORIENTATION] == 1


def test_written_exif_orientation_is_reset(tmp_path):
    """Pixels are always upright, so a stale orientation in the caller's EXIF must not rotate the file again."""
    pixels = noise(3, height=5, width=7)
    target = write_image(tmp_path / "x.jpg", pixels, ImageMeta(exif=camera_exif(8)))
    with Image.open(target) as img:
        assert img.getexif()[ORIENTATION] == 1
    assert read_image(target).pixels.shape == (5, 7, 3)


# ------------------------------------------------------------------------------------------------ errors on reading


def assert_names_file(error: pytest.ExceptionInfo, name: str) -> None:
    message = str(error.value)
    assert name in message and "\n" not in message


def test_missing_empty_directory_and_not_an_image(tmp_path):
    with pytest.raises(ImageNotFoundError) as error:
        read_image(tmp_path / "gone.png")
    assert_names_file(error, "gone.png")

    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(UnreadableImageError, match="empty") as error:
        read_image(tmp_path / "empty.jpg")
    assert_names_file(error, "empty.jpg")

    (tmp_path / "folder.png").mkdir()
    with pytest.raises(UnreadableImageError, match="folder") as error:
        read_image(tmp_path / "folder.png")
    assert_names_file(error, "folder.png")

    (tmp_path / "notes.png").write_text("not pixels at all, just some words")
    with pytest.raises(UnreadableImageError, match="not a supported image") as error:
        read_image(tmp_path / "notes.png")
    assert_names_file(error, "notes.png")

    Image.fromarray(noise(3)).save(tmp_path / "anim.gif")
    with pytest.raises(UnreadableImageError):
        read_image(tmp_path / "anim.gif")


@pytest.mark.parametrize(("suffix", "dtype"), [(".jpg", np.uint8), (".png", np.uint8), (".png", np.uint16),
                                               (".webp", np.uint8), (".tif", np.uint16)])
def test_truncated_files(tmp_path, suffix, dtype):
    whole = write_image(tmp_path / f"whole{suffix}", noise(3, dtype, 40, 50)).read_bytes()
    (tmp_path / f"half{suffix}").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(TruncatedImageError, match="truncated") as error:
        read_image(tmp_path / f"half{suffix}")
    assert_names_file(error, f"half{suffix}")


def huge_png_header(width: int, height: int) -> bytes:
    """A PNG that declares its size but holds no pixel data: decoding it would fail, checking its size not."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_pixel_limit_is_checked_before_decoding(tmp_path):
    (tmp_path / "bomb.png").write_bytes(huge_png_header(60_000, 60_000))
    with pytest.raises(ImageTooLargeError) as error:  # not Pillow's DecompressionBombError
        read_image(tmp_path / "bomb.png")
    assert_names_file(error, "bomb.png")

    pixels = noise(3)
    write_image(tmp_path / "small.png", pixels)
    assert read_image(tmp_path / "small.png", max_pixels=12 * 17).pixels.shape == (12, 17, 3)
    with pytest.raises(ImageTooLargeError):
        read_image(tmp_path / "small.png", max_pixels=12 * 17 - 1)


def test_no_limit_means_no_pillow_bomb_warning(tmp_path):
    (tmp_path / "big.png").write_bytes(huge_png_header(10_000, 10_000))  # over Pillow's own default limit
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UnreadableImageError, match="damaged"):  # got as far as decoding
            read_image(tmp_path / "big.png", max_pixels=None)


# ------------------------------------------------------------------------------------------------ writing


def test_format_from_suffix_or_argument(tmp_path):
    assert format_for_path("a/B.JPG") == "JPEG" and format_for_path("x.tif") == "TIFF"
    with pytest.raises(ImageError, match="opened but not saved"):
        format_for_path("scan.bmp")
    with pytest.raises(ImageError, match="no extension"):
        format_for_path("noext")
    with pytest.raises(ImageError, match=r"\.gif"):
        write_image(tmp_path / "x.gif", noise(3))
    target = write_image(tmp_path / "x.out", noise(3), format="png")
    assert read_image(target).meta.format == "PNG"
    with pytest.raises(ImageError, match="format"):
        write_image(tmp_path / "y.png", noise(3), format="gif")
    assert os.listdir(tmp_path) == ["x.out"]


def test_refuses_to_overwrite_unless_asked(tmp_path):
    target = write_image(tmp_path / "x.png", noise(3, seed=1))
    before = target.read_bytes()
    with pytest.raises(OutputExistsError, match="exists") as error:
        write_image(target, noise(3, seed=2))
    assert_names_file(error, "x.png")
    assert target.read_bytes() == before

    write_image(target, noise(3, seed=2), overwrite=True)
    np.testing.assert_array_equal(read_image(target).pixels, noise(3, seed=2))
    assert os.listdir(tmp_path) == ["x.png"]


@pytest.mark.parametrize("failure", [OSError("No space left on device"), RuntimeError("encoder bug")])
@pytest.mark.parametrize("existing", [False, True])
def test_failed_write_leaves_no_trace(tmp_path, monkeypatch, failure, existing):
    target = tmp_path / "x.jpg"
    if existing:
        target.write_bytes(b"the original")

    def failing_save(self, fp, format=None, **params):
        fp.write(b"half an image")
        raise failure

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(ImageError if isinstance(failure, OSError) else RuntimeError):
        write_image(target, noise(3), overwrite=True)
    assert os.listdir(tmp_path) == (["x.jpg"] if existing else [])
    if existing:
        assert target.read_bytes() == b"the original"


def test_failed_16bit_write_leaves_no_trace(tmp_path, monkeypatch):
    import ganstudio.imaging.io as imaging_io

    def failing_write(file, pixels, icc, exif):
        file.write(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(imaging_io, "_write_png16", failing_write)
    with pytest.raises(ImageError, match="x.png"):
        write_image(tmp_path / "x.png", noise(3, np.uint16))
    assert os.listdir(tmp_path) == []


def test_rejects_arrays_outside_the_convention(tmp_path):
    for bad in (np.zeros((4, 4), np.uint8), np.zeros((4, 4, 5), np.uint8), np.zeros((4, 4, 3), np.float32)):
        with pytest.raises(ValueError):
            write_image(tmp_path / "x.png", bad)
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------------------------------ colour helpers


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_float_round_trip(dtype):
    pixels = noise(3, dtype)
    as_float = to_float(pixels)
    assert as_float.dtype == np.float32 and 0.0 <= as_float.min() and as_float.max() <= 1.0
    np.testing.assert_array_equal(from_float(as_float, dtype), pixels)


def test_from_float_clips_rounds_and_drops_nan():
    values = np.array([-0.5, 0.0, 0.4 / 255, 0.6 / 255, 1.0, 7.0, np.nan], np.float32)
    np.testing.assert_array_equal(from_float(values, np.uint8), [0, 0, 0, 1, 255, 255, 0])
    assert from_float(np.float32([[[1.0]]]), np.uint16).item() == 65535


@pytest.mark.parametrize("channels", [2, 4])
def test_split_and_merge_alpha(channels):
    pixels = noise(channels, np.uint16)
    colour, alpha = split_alpha(pixels)
    assert colour.shape == (12, 17, channels - 1) and alpha.shape == (12, 17, 1)
    assert colour.flags.c_contiguous and alpha.flags.c_contiguous
    np.testing.assert_array_equal(merge_alpha(colour, alpha), pixels)
    with pytest.raises(ValueError):
        merge_alpha(colour, alpha.astype(np.uint8))


def test_split_alpha_without_alpha():
    grey = noise(1)
    colour, alpha = split_alpha(grey)
    assert colour is grey and alpha is None and merge_alpha(grey, None) is grey


def test_rgb_conversions():
    grey = noise(1)
    np.testing.assert_array_equal(to_rgb(grey), np.repeat(grey, 3, axis=2))
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]], np.uint8)
    np.testing.assert_array_equal(from_rgb(rgb, 1)[..., 0], [[76, 150, 29, 255]])  # BT.601: .299 .587 .114
    assert from_rgb(rgb, 3) is rgb
    np.testing.assert_allclose(from_rgb(to_float(rgb), 1)[0, :, 0], [0.299, 0.587, 0.114, 1.0], rtol=1e-6)


def test_rgb_to_y_matches_matlab():
    rgb = np.array([[[0, 0, 0], [1, 1, 1], [1, 0, 0], [0.5, 0.5, 0.5]]], np.float64)
    expected = np.array([16, 235, 16 + 65.481, 16 + 219 / 2]) / 255
    np.testing.assert_allclose(rgb_to_y(rgb)[0], expected, rtol=1e-12)
    with pytest.raises(TypeError):
        rgb_to_y(noise(3))


@pytest.mark.parametrize("method", ["nearest", "bilinear", "bicubic", "lanczos", "area"])
def test_resize_keeps_dtype_and_single_channel(method):
    grey = noise(1, np.uint16)
    out = resize(grey, (34, 6), method)
    assert out.shape == (6, 34, 1) and out.dtype == np.uint16


def test_resize_details():
    pixels = noise(4)
    np.testing.assert_array_equal(resize(pixels, (34, 24), "nearest"), pixels.repeat(2, axis=0).repeat(2, axis=1))
    step = np.zeros((8, 8, 3), np.float32)
    step[:, 4:] = 1.0
    up = resize(step, (32, 32), "lanczos")  # overshoots at the edge without clipping
    assert up.dtype == np.float32 and up.min() == 0.0 and up.max() == 1.0
    with pytest.raises(ValueError, match="nearest"):
        resize(pixels, (4, 4), "sinc")


def test_composite_over():
    rgba = np.array([[[1.0, 0.0, 0.0, 0.25], [0.2, 0.4, 0.6, 1.0]]], np.float32)
    np.testing.assert_allclose(composite_over(rgba)[0], [[1.0, 0.75, 0.75], [0.2, 0.4, 0.6]])
    np.testing.assert_allclose(composite_over(rgba, (0.0, 0.0, 0.0))[0, 0], [0.25, 0.0, 0.0])
    grey = np.array([[[0.0, 0.5]]], np.float32)
    np.testing.assert_allclose(composite_over(grey), [[[0.5]]])
