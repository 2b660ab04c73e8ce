"""MediaPipe Pose on a folder of pictures, for the side-by-side in ``benchmarks/pose_quality.py --ood``.

Runs in the labelling venv only (``mediapipe==0.10.21`` bundles its pose models and needs numpy < 2; never a
product dependency):

    python -m venv /work/mpvenv && /work/mpvenv/bin/pip install "mediapipe==0.10.21" "numpy<2" opencv-python-headless
    /work/mpvenv/bin/python benchmarks/mediapipe_pose.py FOLDER OUT.json

Writes ``{file name: [[x, y, visibility] * 33] or null}``, x and y in pixels of the picture (null: no person).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import mediapipe as mp


def main(folder: str, out: str) -> int:
    found = {}
    # complexity 1 ("full"): the model the wheel bundles (2, "heavy", is downloaded at first use, offline here)
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as pose:
        for path in sorted(Path(folder).glob("*.png")):
            image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
            height, width = image.shape[:2]
            result = pose.process(image)
            marks = result.pose_landmarks
            found[path.name] = None if marks is None else [[m.x * width, m.y * height, m.visibility]
                                                           for m in marks.landmark]
    Path(out).write_text(json.dumps(found))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
