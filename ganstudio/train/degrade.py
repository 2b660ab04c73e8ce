"""Real-world degradations: how a clean photo becomes the soft, noisy, JPEG-blocked small picture people enlarge.

Used to make the low-resolution side of super-resolution training pairs (``--degradation real``) and the fixed
test inputs of ``benchmarks/superres_quality.py --real-world``. The random pipeline follows Real-ESRGAN's
second-order model (Wang et al. 2021, §3): blur → resize → noise → JPEG, twice, the last resize and JPEG in either
order; a share of pairs stays a plain bicubic downscale, so clean sources are still enlarged faithfully.

Each step is a plain function of an H×W×3 float32 array in [0, 1] (and, where it is random, an explicit
:class:`numpy.random.Generator`), so a pipeline is deterministic for a seed and each step can be tested alone.
No step reads a global random state: the training dataset draws one seed per crop from torch's generator, which a
checkpoint already saves, so a resumed run sees the same pairs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

#: ``resize`` methods and their OpenCV flags; "area" is the box filter cameras and browsers use to shrink.
RESIZE_METHODS = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}


def to_float(image: np.ndarray) -> np.ndarray:
    """H×W×3 uint8 → float32 in [0, 1]."""
    return image.astype(np.float32) / 255.0


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float in [0, 1] → uint8, rounded and clipped (what saving the picture does)."""
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


# ---- blur -------------------------------------------------------------------------------------------------------

def gaussian_kernel(size: int, sigma_x: float, sigma_y: float | None = None, angle: float = 0.0) -> np.ndarray:
    """A ``size``×``size`` (odd) Gaussian kernel summing to 1; ``sigma_y`` and ``angle`` (radians) make it
    anisotropic: the ellipse's axes are ``sigma_x`` along ``angle`` and ``sigma_y`` across it."""
    if size % 2 == 0 or size < 1:
        raise ValueError(f"kernel size must be odd and positive, not {size}")
    sigma_y = sigma_x if sigma_y is None else sigma_y
    if min(sigma_x, sigma_y) <= 0:
        raise ValueError("kernel sigmas must be above 0")
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    covariance = rotation @ np.diag([sigma_x**2, sigma_y**2]) @ rotation.T
    inverse = np.linalg.inv(covariance)
    radius = size // 2
    grid = np.stack(np.meshgrid(np.arange(-radius, radius + 1), np.arange(-radius, radius + 1)), axis=-1)
    exponent = -0.5 * np.einsum("...i,ij,...j->...", grid, inverse, grid)
    kernel = np.exp(exponent)
    return (kernel / kernel.sum()).astype(np.float32)


def random_kernel(rng: np.random.Generator, sigma: tuple[float, float], sizes: tuple[int, ...] = (7, 9, 11, 13, 15,
                  17, 19, 21), isotropic_share: float = 0.5) -> np.ndarray:
    """A Gaussian kernel with sigmas drawn from ``sigma``: isotropic with probability ``isotropic_share``, else an
    ellipse at a random angle (motion-like and astigmatic softness)."""
    size = int(rng.choice(sizes))
    sigma_x = float(rng.uniform(*sigma))
    if rng.random() < isotropic_share:
        return gaussian_kernel(size, sigma_x)
    sigma_y = float(rng.uniform(*sigma))
    return gaussian_kernel(size, sigma_x, sigma_y, float(rng.uniform(0, math.pi)))


