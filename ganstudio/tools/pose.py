"""Pose-guided editing: find the person's skeleton and mask, then move them to a new pose and fill what they uncover.

Detection runs our pose network twice: once on the whole photo (shrunk) to find the person, then on a crop around
them at the size it was trained at, so a small figure in a large photo is found as precisely as a portrait. Each
pass averages the view with its mirror image.
When a refiner (task ``pose_refine``) is installed, it then cleans up seams and stretched areas inside the region
the edit changed; without one the edit is the warp and fill alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch

from ..engine import CancelToken, ProgressCallback, Runtime, run_tiled
from ..engine.cancel import check, report
from ..engine.pipeline import to_array, to_tensor
from ..imaging.color import from_float, from_rgb, merge_alpha, split_alpha, to_float, to_rgb
from ..models import ModelDescriptor, get_registry
from ..pose.decode import decode_heatmaps, halved, similarity_matrix, to_opencv
from ..pose.matte import refine_mask
from ..pose.refine import edit_region, paste_weight
from ..pose.skeleton import FLIP_ORDER, JOINTS, Pose, unfound_message, unfound_moves
from ..pose.warp import repose
from . import inpaint
from .base import ToolSpec, as_rgb8, boolean_mask, check_image, find_model, load_module, mask_bounds

DEFAULT_MODEL = "pose-net"
#: Long side of the first, whole-photo pass.
SEARCH_SIZE = 256
#: The person's box is grown by this much on every side before the second pass.
CROP_MARGIN = 0.15
#: Joints the detector is less sure of than this do not decide where the person is.
CONFIDENT = 0.2
#: Guided-filter window, in heatmap cells as they land on the photo: the mask edge may move about this far onto
#: the photo's own edges (measured on held-out photos in training/pose/README.md).
MATTE_CELLS = 2.2
#: The registry task of the refiners that clean up an edit.
REFINE_TASK = "pose_refine"
#: Long side a refiner works at unless its card says otherwise (``working_size``).
REFINE_WORKING_SIZE = 512
#: Context (pixels) around the edited region that the refiner sees but does not change.
REFINE_CONTEXT = 16


@dataclass
class Detection:
    pose: Pose
    #: H x W float32 in [0, 1]: how likely each pixel is the person.
    person: np.ndarray
    #: The other people the first pass saw (x0, y0, x1, y1 in image pixels), largest first: a click in one of
    #: them detects that person instead (``PoseParams.near``).
    others: list[tuple[float, float, float, float]] = field(default_factory=list)


@dataclass
class PoseParams:
    model: str = DEFAULT_MODEL
    #: Where the joints should go; None leaves the person where they are.
    target: Pose | None = None
    #: The person's pose now (detected, perhaps corrected by hand); None detects it.
    source: Pose | None = None
    #: Inpainting model for the uncovered background: "auto" takes the best installed one.
    fill_model: str = "auto"
    #: Take the painted mask as the person, instead of the network's.
    use_mask: bool = False
    #: Detect the person at or nearest this image point (x, y); None: the largest person in the photo.
    near: tuple[float, float] | None = None
    #: Clean up the edited region with the installed refiner (task ``pose_refine``), when there is one.
    refine: bool = True
    #: The person's matte (H x W float in [0, 1]) that a detection already found on this very image, so Apply does
    #: not run the network again; None detects it.
    person: np.ndarray | None = field(default=None, compare=False, repr=False)


def _infer(module: torch.nn.Module, view: np.ndarray, device: torch.device,
           dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Joint heatmaps and the mask probability of ``view``, averaged with those of its mirror image (the flip test
    of pose estimation: the network was trained on mirrored views with left and right swapped, so the two are two
    looks at the same person; one batch of two costs little more than one view)."""
    x = torch.from_numpy(view).permute(2, 0, 1)[None].to(device=device, dtype=dtype).div_(255)
    x = torch.cat([x, x.flip(-1)])
    with torch.inference_mode():
        out = module(x.contiguous(memory_format=torch.channels_last)).float().cpu()
    # The heatmaps are a whole factor smaller than the view, so mirroring them maps cell centres onto cell centres.
    mirrored = out[1].flip(-1)
    heat = (out[0, :-1] + mirrored[:-1][list(FLIP_ORDER)]) / 2
    mask = (torch.sigmoid(out[0, -1]) + torch.sigmoid(mirrored[-1])) / 2
    return heat.numpy(), mask.numpy()


