"""Reading and writing image files as H x W x C numpy arrays, keeping ICC profile and EXIF.

Pillow decodes and encodes almost everything. Two gaps are filled here: Pillow reduces 16-bit colour PNG and
TIFF to 8 bits on reading (OpenCV decodes those) and cannot write them at all (small PNG and TIFF writers below).
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np
from PIL import ExifTags, Image, ImageCms, TiffImagePlugin, TiffTags, UnidentifiedImageError

from ..atomic import atomic_output
from .color import composite_over, from_float, merge_alpha, split_alpha, to_float, to_rgb
from .errors import (
    ImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    OutputExistsError,
    TruncatedImageError,
    UnreadableImageError,
)

DEFAULT_MAX_PIXELS = 256_000_000

READ_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"})
SAVE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}

# read_image checks every image against its own max_pixels before decoding; Pillow's global limit would fire
# first (a warning, then an error) with a limit the caller did not choose.
Image.MAX_IMAGE_PIXELS = None

_PIL_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP")
_FORMAT_NAMES = "PNG, JPEG, WebP, TIFF or BMP"
_EXIF_HEADER = b"Exif\x00\x00"
_ORIENTATION = ExifTags.Base.Orientation
# Descriptive IFD0 tags worth carrying from a TIFF's own directory into EXIF (the rest describe its pixels).
_TIFF_EXIF_TAGS = (270, 271, 272, 305, 306, 315, 33432)
_MAX_SIDE = {"JPEG": 65_500, "WEBP": 16_383}
_MAX_JPEG_EXIF = 65_533
# Classic TIFF addresses at most 4 GiB.
_MAX_TIFF_BYTES = 2**32 - 2**20
_BAND_BYTES = 1 << 24

# numpy equivalents of PIL.ImageOps.exif_transpose, by EXIF orientation.
_ORIENT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}

# Channel order that turns OpenCV's BGR(A) into RGB(A), or into grey(+alpha) for a grey source, by channel count.
_FROM_OPENCV = {
    False: {1: [0], 2: [0, 1], 3: [2, 1, 0], 4: [2, 1, 0, 3]},
    True: {1: [0], 2: [0, 1], 3: [0], 4: [0, 3]},
}

@dataclass
class ImageMeta:
    icc_profile: bytes | None = None
    exif: bytes | None = None
    format: str | None = None
    source: Path | None = None


@dataclass
class LoadedImage:
    pixels: np.ndarray
    meta: ImageMeta


# ---------------------------------------------------------------------------------------------------- reading


def read_image(path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Read PNG, JPEG, WebP, TIFF or BMP as upright H x W x C uint8/uint16 pixels plus metadata.

    The EXIF orientation is applied and reset to 1 in ``meta.exif``; CMYK becomes RGB (through its ICC profile
    when it has one, and ``meta.icc_profile`` is then sRGB); palette becomes RGB(A); 1-bit becomes 0/255 grey.
    ``max_pixels=None`` reads any size.
    """
    path = Path(path)
    if path.is_dir():
        raise UnreadableImageError(f"{path.name}: is a folder, not an image file", path)
    try:
        file = open(path, "rb")
    except FileNotFoundError:
        raise ImageNotFoundError(f"{path.name}: file not found ({path})", path) from None
    except OSError as error:
        raise UnreadableImageError(f"{path.name}: cannot open the file ({error.strerror or error})", path) from None
    with file:
        size = os.fstat(file.fileno()).st_size
        if size == 0:
            raise UnreadableImageError(f"{path.name}: the file is empty (0 bytes)", path)
        head = file.read(32)
        file.seek(0)
        try:
            with Image.open(file, formats=_PIL_FORMATS) as img:
                width, height = img.size
                if max_pixels is not None and width * height > max_pixels:
                    raise ImageTooLargeError(
                        f"{path.name}: the image is too large ({width} x {height} = {width * height:,} pixels; "
                        f"the limit is {max_pixels:,})",
                        path,
                    )
                return _decode(img, file, head, path)
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, struct.error) as error:
            raise _decode_error(path, file, head, size, error) from error