def blur(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``image`` convolved with ``kernel``, edges reflected."""
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101)


# ---- resize -----------------------------------------------------------------------------------------------------

def resize(image: np.ndarray, size: tuple[int, int], method: str) -> np.ndarray:
    """``image`` resampled to ``size`` (width, height) by ``method`` (:data:`RESIZE_METHODS`), values kept in [0, 1]
    (bicubic overshoots at edges). Shrinking is antialiased, as in cameras, browsers and image editors: OpenCV's
    bilinear and bicubic are not (they sample the source, so a ×1/4 shrink aliases), so those go through Pillow's
    filters, whose support widens with the factor."""
    if method not in RESIZE_METHODS:
        raise ValueError(f"unknown resize method {method!r}: use {', '.join(RESIZE_METHODS)}")
    width, height = max(1, int(size[0])), max(1, int(size[1]))
    shrinking = width < image.shape[1] or height < image.shape[0]
    if shrinking and method != "area":
        resample = Image.Resampling.BICUBIC if method == "bicubic" else Image.Resampling.BILINEAR
        channels = [np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c])).resize((width, height), resample))
                    for c in range(image.shape[2])]
        out = np.stack(channels, axis=-1)
    else:
        out = cv2.resize(image, (width, height), interpolation=RESIZE_METHODS[method])
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def scaled_size(image: np.ndarray, factor: float) -> tuple[int, int]:
    height, width = image.shape[:2]
    return max(1, round(width * factor)), max(1, round(height * factor))


# ---- noise ------------------------------------------------------------------------------------------------------

def gaussian_noise(image: np.ndarray, sigma: float, rng: np.random.Generator, gray: bool = False) -> np.ndarray:
    """Additive Gaussian noise of ``sigma`` grey levels (of 255); ``gray`` puts the same noise in every channel
    (luminance noise), else each channel has its own (colour noise)."""
    shape = image.shape[:2] + ((1,) if gray else (image.shape[2],))
    noise = rng.standard_normal(shape)
    return np.clip(image + noise.astype(np.float32) * (sigma / 255.0), 0.0, 1.0)


def poisson_noise(image: np.ndarray, scale: float, rng: np.random.Generator, gray: bool = False) -> np.ndarray:
    """Shot noise as a sensor makes it (stronger in bright areas), ``scale`` times the noise of a 255-photon
    exposure; ``gray`` draws it from the luminance and adds it to every channel."""
    levels = 255.0
    if gray:
        luma = image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        noise = (rng.poisson(np.clip(luma, 0, 1) * levels) / levels - luma)[..., None]
    else:
        noise = rng.poisson(np.clip(image, 0, 1) * levels) / levels - image
    return np.clip(image + noise.astype(np.float32) * scale, 0.0, 1.0)


# ---- compression ------------------------------------------------------------------------------------------------

def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """``image`` saved as a JPEG of ``quality`` (1-100, 4:2:0 chroma as browsers and phones write it) and read back."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be 1-100, not {quality}")
    bgr = cv2.cvtColor(to_uint8(image), cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    return to_float(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB))


# ---- the random second-order pipeline (training) ----------------------------------------------------------------

@dataclass(frozen=True)
class RealDegradation:
    """The ranges of the random pipeline. Defaults: Real-ESRGAN's, a little milder in noise (its 1-30 grey levels
    teaches a small model to paint everything flat), plus ``clean_share`` plain bicubic pairs."""

    clean_share: float = 0.1
    blur_sigma: tuple[float, float] = (0.2, 3.0)
    resize_up: tuple[float, float] = (1.0, 1.5)
    resize_down: tuple[float, float] = (0.15, 1.0)
    #: Chances of enlarging, shrinking and keeping the size in the first-order resize.
    resize_odds: tuple[float, float, float] = (0.2, 0.7, 0.1)
    noise_sigma: tuple[float, float] = (1.0, 20.0)
    poisson_scale: tuple[float, float] = (0.05, 2.5)
    gaussian_share: float = 0.5
    gray_noise_share: float = 0.4
    jpeg_quality: tuple[int, int] = (30, 95)
    second_order_share: float = 0.8
    blur2_sigma: tuple[float, float] = (0.2, 1.5)
    blur2_share: float = 0.8
    resize2_down: tuple[float, float] = (0.3, 1.2)
    noise2_sigma: tuple[float, float] = (1.0, 15.0)
    poisson2_scale: tuple[float, float] = (0.05, 2.0)


def random_noise(image: np.ndarray, rng: np.random.Generator, cfg: RealDegradation,
                 sigma: tuple[float, float], poisson: tuple[float, float]) -> np.ndarray:
    gray = rng.random() < cfg.gray_noise_share
    if rng.random() < cfg.gaussian_share:
        return gaussian_noise(image, float(rng.uniform(*sigma)), rng, gray)
    return poisson_noise(image, float(rng.uniform(*poisson)), rng, gray)


