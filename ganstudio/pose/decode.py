"""From the pose network's heatmaps to joint positions, and the accuracy measure (PCK) they are judged by.

Coordinates are continuous pixels: pixel ``i`` spans ``[i, i + 1)``, so a heatmap cell ``j`` at stride ``s`` covers
the input's ``[j * s, (j + 1) * s)`` and its centre is ``(j + 0.5) * s``.
"""
from __future__ import annotations

import numpy as np

from .skeleton import torso_size


def gaussian_heatmaps(points: np.ndarray, height: int, width: int, stride: int, sigma: float) -> np.ndarray:
    """Training targets: one Gaussian peak (max 1) per joint, in heatmap cells of ``stride`` input pixels."""
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    centres = np.asarray(points, np.float32) / stride - 0.5
    maps = np.empty((len(centres), height, width), np.float32)
    for j, (cx, cy) in enumerate(centres):
        maps[j] = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma * sigma))
    return maps


def decode_heatmaps(heatmaps: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Each joint's position (J x 2, input pixels) and confidence (its peak value).

    The peak is refined to sub-cell precision by fitting a parabola to the log of the heatmap across it, which is
    exact for a Gaussian peak and removes most of the quantisation of a half-resolution heatmap."""
    joints, height, width = heatmaps.shape
    flat = heatmaps.reshape(joints, -1)
    peak = flat.argmax(axis=1)
    py, px = np.divmod(peak, width)
    confidence = flat[np.arange(joints), peak].astype(np.float32)
    points = np.empty((joints, 2), np.float64)
    for j in range(joints):
        logs = np.log(np.clip(heatmaps[j].astype(np.float64), 1e-6, None))
        points[j] = ((px[j] + _vertex(logs[py[j], :], px[j]) + 0.5) * stride,
                     (py[j] + _vertex(logs[:, px[j]], py[j]) + 0.5) * stride)
    return points, confidence


def _vertex(line: np.ndarray, at: int) -> float:
    """Offset of the vertex of the parabola through ``line[at - 1 : at + 2]`` from ``at`` (0 at an edge)."""
    if at == 0 or at == len(line) - 1:
        return 0.0
    left, centre, right = line[at - 1], line[at], line[at + 1]
    curvature = left - 2 * centre + right
    if curvature >= -1e-9:
        return 0.0
    return float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5))


def pck(predicted: np.ndarray, truth: np.ndarray, valid: np.ndarray, fraction: float = 0.1) -> tuple[int, int]:
    """Correct keypoints: (hits, counted) over one person's ``valid`` joints, a hit being within ``fraction`` of
    the torso size (measured on ``truth``) of the true position."""
    threshold = fraction * torso_size(truth)
    distances = np.linalg.norm(predicted - truth, axis=1)
    counted = int(valid.sum())
    return int((distances[valid] <= threshold).sum()), counted


def similarity_matrix(center: np.ndarray, scale: float, angle_deg: float, out_w: int, out_h: int,
                      shift: np.ndarray | None = None) -> np.ndarray:
    """2 x 3 matrix (continuous pixel coordinates) that scales and turns about ``center`` and puts it at the centre
    of an ``out_w`` x ``out_h`` view (plus ``shift``)."""
    angle = np.radians(angle_deg)
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    target = np.array([out_w / 2, out_h / 2]) + (0 if shift is None else shift)
    return np.hstack([rot, (target - rot @ np.asarray(center, np.float64))[:, None]])


def fit_matrix(image_w: int, image_h: int, out_w: int, out_h: int) -> np.ndarray:
    """The letterbox transform: the whole image scaled to fit the view, centred."""
    scale = min(out_w / image_w, out_h / image_h)
    return similarity_matrix(np.array([image_w / 2, image_h / 2]), scale, 0.0, out_w, out_h)


def to_opencv(matrix: np.ndarray) -> np.ndarray:
    """The same 2 x 3 transform for OpenCV, whose pixel centres are at integers (ours are at + 0.5)."""
    shift = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    unshift = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]])
    return (unshift @ np.vstack([matrix, [0, 0, 1]]) @ shift)[:2]


def halved(matrix: np.ndarray, factor: int) -> np.ndarray:
    """The transform into a view ``factor`` times smaller (the heatmaps' grid)."""
    return np.vstack([matrix, [0, 0, 1]])[:2] / factor