def _decode(img: Image.Image, file: IO[bytes], head: bytes, path: Path) -> LoadedImage:
    icc = img.info.get("icc_profile") or None
    grey = _opencv_source(img, head)
    if grey is None:
        pixels, icc = _pillow_pixels(img, icc, path)
        exif = _safe_exif(img.getexif)
    else:
        file.seek(0)
        data = bytearray(file.read())
        if img.format == "TIFF":
            _reset_tiff_orientation(data)
        pixels = _opencv_pixels(data, grey)
        if pixels is None:
            img.load()  # OpenCV gives no reason; Pillow's error, if any, tells truncated from damaged
            raise OSError("OpenCV cannot decode the 16-bit data")
        # Pillow reports a TIFF's size already turned by its orientation; OpenCV gives it as stored.
        if pixels.dtype != np.uint16 or sorted(pixels.shape[:2]) != sorted(img.size):
            raise UnreadableImageError(f"{path.name}: unsupported sample format", path)
        # PNG's getexif() would decode the whole image again with Pillow just to look for EXIF after IDAT.
        exif = _safe_exif(lambda: Image.Image.getexif(img))
    orient = _ORIENT.get(exif.get(_ORIENTATION, 1))
    if orient is not None:
        pixels = np.ascontiguousarray(orient(pixels))
    fmt = "JPEG" if img.format == "MPO" else img.format
    meta = ImageMeta(icc_profile=icc, exif=_kept_exif(img, exif), format=fmt, source=path)
    return LoadedImage(pixels, meta)


def _opencv_source(img: Image.Image, head: bytes) -> bool | None:
    """None when Pillow decodes the image faithfully; else whether the 16-bit source OpenCV must decode is grey."""
    if img.format == "PNG" and head[24] == 16:  # IHDR bit depth
        return head[25] in (0, 4)  # colour types grey and grey+alpha
    if img.format == "TIFF":
        tags = img.tag_v2
        photometric = tags.get(TiffImagePlugin.PHOTOMETRIC_INTERPRETATION)
        bits = tags.get(TiffImagePlugin.BITSPERSAMPLE, (1,))
        samples = tags.get(TiffImagePlugin.SAMPLESPERPIXEL, 1)
        if 16 in bits and samples > 1 and photometric in (1, 2):
            return photometric == 1
    return None


def _reset_tiff_orientation(data: bytearray) -> None:
    """Set the first directory's orientation to 1: OpenCV applies it to TIFF (not PNG), and we orient ourselves."""
    order = "<" if data[:2] == b"II" else ">"
    big = struct.unpack_from(order + "H", data, 2)[0] == 43  # BigTIFF: 8-byte offsets and counts
    (offset,) = struct.unpack_from(order + ("Q" if big else "I"), data, 8 if big else 4)
    (count,) = struct.unpack_from(order + ("Q" if big else "H"), data, offset)
    first, size = offset + (8 if big else 2), (20 if big else 12)
    for entry in range(first, first + size * count, size):
        tag, kind = struct.unpack_from(order + "HH", data, entry)
        if tag == _ORIENTATION and kind == 3:  # a SHORT, stored inside the entry
            struct.pack_into(order + "H", data, entry + (12 if big else 8), 1)


def _opencv_pixels(data: bytes | bytearray, grey: bool) -> np.ndarray | None:
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        return None
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    return np.ascontiguousarray(pixels[..., _FROM_OPENCV[grey][pixels.shape[2]]])


