"""Pixel helpers on H x W x C arrays (C = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA; RGB order)."""

from __future__ import annotations

import cv2
import numpy as np

_PEAKS = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}

# ITU-R BT.601 luma weights for R, G, B.
_LUMA = np.array([0.299, 0.587, 0.114])

_RESIZE_METHODS = {
    # INTER_NEAREST samples off the pixel centres (a known OpenCV quirk); the exact variant matches Pillow.
    "nearest": cv2.INTER_NEAREST_EXACT,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
    "area": cv2.INTER_AREA,
}


def _check_image(pixels: np.ndarray, channels: tuple[int, ...] = (1, 2, 3, 4)) -> None:
    if pixels.ndim != 3 or pixels.shape[2] not in channels:
        raise ValueError(f"expected an H x W x C array with C in {channels}, got shape {pixels.shape}")


def to_float(pixels: np.ndarray) -> np.ndarray:
    """float32 in [0, 1]: uint8 / 255, uint16 / 65535; float input is only cast to float32."""
    if pixels.dtype.kind == "f":
        return pixels.astype(np.float32, copy=False)
    try:
        peak = _PEAKS[pixels.dtype]
    except KeyError:
        raise TypeError(f"expected uint8, uint16 or float pixels, got {pixels.dtype}") from None
    return pixels.astype(np.float32) / np.float32(peak)


def from_float(arr: np.ndarray, dtype: np.dtype | type) -> np.ndarray:
    """Clip to [0, 1] (NaN becomes 0), scale to ``dtype`` (uint8 or uint16) and round."""
    dtype = np.dtype(dtype)
    try:
        peak = _PEAKS[dtype]
    except KeyError:
        raise TypeError(f"from_float makes uint8 or uint16, not {dtype}") from None
    # nan_to_num copies, so the in-place steps below never touch the caller's array.
    out = np.nan_to_num(np.asarray(arr, dtype=np.float32), nan=0.0)
    np.clip(out, 0.0, 1.0, out=out)
    out *= np.float32(peak)
    np.rint(out, out=out)
    return out.astype(dtype)


def split_alpha(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(colour H x W x 1 or 3, alpha H x W x 1 or None); any dtype."""
    _check_image(pixels)
    if pixels.shape[2] in (1, 3):
        return pixels, None
    return np.ascontiguousarray(pixels[..., :-1]), np.ascontiguousarray(pixels[..., -1:])


def merge_alpha(colour: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Re-attach an alpha channel taken off with :func:`split_alpha` (None gives ``colour`` back)."""
    _check_image(colour, (1, 3))
    if alpha is None:
        return colour
    if alpha.shape != colour.shape[:2] + (1,) or alpha.dtype != colour.dtype:
        raise ValueError(
            f"alpha {alpha.shape} {alpha.dtype} does not match colour {colour.shape} {colour.dtype}"
        )
    return np.concatenate([colour, alpha], axis=2)


def to_rgb(colour: np.ndarray) -> np.ndarray:
    """H x W x 3: grey is replicated, RGB is returned as is."""
    _check_image(colour, (1, 3))
    return np.repeat(colour, 3, axis=2) if colour.shape[2] == 1 else colour


def from_rgb(rgb: np.ndarray, channels: int) -> np.ndarray:
    """Back to ``channels`` (1: BT.601 luma, 3: unchanged), keeping the dtype."""
    _check_image(rgb, (3,))
    if channels == 3:
        return rgb
    if channels != 1:
        raise ValueError(f"channels must be 1 or 3, not {channels}")
    if rgb.dtype.kind == "f":
        return (rgb @ _LUMA.astype(rgb.dtype))[..., None]
    luma = rgb.astype(np.float32) @ _LUMA.astype(np.float32)
    return np.rint(luma).astype(rgb.dtype)[..., None]


def rgb_to_y(rgb_float: np.ndarray) -> np.ndarray:
    """H x W luma as MATLAB's ``rgb2ycbcr`` for [0, 1] input: in [16/255, 235/255] (SR benchmark PSNR)."""
    _check_image(rgb_float, (3,))
    if rgb_float.dtype.kind != "f":
        raise TypeError(f"rgb_to_y expects floats in [0, 1] (see to_float), got {rgb_float.dtype}")
    weights = np.array([65.481, 128.553, 24.966], dtype=rgb_float.dtype)
    return (rgb_float @ weights + 16.0) / 255.0


def resize(pixels: np.ndarray, size: tuple[int, int], method: str = "bicubic") -> np.ndarray:
    """Resize to ``size`` = (width, height), keeping dtype and channel count.

    Integer results saturate to the dtype's range; float input is taken as [0, 1] and clipped to it, since
    bicubic and Lanczos overshoot near edges.
    """
    _check_image(pixels)
    try:
        interpolation = _RESIZE_METHODS[method]
    except KeyError:
        raise ValueError(f"unknown resize method {method!r}; use one of {', '.join(_RESIZE_METHODS)}") from None
    width, height = size
    if width < 1 or height < 1:
        raise ValueError(f"cannot resize to {width} x {height}")
    out = cv2.resize(np.ascontiguousarray(pixels), (int(width), int(height)), interpolation=interpolation)
    out = out.reshape(height, width, pixels.shape[2])  # OpenCV drops a trailing channel axis of 1
    if out.dtype.kind == "f":
        np.clip(out, 0.0, 1.0, out=out)
    return out


def composite_over(rgba_float: np.ndarray, background: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """Flatten float colour+alpha (C = 4, or 2 for grey) onto an opaque background colour in [0, 1].

    Grey+alpha is composited over the BT.601 luma of ``background`` and stays grey.
    """
    _check_image(rgba_float, (2, 4))
    colour, alpha = rgba_float[..., :-1], rgba_float[..., -1:]
    bg = np.asarray(background, dtype=rgba_float.dtype)
    if colour.shape[2] == 1:
        bg = (bg @ _LUMA.astype(bg.dtype)).reshape(1)
    return colour * alpha + bg * (1 - alpha)


# sRGB's primaries and D65 white (IEC 61966-2-1), for CIE L*a*b*. Written out rather than OpenCV's float Lab, whose
# lookup tables are off by up to 0.7 L* and 1.3 8-bit levels on a round trip: too coarse to keep a lightness exactly.
_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
_WHITE = _RGB_TO_XYZ.sum(axis=1)
_RGB_TO_XYZ_WHITE = (_RGB_TO_XYZ / _WHITE[:, None]).T.astype(np.float32)  # rows @ this = XYZ / white
_XYZ_WHITE_TO_RGB = np.linalg.inv(_RGB_TO_XYZ / _WHITE[:, None]).T.astype(np.float32)
_DELTA = 6 / 29


def _decode_srgb(encoded: np.ndarray) -> np.ndarray:
    return np.where(encoded <= 0.04045, encoded / 12.92, ((np.maximum(encoded, 0.04045) + 0.055) / 1.055) ** 2.4)


def _encode_srgb(linear: np.ndarray) -> np.ndarray:
    return np.where(linear <= 0.0031308, linear * 12.92, 1.055 * np.maximum(linear, 0.0031308) ** (1 / 2.4) - 0.055)


def rgb_to_lab(rgb_float: np.ndarray) -> np.ndarray:
    """H x W x 3 RGB floats in [0, 1] (sRGB) -> CIE L*a*b* (float32: L* 0-100, a* and b* about -110..110)."""
    linear = _decode_srgb(np.asarray(rgb_float, np.float32))
    xyz = linear @ _RGB_TO_XYZ_WHITE
    f = np.where(xyz > _DELTA**3, np.cbrt(np.maximum(xyz, _DELTA**3)), xyz / (3 * _DELTA**2) + 4 / 29)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    return np.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], axis=-1).astype(np.float32)