def random_resize(image: np.ndarray, rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    return resize(image, size, str(rng.choice(list(RESIZE_METHODS))))


def degrade_real(hr: np.ndarray, scale: int, rng: np.random.Generator,
                 cfg: RealDegradation = RealDegradation()) -> np.ndarray:
    """The LR of ``hr`` (H×W×3 uint8, sides multiples of ``scale``) through the random second-order pipeline:
    uint8, exactly ``scale`` times smaller."""
    height, width = hr.shape[:2]
    if height % scale or width % scale:
        raise ValueError(f"HR size {width}×{height} is not a multiple of the scale {scale}")
    target = (width // scale, height // scale)
    image = to_float(hr)
    if rng.random() < cfg.clean_share:
        return to_uint8(resize(image, target, "bicubic" if rng.random() < 0.5 else "area"))

    image = blur(image, random_kernel(rng, cfg.blur_sigma))
    kind = rng.choice(3, p=cfg.resize_odds)
    factor = float(rng.uniform(*(cfg.resize_up if kind == 0 else cfg.resize_down))) if kind < 2 else 1.0
    image = random_resize(image, rng, scaled_size(image, factor))
    image = random_noise(image, rng, cfg, cfg.noise_sigma, cfg.poisson_scale)
    image = jpeg(image, int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))

    if rng.random() < cfg.second_order_share:
        if rng.random() < cfg.blur2_share:
            image = blur(image, random_kernel(rng, cfg.blur2_sigma))
        factor = float(rng.uniform(*cfg.resize2_down))
        image = random_resize(image, rng, (max(1, round(target[0] * factor)), max(1, round(target[1] * factor))))
        image = random_noise(image, rng, cfg, cfg.noise2_sigma, cfg.poisson2_scale)
    quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
    # A photo is shrunk and then saved, or saved and then shown smaller: both orders occur, as in Real-ESRGAN.
    if rng.random() < 0.5:
        image = jpeg(random_resize(image, rng, target), quality)
    else:
        image = random_resize(jpeg(image, quality), rng, target)
    return to_uint8(image)


# ---- fixed strengths (benchmarks) -------------------------------------------------------------------------------

#: The benchmark's strengths, each a fixed chain; only the noise is random, from the seed given. Blur sigmas are
#: in the pixels of the picture they act on (the HR for the first blur, as in Real-ESRGAN), noise in grey levels.
STRENGTHS = ("light", "medium", "heavy")
STRENGTH_TEXT = {
    "light": "bicubic ×1/s, JPEG 85",
    "medium": "Gaussian blur σ 1.0, bicubic ×1/s, noise σ 5, JPEG 60",
    "heavy": "anisotropic blur (σ 3.0 × 1.5, 30°), area ×1/2, noise σ 8, JPEG 70, blur σ 0.8, bilinear to ×1/s, "
             "shot noise ×1.0, JPEG 50",
}


def degrade_fixed(hr: np.ndarray, scale: int, strength: str, seed: int = 0) -> np.ndarray:
    """The LR of ``hr`` at one of :data:`STRENGTHS` (:data:`STRENGTH_TEXT` says what each does); uint8, exactly
    ``scale`` times smaller when the sides are multiples of it (else rounded)."""
    if strength not in STRENGTHS:
        raise ValueError(f"unknown strength {strength!r}: use {', '.join(STRENGTHS)}")
    rng = np.random.default_rng(seed)
    height, width = hr.shape[:2]
    target = (max(1, round(width / scale)), max(1, round(height / scale)))
    image = to_float(hr)
    if strength == "light":
        image = jpeg(resize(image, target, "bicubic"), 85)
    elif strength == "medium":
        image = resize(blur(image, gaussian_kernel(7, 1.0)), target, "bicubic")
        image = jpeg(gaussian_noise(image, 5.0, rng), 60)
    else:
        image = blur(image, gaussian_kernel(19, 3.0, 1.5, math.radians(30)))
        image = jpeg(gaussian_noise(resize(image, scaled_size(image, 0.5), "area"), 8.0, rng), 70)
        image = resize(blur(image, gaussian_kernel(5, 0.8)), target, "bilinear")
        image = jpeg(poisson_noise(image, 1.0, rng), 50)
    return to_uint8(image)