def _pillow_pixels(img: Image.Image, icc: bytes | None, path: Path) -> tuple[np.ndarray, bytes | None]:
    mode = img.mode
    if mode == "CMYK":
        img, icc = _cmyk_to_rgb(img, icc)
    elif mode in ("P", "PA"):
        transparent = mode == "PA" or "transparency" in img.info or img.palette.mode.endswith("A")
        img = img.convert("RGBA" if transparent else "RGB")
    elif mode in ("L", "RGB") and "transparency" in img.info:
        img = img.convert(mode + "A")
    elif mode in ("1", "La", "RGBa", "RGBX", "YCbCr"):
        img = img.convert({"1": "L", "La": "LA", "RGBa": "RGBA"}.get(mode, "RGB"))
    elif mode not in ("L", "LA", "RGB", "RGBA", "I;16", "I;16L", "I;16B", "I;16N"):
        raise UnreadableImageError(f"{path.name}: unsupported pixel format ({mode})", path)
    pixels = np.asarray(img)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    # 16-bit modes may come out big-endian.
    return np.ascontiguousarray(pixels, dtype=pixels.dtype.newbyteorder("=")), icc


def _cmyk_to_rgb(img: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    if icc:
        srgb = ImageCms.createProfile("sRGB")
        try:
            rgb = ImageCms.profileToProfile(img, ImageCms.ImageCmsProfile(io.BytesIO(icc)), srgb, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError):
            pass  # a broken profile: the plain conversion below is better than refusing the photo
        else:
            return rgb, ImageCms.ImageCmsProfile(srgb).tobytes()
    # A CMYK profile cannot describe RGB pixels.
    return img.convert("RGB"), None


def _safe_exif(get: Callable[[], Image.Exif]) -> Image.Exif:
    try:
        return get()
    except Exception:  # Pillow's EXIF parser raises many kinds; a broken EXIF block must not lose the photo
        return Image.Exif()


def _kept_exif(img: Image.Image, exif: Image.Exif) -> bytes | None:
    if "exif" in img.info or "Raw profile type exif" in img.info:
        return _upright_exif(exif, img.info.get("exif"))
    if hasattr(img, "tag_v2"):  # TIFF: EXIF lives in the file's own first directory
        kept = Image.Exif()
        for tag in _TIFF_EXIF_TAGS:
            if tag in exif:
                kept[tag] = exif[tag]
        for tag in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo):
            try:
                ifd = exif.get_ifd(tag)
            except Exception:  # as in _safe_exif
                continue
            if ifd:
                kept[tag] = _without_interop(ifd)
        if len(kept):
            kept[_ORIENTATION] = 1  # Pillow's TIFF loader has already applied and removed it
        return _upright_exif(kept, None)
    return None  # an orientation from XMP alone is no EXIF to keep


def _upright_exif(exif: Image.Exif, raw: bytes | None) -> bytes | None:
    """EXIF bytes (with the "Exif\\0\\0" header) whose orientation is 1; ``raw`` is reused when already upright."""
    if not len(exif):
        return None
    if raw is not None and exif.get(_ORIENTATION, 1) == 1:
        return raw if raw.startswith(_EXIF_HEADER) else _EXIF_HEADER + raw
    if _ORIENTATION in exif:
        exif[_ORIENTATION] = 1
    try:
        return exif.tobytes()
    except Exception:  # as in _safe_exif: drop EXIF Pillow cannot write back rather than fail
        return None


def _without_interop(ifd: dict[int, Any]) -> dict[int, Any]:
    # The Interop pointer is an offset into the old file; copied into a new directory it would dangle.
    return {tag: value for tag, value in ifd.items() if tag != ExifTags.IFD.Interop}


def _decode_error(path: Path, file: IO[bytes], head: bytes, size: int, error: Exception) -> ImageError:
    kind = _signature(head)
    if "truncated" in str(error).lower() or (kind is not None and _shorter_than_declared(file, head, size, kind)):
        return TruncatedImageError(f"{path.name}: the file is truncated (incomplete download or copy?)", path)
    if kind is None:
        return UnreadableImageError(f"{path.name}: not a supported image file ({_FORMAT_NAMES})", path)
    if isinstance(error, UnidentifiedImageError):
        return UnreadableImageError(
            f"{path.name}: looks like a {kind} file but cannot be read (damaged, or a variant we do not support)",
            path,
        )
    reason = (str(error).splitlines() or [type(error).__name__])[0]
    return UnreadableImageError(f"{path.name}: the {kind} data is damaged ({reason})", path)


