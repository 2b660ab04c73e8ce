"""What the pose refiner is shown besides the pixels: the soft map of the region a pose edit changed.

Training (``ganstudio.train.pose_refiner``) and the tool build it with the same function from the warp's
``changed`` mask, so the network sees at work the map it was trained on. numpy + OpenCV only.
"""
from __future__ import annotations

import cv2
import numpy as np

#: The map is 1 on the changed pixels and this many pixels around them (the warp's feathered edge and the seam
#: just outside it), then falls linearly to exactly 0 over as many pixels again.
REGION_GROW = 4


def edit_region(changed: np.ndarray, grow: int = REGION_GROW) -> np.ndarray:
    """H x W float32 in [0, 1] from the H x W bool ``changed``: 1 within ``grow`` pixels of a changed pixel, 0 from
    ``2 * grow`` pixels away on (exactly), linear between. All zeros when nothing changed."""
    if not changed.any():
        return np.zeros(changed.shape, np.float32)
    # distance of every pixel to the nearest changed one (0 on them)
    distance = cv2.distanceTransform((~changed).astype(np.uint8), cv2.DIST_L2, 5)
    return np.clip((2 * grow - distance) / max(grow, 1), 0.0, 1.0).astype(np.float32)


def paste_weight(region: np.ndarray, fill_mask: np.ndarray, person_alpha: np.ndarray) -> np.ndarray:
    """H x W float32 in [0, 1]: how much of the refiner's correction to keep at each pixel. The edit region (see
    :func:`edit_region`) less the background the fill invented (``fill_mask`` where the warped person,
    ``person_alpha``, does not cover it), with a 1-2 px soft edge.

    That background is the inpainting model's to fill. A refiner trained on round trips paints the moved limb's
    texture back into it (a ghost sleeve or trouser leg where the limb had hung; with the first shipped refiner,
    moved joints found at their target fell from 79.2 to 69.2 % in benchmarks/pose_quality.py), so the refiner
    keeps to what it is for: the seams at the joints and around the moved limb, and the resampled limb itself.
    """
    weight = (region > 0).astype(np.float32)
    uncovered = fill_mask & (person_alpha < 0.5)
    if uncovered.any():
        soft = np.maximum(cv2.GaussianBlur(uncovered.astype(np.float32), (0, 0), 1.0), uncovered)
        weight *= 1.0 - soft
    return weight