def _view(rgb: np.ndarray, matrix: np.ndarray, width: int, height: int) -> np.ndarray:
    return cv2.warpAffine(rgb, to_opencv(matrix), (width, height), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def _to_image(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))
    return points @ inverse[:2, :2].T + inverse[:2, 2]


def detect_job(image: np.ndarray, params: PoseParams, mask: np.ndarray | None = None, progress: Any = None,
               cancel: CancelToken | None = None, runtime: Runtime | None = None) -> Detection:
    """A detection shaped like a tool's run, for the worker (module-level: the worker process gets it by name)."""
    return detect(image, params.model, runtime=runtime, cancel=cancel, near=params.near)


#: Parts of the first pass's mask this far apart (a fraction of a part's size) are one person: a dark coat and a
#: face come out of it as separate blobs.
SAME_PERSON_REACH = 0.5


def _expanded(box: tuple[int, int, int, int], reach: float) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    grow_x, grow_y = (x1 - x0) * reach, (y1 - y0) * reach
    return x0 - grow_x, y0 - grow_y, x1 + grow_x, y1 + grow_y


def _people(mask: np.ndarray, min_share: float = 0.15) -> list[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """The first pass's person mask split into people, largest first: each a bool map of its cells (on the
    heatmap grid) and its box (x0, y0, x1, y1, cells). Blobs within :data:`SAME_PERSON_REACH` of a person's box are
    parts of that person; a person under ``min_share`` of the largest is a speck."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats((mask > 0.5).astype(np.uint8), connectivity=8)
    groups: list[list] = []  # [cells, box, area]
    for index in sorted(range(1, count), key=lambda i: -stats[i, cv2.CC_STAT_AREA]):
        x, y, w, h, area = stats[index]
        for group in groups:
            gx0, gy0, gx1, gy1 = _expanded(group[1], SAME_PERSON_REACH)
            if x < gx1 and x + w > gx0 and y < gy1 and y + h > gy0:
                bx0, by0, bx1, by1 = group[1]
                group[0] |= labels == index
                group[1] = (min(bx0, x), min(by0, y), max(bx1, x + w), max(by1, y + h))
                group[2] += area
                break
        else:
            groups.append([labels == index, (x, y, x + w, y + h), area])
    if not groups:
        return []
    largest = max(group[2] for group in groups)
    return [(cells, box) for cells, box, area in sorted(groups, key=lambda g: -g[2]) if area >= min_share * largest]


def _chosen(people: list[tuple[np.ndarray, tuple[int, int, int, int]]], near: np.ndarray | None) -> int:
    """The index of the person containing ``near`` (grid cells), else the one closest to it; 0 (the largest)
    without a point."""
    if near is None or len(people) < 2:
        return 0
    col, row = int(near[0]), int(near[1])
    for index, (cells, _) in enumerate(people):
        if 0 <= row < cells.shape[0] and 0 <= col < cells.shape[1] and cells[row, col]:
            return index
    distances = [np.min(np.hypot(*(np.argwhere(cells) - (row, col)).T)) for cells, _ in people]
    return int(np.argmin(distances))


def detect(image: np.ndarray, model: str = DEFAULT_MODEL, runtime: Runtime | None = None,
           cancel: CancelToken | None = None, near: tuple[float, float] | None = None) -> Detection:
    """The person's 17 joints (pixels of ``image``) and mask: of the largest person in the photo, or of the one at
    or nearest ``near`` (x, y pixels)."""
    check_image(image)
    runtime = runtime or Runtime()
    descriptor = find_model(model, "pose")
    module, device, dtype = load_module(descriptor, runtime)
    module.eval()
    card_input = descriptor.card.get("input", {})
    net_h, net_w = int(card_input.get("height", 192)), int(card_input.get("width", 128))
    stride = int(card_input.get("stride", 2))
    multiple = max(descriptor.multiple_of, 1)
    rgb = as_rgb8(image)
    height, width = rgb.shape[:2]

    # Pass 1: the whole photo, to find where the person is.
    factor = SEARCH_SIZE / max(height, width)
    search_w = max(multiple, int(np.ceil(width * factor / multiple)) * multiple)
    search_h = max(multiple, int(np.ceil(height * factor / multiple)) * multiple)
    search = np.array([[factor, 0, 0], [0, factor, 0]], np.float64)
    heat, mask = _infer(module, _view(rgb, search, search_w, search_h), device, dtype)
    points, confidence = decode_heatmaps(heat, stride)
    points = _to_image(points, search)
    check(cancel)
    sure = points[confidence >= CONFIDENT]
    people = _people(mask)
    others: list[tuple[float, float, float, float]] = []
    if people:
        grid_near = None if near is None else (np.asarray(near, np.float64) * factor) / stride
        chosen, box = people.pop(_chosen(people, grid_near))
        for cells, _ in people:
            found = _to_image((np.argwhere(cells)[:, ::-1] + 0.5) * stride, search)
            others.append((*found.min(axis=0), *found.max(axis=0)))
        # the confident joints around the chosen person only: in a crop around two people (or a person and a
        # patch of background the network half believes in) the joints would mix
        x0, y0, x1, y1 = _expanded(box, SAME_PERSON_REACH)
        cell = sure * factor / stride
        sure = sure[(cell[:, 0] >= x0) & (cell[:, 0] <= x1) & (cell[:, 1] >= y0) & (cell[:, 1] <= y1)]
        person = np.argwhere(chosen)
    else:
        person = np.argwhere(mask > 0.5)
    corners = [sure] if len(sure) else []
    if len(person):
        corners.append(_to_image((person[:, ::-1] + 0.5) * stride, search))
    if corners:
        box = np.vstack(corners)
        low, high = box.min(axis=0), box.max(axis=0)
    else:
        low, high = np.array([0.0, 0.0]), np.array([width, height], np.float64)
    centre = (low + high) / 2
    extent = (high - low) * (1 + 2 * CROP_MARGIN)
    # Pass 2: a crop around the person at the network's own aspect and size.
    box_h = max(extent[1], extent[0] * net_h / net_w, 16.0)
    crop = similarity_matrix(centre, net_h / box_h, 0.0, net_w, net_h)
    heat, mask = _infer(module, _view(rgb, crop, net_w, net_h), device, dtype)
    points, confidence = decode_heatmaps(heat, stride)
    points = _to_image(points, crop)
    back = to_opencv(halved(crop, stride))
    person_mask = cv2.warpAffine(mask.astype(np.float32), back, (width, height),
                                 flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    cell = stride * box_h / net_h  # photo pixels per heatmap cell
    person_mask = refine_mask(rgb, np.clip(person_mask, 0.0, 1.0), round(MATTE_CELLS * cell))
    # An unsure network leaves a faint haze over the background; the warp would carry it along with a moved limb
    # as a smear. Steepen the ramp so only the edge stays soft.
    person_mask = _smoothstep(person_mask, 0.3, 0.7)
    pose = Pose(points, confidence, image_size=(width, height))
    return Detection(pose, person_mask, others)


def _smoothstep(values: np.ndarray, low: float, high: float) -> np.ndarray:
    t = np.clip((values - low) / (high - low), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def best_fill_model() -> str:
    """A learned inpainting model when one is installed (they fill large areas far better), else OpenCV's. A card
    can opt its model out with ``"pose_fill": {"recommended": false}``: the first inpaint-gan measured a lower pose
    fidelity than Telea's fill (training/pose/README.md)."""
    learned = [m for m in get_registry().for_task("inpaint")
               if not m.is_classic and m.card.get("pose_fill", {}).get("recommended", True)]
    shipped = [m for m in learned if m.source == "pretrained"]
    return (shipped or learned)[0].name if learned else "opencv-telea"


def best_refiner() -> ModelDescriptor | None:
    """The installed pose refiner, a shipped one first; None when there is none."""
    found = get_registry().for_task(REFINE_TASK)
    shipped = [m for m in found if m.source == "pretrained"]
    return (shipped or found or [None])[0]


def refine(image: np.ndarray, region: np.ndarray, model: ModelDescriptor, runtime: Runtime | None = None,
           cancel: CancelToken | None = None, weight: np.ndarray | None = None) -> np.ndarray:
    """Run the refiner on a crop around ``region`` (H x W float in [0, 1], from
    :func:`ganstudio.pose.refine.edit_region`) and paste its correction back where ``region`` > 0, scaled by
    ``weight`` (H x W in [0, 1], :func:`ganstudio.pose.refine.paste_weight`) when given; every other pixel, and the
    alpha channel, is returned unchanged. A crop longer than the model's working size is shrunk for the model and
    its correction enlarged back."""
    inside = region > 0
    bounds = mask_bounds(inside, margin=REFINE_CONTEXT)
    if bounds is None:
        return image.copy()
    module, device, dtype = load_module(model, runtime or Runtime())
    module.eval()
    crop, crop_region = image[bounds], region[bounds].astype(np.float32)
    colour, alpha = split_alpha(crop)
    rgb = to_rgb(to_float(colour))
    height, width = crop_region.shape
    working = int(model.card.get("working_size", REFINE_WORKING_SIZE))
    factor = min(1.0, working / max(height, width))
    if factor < 1.0:
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        small_rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        small_region = cv2.resize(crop_region, size, interpolation=cv2.INTER_LINEAR)
    else:
        small_rgb, small_region = rgb, crop_region
    inputs = np.concatenate([small_rgb, small_region[..., None]], axis=2, dtype=np.float32)
    multiple = max(model.multiple_of, 1)
    tile = -(-max(inputs.shape[:2]) // multiple) * multiple  # one tile: a tile edge through a seam would add one
    out = to_array(run_tiled(module, to_tensor(inputs), tile=tile, multiple_of=multiple, device=device, dtype=dtype,
                             cancel=cancel))
    correction = out - small_rgb
    if factor < 1.0:
        correction = cv2.resize(correction, (width, height), interpolation=cv2.INTER_CUBIC)
    paste = inside[bounds].astype(np.float32)
    if weight is not None:
        paste *= np.clip(weight[bounds], 0.0, 1.0)
    refined = np.clip(rgb + correction * paste[..., None], 0.0, 1.0)
    refined = merge_alpha(from_float(from_rgb(refined, colour.shape[2]), image.dtype), alpha)
    result = image.copy()
    result[bounds] = np.where(paste[..., None] > 0, refined, crop)
    return result


def run(
    image: np.ndarray,
    params: PoseParams,
    mask: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    runtime: Runtime | None = None,
) -> np.ndarray:
    """The photo with the person moved from ``params.source`` (detected when None) to ``params.target``."""
    check_image(image)
    if params.target is None:
        raise ValueError("no target pose: drag a joint, or load a pose file")
    height, width = image.shape[:2]
    runtime = runtime or Runtime()
    if params.person is not None and params.person.shape != (height, width):
        raise ValueError(f"the person's matte is {params.person.shape[1]}x{params.person.shape[0]} but the image is "
                         f"{width}x{height}: detect the pose again")
    report(progress, 0.0, "finding the person")
    detection = None
    if params.source is None or not (params.use_mask or params.person is not None):
        detection = detect(image, params.model, runtime, cancel)
    source = params.source.fitted_to(width, height) if params.source is not None else detection.pose
    target = params.target.fitted_to(width, height)
    unfound = unfound_moves(source, target)
    if unfound:
        # warping a part whose joints are guesses moves whatever lies there (a piece of collar, the background)
        raise ValueError(unfound_message(unfound))
    if params.use_mask:
        person = boolean_mask(mask, image).astype(np.float32)
    else:
        person = params.person if params.person is not None else detection.person
    check(cancel)
    report(progress, 0.3, "moving the person")
    fill_model = best_fill_model() if params.fill_model == "auto" else params.fill_model
    fill_params = inpaint.InpaintParams(model=fill_model)

    def fill(pixels: np.ndarray, hole: np.ndarray) -> np.ndarray:
        report(progress, 0.5, "filling the background")
        return inpaint.run(pixels, fill_params, hole, cancel=cancel, runtime=runtime)

    result = repose(image, person, source, target, fill, cancel)
    check(cancel)
    edited = result.image
    refiner = best_refiner() if params.refine and result.changed.any() else None
    if refiner is not None:
        report(progress, 0.8, "refining the edit")
        region = edit_region(result.changed)
        edited = refine(edited, region, refiner, runtime, cancel,
                        paste_weight(region, result.fill_mask, result.person_alpha))
    report(progress, 1.0, "done")
    return edited


TOOL = ToolSpec("pose", "Pose", "pose", PoseParams, run, batchable=False, preferred_models=(DEFAULT_MODEL,))

__all__ = ["JOINTS", "Detection", "PoseParams", "TOOL", "best_fill_model", "best_refiner", "detect", "refine", "run"]