def _signature(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[:2] == b"BM":
        return "BMP"
    return None


def _shorter_than_declared(file: IO[bytes], head: bytes, size: int, kind: str) -> bool:
    """Whether the file ends before its own structure says it should."""
    if kind == "WebP":
        return int.from_bytes(head[4:8], "little") + 8 > size
    if kind == "BMP":
        return int.from_bytes(head[2:6], "little") > size
    if kind == "TIFF":  # the first directory must fit: entry count, 12-byte entries, next-directory offset
        order = "little" if head[:2] == b"II" else "big"
        offset = int.from_bytes(head[4:8], order)
        file.seek(offset)
        count = file.read(2)
        return len(head) < 8 or len(count) < 2 or offset + 6 + 12 * int.from_bytes(count, order) > size
    if kind == "JPEG":
        file.seek(size - 2)
        return file.read(2) != b"\xff\xd9"  # no end-of-image marker
    position = 8  # PNG: walk the chunks to IEND
    while position + 12 <= size:
        file.seek(position)
        length, chunk = struct.unpack(">I4s", file.read(8))
        position += 12 + length
        if chunk == b"IEND":
            return position > size
    return True


# ---------------------------------------------------------------------------------------------------- writing


def format_for_path(path: str | os.PathLike[str]) -> str:
    """Pillow's format name for saving to ``path``, from its suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in SAVE_FORMATS:
        return SAVE_FORMATS[suffix]
    choices = ".png, .jpg, .webp or .tif"
    if not suffix:
        raise ImageError(f"{path.name}: the file name has no extension; add {choices}", path)
    if suffix in READ_SUFFIXES:
        raise ImageError(f"{path.name}: {suffix} files can be opened but not saved; use {choices}", path)
    raise ImageError(f"{path.name}: cannot save {suffix} files; use {choices}", path)


def write_image(
    path: str | os.PathLike[str],
    pixels: np.ndarray,
    meta: ImageMeta | None = None,
    *,
    quality: int = 95,
    format: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write H x W x C uint8/uint16 pixels atomically (temporary file in the same folder, then rename).

    ``format`` is a Pillow format name or a suffix ("PNG", "jpg"); by default the path's suffix decides.
    PNG and TIFF keep 16 bits; JPEG and WebP get 8 (v / 257, rounded); JPEG has no alpha, so transparency is
    flattened onto white; WebP has no grey, so grey is written as RGB, and so is 16-bit grey+alpha TIFF (which
    common readers, Pillow and OpenCV included, do not read). ``quality`` applies to JPEG and WebP,
    and WebP at quality 100 is lossless. ICC profile and EXIF from ``meta`` are kept (EXIF with orientation 1,
    since pixels are always upright); a profile for another colour space than the written pixels is dropped.
    """
    path = Path(path)
    fmt = format_for_path(path) if format is None else _format_named(format, path)
    _check_pixels(pixels)
    _check_fits(path, pixels, fmt)
    if not overwrite and path.exists():
        raise _exists_error(path)
    meta = meta or ImageMeta()
    try:
        with atomic_output(path) as temp:
            with open(temp, "wb") as file:
                _encode(file, pixels, fmt, meta, quality)
            if not overwrite and path.exists():  # appeared while we were encoding
                raise _exists_error(path)
    except (OSError, ValueError) as error:  # encoder, disk and file-system failures
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise ImageError(f"{path.name}: could not save the image ({reason})", path) from error
    return path


def _format_named(name: str, path: Path) -> str:
    fmt = SAVE_FORMATS.get("." + name.lower().lstrip("."))
    if fmt is None:
        raise ImageError(f"{path.name}: cannot save in format {name!r}; use PNG, JPEG, WebP or TIFF", path)
    return fmt


def _exists_error(path: Path) -> OutputExistsError:
    return OutputExistsError(f"{path.name}: the file already exists and will not be overwritten", path)


def _check_pixels(pixels: np.ndarray) -> None:
    if (
        not isinstance(pixels, np.ndarray)
        or pixels.ndim != 3
        or pixels.shape[2] not in (1, 2, 3, 4)
        or pixels.dtype not in (np.uint8, np.uint16)
        or pixels.size == 0
    ):
        described = f"{pixels.shape} {pixels.dtype}" if isinstance(pixels, np.ndarray) else type(pixels).__name__
        raise ValueError(f"expected non-empty H x W x C uint8 or uint16 pixels with C in 1..4, got {described}")


def _check_fits(path: Path, pixels: np.ndarray, fmt: str) -> None:
    height, width = pixels.shape[:2]
    limit = _MAX_SIDE.get(fmt)
    if limit is not None and max(width, height) > limit:
        raise ImageError(
            f"{path.name}: {width} x {height} is too large for {fmt} (at most {limit} pixels a side); "
            "save as PNG or TIFF",
            path,
        )
    if fmt == "TIFF" and pixels.nbytes > _MAX_TIFF_BYTES:
        raise ImageError(f"{path.name}: {width} x {height} is too large for a TIFF file (4 GiB); save as PNG", path)


def _encode(file: IO[bytes], pixels: np.ndarray, fmt: str, meta: ImageMeta, quality: int) -> None:
    exif = _exif_for_writing(meta.exif)
    channels = pixels.shape[2]
    if fmt in ("JPEG", "WEBP"):
        if fmt == "JPEG" and channels in (2, 4):
            pixels = from_float(composite_over(to_float(pixels)), np.uint8)
        elif pixels.dtype == np.uint16:
            pixels = from_float(to_float(pixels), np.uint8)
    # WebP has no grey, and neither Pillow nor OpenCV reads 16-bit grey+alpha TIFF back.
    if (fmt == "WEBP" and channels < 3) or (fmt == "TIFF" and channels == 2 and pixels.dtype == np.uint16):
        colour, alpha = split_alpha(pixels)
        pixels = merge_alpha(to_rgb(colour), alpha)
    icc = _icc_for(meta.icc_profile, pixels.shape[2])
    if pixels.dtype == np.uint16:
        (_write_png16 if fmt == "PNG" else _write_tiff16)(file, pixels, icc, exif)
        return
    params: dict[str, Any] = {}
    if icc:
        params["icc_profile"] = icc
    if exif and fmt == "TIFF":
        params["tiffinfo"] = _tiff_tags(exif)
    # A JPEG marker segment holds under 64 KiB; EXIF that big (a huge maker note) is dropped, not the photo.
    elif exif and not (fmt == "JPEG" and len(exif) > _MAX_JPEG_EXIF):
        params["exif"] = exif
    if fmt in ("JPEG", "WEBP"):
        params["quality"] = quality
    if fmt == "WEBP":
        # exact: keep the colour under fully transparent pixels, as the tools process alpha separately.
        params.update(lossless=quality >= 100, exact=True)
    Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels).save(file, format=fmt, **params)