def _lab_to_linear(lab: np.ndarray) -> np.ndarray:
    """CIE L*a*b* -> linear sRGB, unclipped: a component outside [0, 1] is a colour sRGB cannot show."""
    lab = np.asarray(lab, np.float32)
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], axis=-1)
    xyz = np.where(f > _DELTA, f**3, 3 * _DELTA**2 * (f - 4 / 29))
    return (xyz @ _XYZ_WHITE_TO_RGB).astype(np.float32)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (float32) -> RGB floats in [0, 1]; colours outside sRGB are clipped per channel."""
    return _encode_srgb(np.clip(_lab_to_linear(lab), 0.0, 1.0)).astype(np.float32)


def lab_to_rgb_keeping_lightness(lab: np.ndarray, steps: int = 12) -> np.ndarray:
    """CIE L*a*b* (float32) -> RGB floats in [0, 1] with every pixel's L* kept: a colour outside sRGB loses chroma
    (toward the grey of its own lightness) rather than being clipped per channel, which would change its lightness.

    The sRGB gamut's slice at one L* holds its grey and is star-shaped around it, so the largest chroma factor that
    fits is found by bisection, only for the pixels that need it.
    """
    lab = np.asarray(lab, np.float32)
    linear = _lab_to_linear(lab).reshape(-1, 3)
    outside = np.flatnonzero(~_in_gamut(linear))
    if outside.size:
        target = lab.reshape(-1, 3)[outside]
        low = np.zeros((outside.size, 1), np.float32)  # chroma factors known to fit: grey always does
        high = np.ones_like(low)
        for _ in range(steps):
            middle = (low + high) / 2
            fits = _in_gamut(_lab_to_linear(target * np.hstack([np.ones_like(middle), middle, middle])))[:, None]
            low, high = np.where(fits, middle, low), np.where(fits, high, middle)
        linear[outside] = _lab_to_linear(target * np.hstack([np.ones_like(low), low, low]))
    return _encode_srgb(np.clip(linear, 0.0, 1.0)).reshape(lab.shape).astype(np.float32)


def _in_gamut(linear: np.ndarray) -> np.ndarray:
    return ((linear >= -1e-6) & (linear <= 1 + 1e-6)).all(axis=-1)
