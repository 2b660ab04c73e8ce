"""Pose editing, measured: (a) the detector's PCK, (b) pose fidelity of edits, (c) seconds per edit.

(a) PCK@0.1 (and @0.2) of the torso diagonal over the visible teacher joints of the photos held out of training
    (the same every-k-th split as `ganstudio train pose`), through the tool's own two-pass detection on the
    original photos. Baseline in the same run: the training set's mean pose placed in each person's true joint box
    (an oracle box, so a hard floor for a detector to beat).
(b) Fidelity: on held-out people, one arm or leg (chosen by a seeded draw) is swung about its shoulder or hip to a
    random plausible angle, the tool re-poses the photo (detected pose and mask, inpainted background), and the
    detector runs again on the result: the share of moved joints found within 0.1 torso of their target (goal
    >= 80 %). Baseline in the same run: the same check on the unedited photo (how often a joint is "at the target"
    without any edit), and the same share for the joints that were not moved (they should stay put). The edits
    run without the refiner first and, when one is installed, again with it (the same seeded edits).
(d) Out of distribution (``--ood N``): N held-out photos each made into views unlike the training set's full-body
    shots, by a fixed seed: ``upper body`` (cropped from above the head to between the chest and the thighs, as a
    waist-up portrait), ``small`` (the person 10-20 % of a 640 x 480 frame, on a Kodak/McMaster photo from
    ../shared/eval/photos, which no pose run trains on), ``rotated`` (20-45 degrees either way), ``flipped`` (left-right,
    labels swapped). PCK@0.1/0.2 of the torso over the visible teacher joints inside the view, through the tool's
    detection; with ``--mediapipe-python`` (the labelling venv, benchmarks/mediapipe_pose.py) MediaPipe Pose on the
    same views beside it. ``other photos``: people in photos from elsewhere (BSD100, Set14, Set5, Kodak in
    ../shared/eval: sitting, crouching, bending, portraits, a surfer), labelled by MediaPipe in the same run (so it
    needs ``--mediapipe-python``; the labels were looked at on a contact sheet when the list was made, and
    photos with several people or none were left out).
(c) Seconds per edit (detection + warp + fill, and the refiner when one is installed) on a photo scaled to 512 px
    on its long side, median of 5 after a warm-up.

    nice -n 10 python benchmarks/pose_quality.py [--model pose-net] [--edits 60] [--json metrics.json]
        [--ood 60 [--mediapipe-python /work/mpvenv/bin/python]] [--skip-edits]
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from ganstudio.imaging import read_image, write_image
from ganstudio.pose.decode import pck, similarity_matrix, to_opencv
from ganstudio.pose.skeleton import FLIP_ORDER, JOINT_INDEX, JOINTS, MEDIAPIPE_TO_JOINTS, Pose, torso_size
from ganstudio.tools import pose as pose_tool
from ganstudio.train.common import split_validation
from ganstudio.train.people import load_people

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "people"
#: Limbs an edit swings: (root joint, joints that move with it).
LIMBS = {"left arm": ("left_shoulder", ("left_elbow", "left_wrist")),
         "right arm": ("right_shoulder", ("right_elbow", "right_wrist")),
         "left leg": ("left_hip", ("left_knee", "left_ankle")),
         "right leg": ("right_hip", ("right_knee", "right_ankle"))}
SEED = 7
EVAL_PHOTOS = REPO.parent / "shared" / "eval" / "photos"
OOD_CASES = ("upper body", "small", "rotated", "flipped")
#: One person each, from outside the people folder (see (d)); paths under ../shared/eval.
OTHER_PHOTOS = tuple(f"sr/BSD100/HR/img_{n:03d}.png" for n in (2, 11, 19, 55, 62, 63, 72, 75, 94, 99)) + (
    "sr/Set14/HR/img_002.png", "sr/Set14/HR/img_005.png", "sr/Set14/HR/img_009.png", "sr/Set5/HR/img_005.png",
    "photos/Kodak24_kodim18.png")
#: Eval photos with a person or a face in them: not backgrounds for a small person (the tool would take the larger).
WITH_PEOPLE = ("kodim04", "kodim05", "kodim10", "kodim12", "kodim14", "kodim15", "kodim17", "kodim18")


def held_out(data: Path, val_images: int):
    samples, _ = load_people(data)
    train_idx, val_idx = split_validation(list(range(len(samples))), val_images)
    return [samples[i] for i in train_idx], [samples[i] for i in val_idx]


def mean_pose(train) -> np.ndarray:
    """The average pose in box-normalised coordinates (0..1 across the joints' bounding box)."""
    shapes = []
    for s in train:
        low, high = s.joints.min(axis=0), s.joints.max(axis=0)
        shapes.append((s.joints - low) / np.maximum(high - low, 1e-6))
    return np.mean(shapes, axis=0)


def detector_pck(model: str, people, template: np.ndarray) -> dict[str, float]:
    hits = {0.1: 0, 0.2: 0}
    base_hits = {0.1: 0, 0.2: 0}
    counted = 0
    for person in people:
        found = pose_tool.detect(person.image, model)
        low, high = person.joints.min(axis=0), person.joints.max(axis=0)
        baseline = low + template * (high - low)
        for fraction in hits:
            hits[fraction] += pck(found.pose.points, person.joints, person.visible, fraction)[0]
            base_hits[fraction] += pck(baseline, person.joints, person.visible, fraction)[0]
        counted += int(person.visible.sum())
    return {"pck@0.1": hits[0.1] / counted, "pck@0.2": hits[0.2] / counted,
            "mean_pose_pck@0.1": base_hits[0.1] / counted, "mean_pose_pck@0.2": base_hits[0.2] / counted,
            "joints": counted, "photos": len(people)}


def _warp(image: np.ndarray, matrix: np.ndarray, width: int, height: int) -> np.ndarray:
    return cv2.warpAffine(image, to_opencv(matrix), (width, height), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def ood_view(person, case: str, rng: np.random.Generator, backgrounds: list[np.ndarray]):
    """One out-of-distribution view of a held-out person: (image, joints, joints to count)."""
    image, joints = person.image, person.joints
    height, width = image.shape[:2]
    if case == "flipped":
        flipped = joints.copy()
        flipped[:, 0] = width - flipped[:, 0]
        return np.ascontiguousarray(image[:, ::-1]), flipped[list(FLIP_ORDER)], person.visible[list(FLIP_ORDER)]
    if case == "upper body":
        shoulders = joints[[JOINT_INDEX["left_shoulder"], JOINT_INDEX["right_shoulder"]]].mean(axis=0)
        hips = joints[[JOINT_INDEX["left_hip"], JOINT_INDEX["right_hip"]]].mean(axis=0)
        torso = float(np.linalg.norm(hips - shoulders))
        top = max(0, int(joints[JOINT_INDEX["nose"], 1] - 0.7 * torso))
        bottom = min(height, int(shoulders[1] + torso * rng.uniform(0.6, 1.5)))
        left = max(0, int(shoulders[0] - 1.1 * torso))
        right = min(width, int(shoulders[0] + 1.1 * torso))
        crop = np.ascontiguousarray(image[top:bottom, left:right])
        return crop, joints - (left, top), person.visible
    if case == "rotated":
        angle = rng.uniform(20, 45) * rng.choice([-1, 1])
        out_w = out_h = int(np.hypot(width, height))  # the whole photo stays in the turned view
        matrix = similarity_matrix(np.array([width / 2, height / 2]), 1.0, angle, out_w, out_h)
    else:  # small
        out_w, out_h = 640, 480
        tall = joints[:, 1].max() - joints[:, 1].min()
        scale = out_h * rng.uniform(0.1, 0.2) / max(tall, 1.0)
        shift = rng.uniform(-0.35, 0.35, 2) * (out_w, out_h)
        matrix = similarity_matrix(joints.mean(axis=0), scale, 0.0, out_w, out_h, shift)
    view = _warp(image, matrix, out_w, out_h)
    if case == "small" and backgrounds:
        # the person alone when the photo has a mask (a person in the scene), else the whole photo (a photo in it)
        alpha = np.repeat(person.mask[..., None], 3, axis=2) if person.mask is not None else np.full_like(image, 255)
        covered = cv2.GaussianBlur(_warp(alpha, matrix, out_w, out_h)[..., 0].astype(np.float32) / 255.0,
                                   (0, 0), 0.7)[..., None]
        behind = backgrounds[int(rng.integers(len(backgrounds)))]
        behind = cv2.resize(behind, (out_w, out_h), interpolation=cv2.INTER_AREA)
        view = (view * covered + behind * (1 - covered)).round().astype(np.uint8)
    return view, joints @ matrix[:, :2].T + matrix[:, 2], person.visible


def ood_views(people, count: int, seed: int = SEED):
    """``{case: [(image, joints, valid)]}`` for the first ``count`` people, each case from its own seeded draw."""
    backgrounds = [read_image(p).pixels[..., :3] for p in sorted(EVAL_PHOTOS.glob("*.png"))
                   if not any(name in p.stem for name in WITH_PEOPLE)]
    views = {}
    for index, case in enumerate(OOD_CASES):
        rng = np.random.default_rng([seed, index])
        views[case] = []
        # small people: those with a person mask first, pasted into the scene alone
        chosen = sorted(people, key=lambda p: p.mask is None) if case == "small" else people
        for person in chosen[:count]:
            image, joints, visible = ood_view(person, case, rng, backgrounds)
            height, width = image.shape[:2]
            inside = (joints[:, 0] >= 0) & (joints[:, 0] < width) & (joints[:, 1] >= 0) & (joints[:, 1] < height)
            views[case].append((image, joints, visible & inside))
    return views


def pck_of(predictions, views) -> dict[str, float]:
    """PCK@0.1/0.2 of ``predictions`` (17 x 2 each, or None: nothing found, every joint missed) over the views."""
    hits, counted = {0.1: 0, 0.2: 0}, 0
    for predicted, (_, joints, valid) in zip(predictions, views):
        counted += int(valid.sum())
        if predicted is None:
            continue
        for fraction in hits:
            hits[fraction] += pck(predicted, joints, valid, fraction)[0]
    return {"pck@0.1": hits[0.1] / max(counted, 1), "pck@0.2": hits[0.2] / max(counted, 1), "joints": counted}


def mediapipe_predictions(python: str, views, work: Path) -> list:
    """MediaPipe Pose's 17 joints on each view (benchmarks/mediapipe_pose.py in the labelling venv)."""
    import subprocess

    work.mkdir(parents=True, exist_ok=True)
    for index, (image, _, _) in enumerate(views):
        write_image(work / f"{index:04d}.png", image, overwrite=True)
    out = work / "mediapipe.json"
    subprocess.run([python, str(REPO / "benchmarks" / "mediapipe_pose.py"), str(work), str(out)], check=True)
    found = json.loads(out.read_text())
    return [None if found.get(f"{i:04d}.png") is None else np.asarray(found[f"{i:04d}.png"])[list(MEDIAPIPE_TO_JOINTS), :2]
            for i in range(len(views))]


def other_photos(mediapipe_python: str, work: Path):
    """The :data:`OTHER_PHOTOS` views with MediaPipe's joints as the labels (visibility >= 0.5 counts)."""
    import subprocess

    work.mkdir(parents=True, exist_ok=True)
    images = []
    for index, name in enumerate(OTHER_PHOTOS):
        image = read_image(EVAL_PHOTOS.parent / name).pixels[..., :3]
        write_image(work / f"{index:04d}.png", image, overwrite=True)
        images.append(image)
    out = work / "mediapipe.json"
    subprocess.run([mediapipe_python, str(REPO / "benchmarks" / "mediapipe_pose.py"), str(work), str(out)], check=True)
    found = json.loads(out.read_text())
    views = []
    for index, image in enumerate(images):
        marks = found.get(f"{index:04d}.png")
        if marks is None:
            continue
        marks = np.asarray(marks)[list(MEDIAPIPE_TO_JOINTS)]
        views.append((image, marks[:, :2], marks[:, 2] >= 0.5))
    return views


def ood_table(model: str, people, count: int, mediapipe_python: str | None) -> dict[str, dict[str, float]]:
    import tempfile

    table = {}
    if mediapipe_python:
        with tempfile.TemporaryDirectory() as folder:
            views = other_photos(mediapipe_python, Path(folder))
        table["other photos"] = {"ours": pck_of([pose_tool.detect(image, model).pose.points
                                                  for image, _, _ in views], views), "photos": len(views)}
    for case, views in ood_views(people, count).items():
        ours = pck_of([pose_tool.detect(image, model).pose.points for image, _, _ in views], views)
        row = {"ours": ours}
        if mediapipe_python:
            with tempfile.TemporaryDirectory() as folder:
                row["mediapipe"] = pck_of(mediapipe_predictions(mediapipe_python, views, Path(folder)), views)
        table[case] = row
    return table


def swing(pose: Pose, limb: str, rng: np.random.Generator, width: int, height: int) -> Pose | None:
    """The pose with ``limb`` turned about its root by a random plausible angle, kept inside the photo."""
    root, moving = LIMBS[limb]
    first = moving[0]
    centre = pose[root]
    for _ in range(20):
        if "arm" in limb:
            angle = rng.uniform(35, 110)
        else:
            angle = rng.uniform(15, 40)
        # Away from the body: the person's left is the image's right when they face the camera.
        outward = 1.0 if pose["left_shoulder"][0] > pose["right_shoulder"][0] else -1.0
        sign = outward if limb.startswith("left") else -outward
        # Image y points down, so a positive angle with x to the right turns a hanging limb outwards and up.
        theta = np.radians(-sign * angle)
        offset = pose[first] - centre
        rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        target = pose.moved(first, tuple(centre + rotation @ offset))
        points = target.points[[JOINT_INDEX[n] for n in moving]]
        if (points >= 4).all() and (points[:, 0] < width - 4).all() and (points[:, 1] < height - 4).all():
            return target
    return None


def fidelity(model: str, people, edits: int, fill: str = "auto",
             refine: tuple[bool, ...] = (False,)) -> list[dict[str, float]]:
    """The figures for each ``refine`` setting, over the same seeded edits (each photo detected and swung once)."""
    rng = np.random.default_rng(SEED)
    counts = [dict(moved_hits=0, still_hits=0) for _ in refine]
    moved_total = still_total = unedited_hits = 0
    done = 0
    for person in people:
        if done >= edits:
            break
        height, width = person.image.shape[:2]
        found = pose_tool.detect(person.image, model)
        limb = list(LIMBS)[rng.integers(len(LIMBS))]
        target = swing(found.pose, limb, rng, width, height)
        if target is None:
            continue
        threshold = 0.1 * torso_size(target.points)
        moving = [JOINT_INDEX[n] for n in LIMBS[limb][1]]
        still = [i for i in range(len(JOINTS)) if i not in moving]
        for option, count in zip(refine, counts):
            params = pose_tool.PoseParams(model=model, source=found.pose, target=target, fill_model=fill,
                                          refine=option)
            again = pose_tool.detect(pose_tool.run(person.image, params), model).pose.points
            distances = np.linalg.norm(again - target.points, axis=1)
            count["moved_hits"] += int((distances[moving] <= threshold).sum())
            count["still_hits"] += int((distances[still] <= threshold).sum())
        moved_total += len(moving)
        still_total += len(still)
        unedited = np.linalg.norm(found.pose.points - target.points, axis=1)
        unedited_hits += int((unedited[moving] <= threshold).sum())
        done += 1
    return [{"moved_joints_at_target": count["moved_hits"] / max(moved_total, 1),
             "unedited_moved_joints_at_target": unedited_hits / max(moved_total, 1),
             "unmoved_joints_kept": count["still_hits"] / max(still_total, 1), "edits": done} for count in counts]


def standard_error(figures: dict[str, float]) -> float:
    """The binomial standard error of the moved-joint share (two joints per edit, counted as independent): with 60
    edits about 3.7 points, so two runs a joint or two apart are the same."""
    share, joints = figures["moved_joints_at_target"], 2 * max(figures["edits"], 1)
    return math.sqrt(share * (1 - share) / joints)


def seconds_per_edit(model: str, person, fill: str = "auto") -> float:
    height, width = person.image.shape[:2]
    factor = 512 / max(height, width)
    image = cv2.resize(person.image, (round(width * factor), round(height * factor)), interpolation=cv2.INTER_CUBIC)
    found = pose_tool.detect(image, model)
    target = found.pose.moved("left_elbow", tuple(found.pose["left_shoulder"] + (60.0, -60.0)))
    params = pose_tool.PoseParams(model=model, target=target, fill_model=fill)
    pose_tool.run(image, params)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        pose_tool.run(image, params)  # detection included: the source pose is None
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=pose_tool.DEFAULT_MODEL)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--val-images", type=int, default=200, help="as in training (the held-out split)")
    parser.add_argument("--edits", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fill", default="auto", help="inpainting model for the uncovered background (default: the "
                                                       "tool's choice, the best installed that suits pose fills)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--ood", type=int, default=0, help="(d): this many held-out people per out-of-distribution case")
    parser.add_argument("--mediapipe-python", help="the labelling venv's python, for MediaPipe beside (d)")
    parser.add_argument("--skip-edits", action="store_true", help="leave out (b) and (c)")
    args = parser.parse_args(argv)
    if not (args.data / "pose_landmarks.json").exists():
        print(f"no people data in {args.data}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    train, held = held_out(args.data, args.val_images)
    started = time.perf_counter()
    detection = detector_pck(args.model, held, mean_pose(train))
    print(f"(a) detector on {detection['photos']} held-out photos, {detection['joints']} visible joints:")
    print(f"    PCK@0.1 {detection['pck@0.1']:.1%}  PCK@0.2 {detection['pck@0.2']:.1%}   "
          f"(mean pose in the true box: {detection['mean_pose_pck@0.1']:.1%} / {detection['mean_pose_pck@0.2']:.1%})")
    figures: dict = {"detector": detection, "method": "benchmarks/pose_quality.py"}
    if args.ood:
        table = ood_table(args.model, held, args.ood, args.mediapipe_python)
        figures["out_of_distribution"] = table
        print(f"(d) out of distribution, {args.ood} held-out people per case: PCK@0.1 / @0.2"
              + ("   (MediaPipe Pose on the same views)" if args.mediapipe_python else ""))
        for case, row in table.items():
            ours = row["ours"]
            text = f"    {case:<11} {ours['pck@0.1']:6.1%} / {ours['pck@0.2']:6.1%}  ({ours['joints']} joints)"
            if "mediapipe" in row:
                text += f"   MediaPipe {row['mediapipe']['pck@0.1']:6.1%} / {row['mediapipe']['pck@0.2']:6.1%}"
            if case == "other photos":
                text += f"   ({row['photos']} photos, MediaPipe's joints as the labels)"
            print(text)
    if args.skip_edits:
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
        return 0
    refiner = pose_tool.best_refiner()
    # the same seeded edits without the refiner and (when one is installed) with it: its effect in one run
    edits, *more = fidelity(args.model, held, args.edits, args.fill, (False, True) if refiner else (False,))
    refined = more[0] if more else None
    print(f"(b) fidelity over {edits['edits']} edits (warp + fill): moved joints found at their target "
          f"{edits['moved_joints_at_target']:.1%} ± {standard_error(edits):.1%} (goal 80 %; unedited photo: "
          f"{edits['unedited_moved_joints_at_target']:.1%}); unmoved joints kept {edits['unmoved_joints_kept']:.1%}")
    if refined is not None:
        print(f"    with the refiner {refiner.name}: moved joints at their target "
              f"{refined['moved_joints_at_target']:.1%} ± {standard_error(refined):.1%}; unmoved joints kept "
              f"{refined['unmoved_joints_kept']:.1%}")
    seconds = seconds_per_edit(args.model, held[0], args.fill)
    print(f"(c) {seconds:.2f} s per edit on a 512 px photo (goal < 3 s), {torch.get_num_threads()} threads")
    print(f"    total benchmark time {time.perf_counter() - started:.0f} s")
    if args.json:
        figures.update({"fidelity": refined or edits, "fidelity_unrefined": edits,
                        "refiner": refiner.name if refiner else None, "seconds_per_edit_512px": round(seconds, 3),
                        "fill": args.fill})
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if all(math.isfinite(v) for v in (seconds,)) else 1


if __name__ == "__main__":
    sys.exit(main())