def _icc_for(icc: bytes | None, channels: int) -> bytes | None:
    # The profile header names its colour space at bytes 16-20; embedding a mismatched one makes a broken file.
    wanted = b"GRAY" if channels < 3 else b"RGB "
    return icc if icc is not None and icc[16:20] == wanted else None


def _exif_for_writing(raw: bytes | None) -> bytes | None:
    if not raw:
        return None
    exif = Image.Exif()
    try:
        exif.load(raw)
    except Exception:  # as in _safe_exif: unparseable EXIF is dropped, not written blind
        return None
    return _upright_exif(exif, raw)


def _tiff_tags(exif: bytes) -> dict[int, Any]:
    """EXIF as TIFF tags: its first directory's entries, with the Exif and GPS directories nested as dicts."""
    tags = Image.Exif()
    tags.load(exif)
    return {tag: _without_interop(tags.get_ifd(tag)) if tag in TiffTags.TAGS_V2_GROUPS else tags[tag] for tag in tags}


def _png_chunk(file: IO[bytes], kind: bytes, data: bytes | memoryview) -> None:
    file.write(struct.pack(">I", len(data)) + kind)
    file.write(data)
    file.write(struct.pack(">I", zlib.crc32(data, zlib.crc32(kind))))


def _write_png16(file: IO[bytes], pixels: np.ndarray, icc: bytes | None, exif: bytes | None) -> None:
    height, width, channels = pixels.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    file.write(b"\x89PNG\r\n\x1a\n")
    _png_chunk(file, b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0))
    if icc:
        _png_chunk(file, b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc))
    if exif:
        _png_chunk(file, b"eXIf", exif.removeprefix(_EXIF_HEADER))
    # Run-length matching, as OpenCV's PNG writer uses: on filtered 16-bit data it compresses about as well as
    # the default strategy, several times faster.
    compressor = zlib.compressobj(6, zlib.DEFLATED, 15, 8, zlib.Z_RLE)
    row_bytes = width * channels * 2
    rows_per_band = max(1, _BAND_BYTES // row_bytes)
    previous = np.zeros(row_bytes, np.uint8)
    for top in range(0, height, rows_per_band):
        band = np.ascontiguousarray(pixels[top : top + rows_per_band], dtype=">u2").view(np.uint8)
        band = band.reshape(-1, row_bytes)
        # Filter type 2 ("Up", each byte minus the one above, mod 256): cheap and a good predictor for photos.
        filtered = np.empty((band.shape[0], row_bytes + 1), np.uint8)
        filtered[:, 0] = 2
        np.subtract(band[0], previous, out=filtered[0, 1:])
        np.subtract(band[1:], band[:-1], out=filtered[1:, 1:])
        previous = band[-1]
        data = compressor.compress(filtered)
        if data:
            _png_chunk(file, b"IDAT", data)
    _png_chunk(file, b"IDAT", compressor.flush())
    _png_chunk(file, b"IEND", b"")


def _write_tiff16(file: IO[bytes], pixels: np.ndarray, icc: bytes | None, exif: bytes | None) -> None:
    """Uncompressed little-endian baseline TIFF (grey, RGB or RGBA) in one strip, like Pillow's default."""
    height, width, channels = pixels.shape
    own = {
        TiffImagePlugin.IMAGEWIDTH: width,
        TiffImagePlugin.IMAGELENGTH: height,
        TiffImagePlugin.BITSPERSAMPLE: (16,) * channels,
        TiffImagePlugin.COMPRESSION: 1,
        TiffImagePlugin.PHOTOMETRIC_INTERPRETATION: 1 if channels == 1 else 2,
        TiffImagePlugin.STRIPOFFSETS: 0,  # Pillow's directory writer points it past the directory
        TiffImagePlugin.SAMPLESPERPIXEL: channels,
        TiffImagePlugin.ROWSPERSTRIP: height,
        TiffImagePlugin.STRIPBYTECOUNTS: pixels.nbytes,
        TiffImagePlugin.PLANAR_CONFIGURATION: 1,
    }
    if channels == 4:
        own[TiffImagePlugin.EXTRASAMPLES] = 2  # unassociated alpha
    if icc:
        own[TiffImagePlugin.ICCPROFILE] = icc
    ifd = TiffImagePlugin.ImageFileDirectory_v2(prefix=TiffImagePlugin.II)
    for tag, value in (_tiff_tags(exif) if exif else {}).items():
        if tag not in own:
            ifd[tag] = value
    for tag, value in own.items():
        ifd[tag] = value
    ifd.tagtype[TiffImagePlugin.STRIPOFFSETS] = ifd.tagtype[TiffImagePlugin.STRIPBYTECOUNTS] = TiffTags.LONG
    ifd.save(file)
    rows_per_band = max(1, _BAND_BYTES // (width * channels * 2))
    for top in range(0, height, rows_per_band):
        file.write(np.ascontiguousarray(pixels[top : top + rows_per_band], dtype="<u2").data)
