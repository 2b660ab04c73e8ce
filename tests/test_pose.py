"""The pose skeleton, the heatmap decoding, the part-wise warp, the pose tool and its training loop."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ganstudio.cli import main as cli_main
from ganstudio.imaging import read_image, write_image
from ganstudio.models import configure_registry, model_cache
from ganstudio.models.arch.posenet import PoseNet
from ganstudio.pose.decode import decode_heatmaps, gaussian_heatmaps, pck
from ganstudio.pose.skeleton import FLIP_ORDER, JOINT_INDEX, JOINTS, MEDIAPIPE_TO_JOINTS, Pose, children, torso_size
from ganstudio.pose.warp import part_transforms, repose
from ganstudio.tools import pose as pose_tool
from ganstudio.train import checkpoint as ckpt
from ganstudio.train.events import EventWriter
from ganstudio.train.pose import PoseConfig, export, train


def standing_pose(cx: float = 64.0, top: float = 20.0, unit: float = 10.0) -> Pose:
    """A front-facing person about 16 units tall; the person's left is the image's right."""
    at = {
        "nose": (0, 0), "left_eye": (0.4, -0.3), "right_eye": (-0.4, -0.3),
        "left_ear": (0.8, 0), "right_ear": (-0.8, 0),
        "left_shoulder": (1.8, 2), "right_shoulder": (-1.8, 2), "left_elbow": (2.2, 4.6), "right_elbow": (-2.2, 4.6),
        "left_wrist": (2.4, 7), "right_wrist": (-2.4, 7), "left_hip": (1.2, 7), "right_hip": (-1.2, 7),
        "left_knee": (1.3, 10.5), "right_knee": (-1.3, 10.5), "left_ankle": (1.4, 14), "right_ankle": (-1.4, 14),
    }
    return Pose(np.array([[cx + at[n][0] * unit, top + at[n][1] * unit] for n in JOINTS]))


def person_image(pose: Pose, height: int = 200, width: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """A textured background with a drawn stick person whose limbs are thick coloured bars; and its mask."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:height, 0:width]
    background = np.stack([(xx * 2) % 256, (yy * 3) % 256, np.full_like(xx, 90)], axis=2).astype(np.uint8)
    background = (background.astype(int) + rng.integers(-10, 10, background.shape)).clip(0, 255).astype(np.uint8)
    mask = np.zeros((height, width), np.uint8)
    colours = np.zeros((height, width, 3), np.uint8)
    p = pose.points
    torso = np.array([p[JOINT_INDEX[n]] for n in ("left_shoulder", "right_shoulder", "right_hip", "left_hip")])
    cv2.fillConvexPoly(mask, np.round(torso).astype(np.int32), 255)
    cv2.fillConvexPoly(colours, np.round(torso).astype(np.int32), (200, 40, 40))
    cv2.circle(mask, tuple(np.round(p[0]).astype(int)), 9, 255, -1)
    cv2.circle(colours, tuple(np.round(p[0]).astype(int)), 9, (230, 190, 160), -1)
    bones = (("left_shoulder", "left_elbow", (40, 200, 40)), ("left_elbow", "left_wrist", (40, 40, 220)),
             ("right_shoulder", "right_elbow", (40, 200, 40)), ("right_elbow", "right_wrist", (40, 40, 220)),
             ("left_hip", "left_knee", (220, 220, 40)), ("left_knee", "left_ankle", (40, 220, 220)),
             ("right_hip", "right_knee", (220, 220, 40)), ("right_knee", "right_ankle", (40, 220, 220)))
    for a, b, colour in bones:
        pa, pb = (tuple(np.round(p[JOINT_INDEX[n]]).astype(int)) for n in (a, b))
        cv2.line(mask, pa, pb, 255, 7)
        cv2.line(colours, pa, pb, colour, 7)
    image = np.where(mask[..., None] > 0, colours, background)
    return image, mask


def telea(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    return cv2.inpaint(image, hole.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)


# -- skeleton ------------------------------------------------------------------------------------------------


def test_flip_order_swaps_left_and_right_and_is_its_own_inverse() -> None:
    assert JOINTS[FLIP_ORDER[JOINT_INDEX["left_wrist"]]] == "right_wrist"
    assert JOINTS[FLIP_ORDER[JOINT_INDEX["nose"]]] == "nose"
    assert [FLIP_ORDER[i] for i in FLIP_ORDER] == list(range(len(JOINTS)))
    assert len(MEDIAPIPE_TO_JOINTS) == len(JOINTS) and MEDIAPIPE_TO_JOINTS[JOINT_INDEX["left_hip"]] == 23


def test_dragging_an_elbow_swings_the_wrist_and_keeps_the_forearm_length() -> None:
    pose = standing_pose()
    shoulder, elbow, wrist = pose["left_shoulder"], pose["left_elbow"], pose["left_wrist"]
    # raise the upper arm to horizontal, same length
    length = np.linalg.norm(elbow - shoulder)
    moved = pose.moved("left_elbow", (shoulder[0] + length, shoulder[1]))
    assert np.allclose(moved["left_elbow"], (shoulder[0] + length, shoulder[1]))
    assert np.isclose(np.linalg.norm(moved["left_wrist"] - moved["left_elbow"]), np.linalg.norm(wrist - elbow))
    assert moved["left_wrist"][0] > moved["left_elbow"][0] + 10, "the forearm turns with the upper arm"
    unchanged = [n for n in JOINTS if n not in ("left_elbow", "left_wrist")]
    assert all(np.array_equal(moved[n], pose[n]) for n in unchanged)
    alone = pose.moved("left_elbow", (shoulder[0] + length, shoulder[1]), carry_children=False)
    assert np.array_equal(alone["left_wrist"], wrist)
    assert children("left_hip") == ["left_knee", "left_ankle"]


def test_locked_joints_do_not_move() -> None:
    pose = standing_pose()
    pose.locked[JOINT_INDEX["left_wrist"]] = True
    moved = pose.moved("left_elbow", (150.0, 30.0))
    assert np.array_equal(moved["left_wrist"], pose["left_wrist"])
    assert not np.array_equal(moved["left_elbow"], pose["left_elbow"])
    assert np.array_equal(pose.moved("left_wrist", (0.0, 0.0)).points, pose.points)


def test_pose_json_round_trip_and_bad_files(tmp_path: Path) -> None:
    pose = standing_pose()
    pose.locked[3] = True
    pose.confidence[5] = 0.25
    pose.image_size = (128, 200)
    path = tmp_path / "pose.json"
    pose.save(path)
    back = Pose.load(path)
    assert np.allclose(back.points, pose.points, atol=1e-3)
    assert back.locked.tolist() == pose.locked.tolist() and back.confidence[5] == pytest.approx(0.25)
    assert back.image_size == (128, 200)
    assert np.allclose(back.fitted_to(256, 400).points, pose.points * 2, atol=2e-3)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        Pose.load(tmp_path / "bad.json")
    data = pose.to_json()
    del data["joints"]["left_knee"]
    with pytest.raises(ValueError, match="missing joints left_knee"):
        Pose.from_json(data)
    with pytest.raises(ValueError, match="not a GAN Studio pose file"):
        Pose.from_json({"joints": {}})


# -- heatmaps ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stride", [2, 4])
def test_decoding_a_rendered_heatmap_finds_the_joint_within_a_fraction_of_a_cell(stride: int) -> None:
    rng = np.random.default_rng(0)
    points = rng.uniform([8, 8], [120, 180], (len(JOINTS), 2))
    maps = gaussian_heatmaps(points, 192 // stride, 128 // stride, stride, sigma=1.5)
    decoded, confidence = decode_heatmaps(maps, stride)
    assert np.abs(decoded - points).max() < 0.35 * stride
    assert (confidence > 0.7).all()


def test_pck_counts_joints_within_a_tenth_of_the_torso() -> None:
    truth = standing_pose().points
    size = torso_size(truth)
    guess = truth.copy()
    guess[JOINT_INDEX["left_wrist"]] += (0.2 * size, 0)
    guess[JOINT_INDEX["nose"]] += (0.05 * size, 0)
    valid = np.ones(len(JOINTS), bool)
    valid[JOINT_INDEX["left_ankle"]] = False
    assert pck(guess, truth, valid) == (15, 16)
    assert pck(guess, truth, valid, fraction=0.3) == (16, 16)


# -- warp ----------------------------------------------------------------------------------------------------


def test_the_identity_pose_returns_the_input_bit_for_bit() -> None:
    pose = standing_pose()
    image, mask = person_image(pose)
    called = []
    result = repose(image, mask / 255.0, pose, pose.copy(), lambda im, hole: called.append(1) or im)
    assert np.array_equal(result.image, image)
    assert not result.changed.any() and not called


def test_a_re_pose_stops_at_its_next_part_once_cancelled() -> None:
    from ganstudio.engine import CancelToken, Cancelled

    pose = standing_pose()
    image, mask = person_image(pose)
    target = pose.moved("left_elbow", (pose["left_shoulder"][0] + 26, pose["left_shoulder"][1] - 2))
    token = CancelToken()
    checks = []
    original = token.raise_if_cancelled

    def count_then_cancel() -> None:  # cancelled while the first parts' weights are being computed
        checks.append(1)
        if len(checks) == 3:
            token.cancel()
        original()

    token.raise_if_cancelled = count_then_cancel
    filled = []
    with pytest.raises(Cancelled):
        repose(image, mask / 255.0, pose, target, lambda im, hole: filled.append(1) or im, token)
    assert len(checks) == 3 and not filled, "nothing after the cancel ran: no fill"


def test_a_raised_arm_moves_its_pixels_fills_its_old_place_and_leaves_the_rest() -> None:
    pose = standing_pose()
    image, mask = person_image(pose)
    shoulder = pose["left_shoulder"]
    target = pose.moved("left_elbow", (shoulder[0] + 26, shoulder[1] - 2))
    result = repose(image, mask / 255.0, pose, target, telea)
    out = result.image
    # the forearm's blue now lies along the new forearm
    new_wrist, new_elbow = target["left_wrist"], target["left_elbow"]
    mid = np.round((new_wrist + new_elbow) / 2).astype(int)
    assert out[mid[1], mid[0], 2] > 150 and out[mid[1], mid[0], 0] < 100
    # where the forearm hung there is no blue any more (filled from the background)
    old_mid = np.round((pose["left_wrist"] + pose["left_elbow"]) / 2).astype(int)
    assert not (out[old_mid[1], old_mid[0], 2] > 180 and out[old_mid[1], old_mid[0], 1] < 80)
    assert result.fill_mask[old_mid[1], old_mid[0]]
    # the other arm, the legs and the far background are untouched (pinned by not moving)
    assert not result.changed[:, :40].any(), "the person's right side must not change"
    assert np.array_equal(out[150:, :], image[150:, :])


def test_a_hand_held_in_front_of_the_body_moves_with_the_arm() -> None:
    pose = standing_pose()
    # the left forearm bent across the body, the wrist over the torso
    pose = pose.moved("left_wrist", (pose["left_elbow"][0] - 14, pose["left_elbow"][1] + 9))
    image, mask = person_image(pose)
    scale = torso_size(pose.points)
    forearm = pose["left_wrist"] - pose["left_elbow"]
    hand = pose["left_wrist"] + forearm / np.linalg.norm(forearm) * 0.11 * scale
    magenta = (255, 0, 255)
    cv2.circle(image, tuple(np.round(hand).astype(int)), 3, magenta, -1)
    assert mask[int(round(hand[1])), int(round(hand[0]))] > 0  # on the torso: the torso part owned it before
    shoulder = pose["left_shoulder"]
    target = pose.moved("left_elbow", (shoulder[0] + 20, shoulder[1] - 14))
    out = repose(image, mask / 255.0, pose, target, telea).image
    new_forearm = target["left_wrist"] - target["left_elbow"]
    new_hand = np.round(target["left_wrist"] + new_forearm / np.linalg.norm(new_forearm) * 0.11 * scale).astype(int)
    old_hand = np.round(hand).astype(int)

    def is_magenta(y: int, x: int) -> bool:
        r, g, b = (int(v) for v in out[y, x])
        return r > 200 and b > 200 and g < 80

    assert is_magenta(new_hand[1], new_hand[0]), "the hand stayed behind"
    assert not is_magenta(old_hand[1], old_hand[0]), "a copy of the hand stayed at its old place"


def test_a_locked_wrist_is_a_pin_the_warp_keeps_still() -> None:
    pose = standing_pose()
    image, mask = person_image(pose)
    pose.locked[JOINT_INDEX["left_wrist"]] = True
    target = pose.moved("left_elbow", (pose["left_elbow"][0] + 12, pose["left_elbow"][1] - 4))
    assert np.array_equal(target["left_wrist"], pose["left_wrist"])
    transforms = part_transforms(pose, target)
    assert not np.allclose(transforms[2], np.eye(3))  # the upper arm moved
    wrist = np.round(pose["left_wrist"]).astype(int)
    result = repose(image, mask / 255.0, pose, target, telea)
    assert np.array_equal(result.image[wrist[1], wrist[0]], image[wrist[1], wrist[0]])


def test_repose_keeps_16_bit_grey_and_alpha() -> None:
    pose = standing_pose()
    image, mask = person_image(pose)
    target = pose.moved("right_knee", (pose["right_hip"][0] - 30, pose["right_hip"][1] + 20))
    rgba16 = np.concatenate([image, np.full(image.shape[:2] + (1,), 255, np.uint8)], axis=2).astype(np.uint16) * 257
    fill16 = lambda im, hole: np.stack([cv2.inpaint(np.ascontiguousarray(im[..., c]), hole.astype(np.uint8) * 255, 3,  # noqa: E731
                                                    cv2.INPAINT_TELEA) for c in range(im.shape[2])], axis=2)
    out = repose(rgba16, mask / 255.0, pose, target, fill16).image
    assert out.dtype == np.uint16 and out.shape == rgba16.shape and not np.array_equal(out, rgba16)


# -- the model, the tool, the CLI ----------------------------------------------------------------------------

TINY_WIDTHS = (8, 8, 8, 8, 8)


def _install_tiny_pose_model(folder: Path, seed: int = 0) -> str:
    torch.manual_seed(seed)
    model = PoseNet(len(JOINTS), TINY_WIDTHS, decoder=8)
    card = {"name": "tiny-pose", "title": "Tiny pose", "task": "pose",
            "architecture": {"name": "posenet", "params": {"joints": 17, "widths": list(TINY_WIDTHS), "decoder": 8}},
            "multiple_of": model.multiple_of, "tiling": False, "input": {"height": 192, "width": 128, "stride": 2}}
    ckpt.export_safetensors(model, folder / "tiny-pose.safetensors", card)
    configure_registry(folder)
    return "tiny-pose"


def test_posenet_gives_heatmaps_and_a_mask_at_half_resolution() -> None:
    model = PoseNet(17, TINY_WIDTHS, decoder=8)
    assert model.multiple_of == 32
    out = model(torch.rand(2, 3, 96, 64))
    assert out.shape == (2, 18, 48, 32)


def test_inference_reads_a_mirrored_view_as_the_mirrored_person() -> None:
    # An untrained network is not mirror-symmetric; the flip test averages the view with its mirror image, so the
    # mirrored view must give exactly the mirrored heatmaps (left and right swapped) and mask.
    torch.manual_seed(3)
    model = PoseNet(len(JOINTS), TINY_WIDTHS, decoder=8).eval()
    view = np.random.default_rng(1).integers(0, 256, (192, 128, 3), dtype=np.uint8)
    heat, mask = pose_tool._infer(model, view, torch.device("cpu"), torch.float32)
    heat_m, mask_m = pose_tool._infer(model, np.ascontiguousarray(view[:, ::-1]), torch.device("cpu"), torch.float32)
    assert heat.shape == (17, 96, 64) and mask.shape == (96, 64)
    np.testing.assert_allclose(heat_m, heat[list(FLIP_ORDER)][:, :, ::-1], atol=1e-5)
    np.testing.assert_allclose(mask_m, mask[:, ::-1], atol=1e-5)
    with torch.inference_mode():
        plain = model(torch.from_numpy(view).permute(2, 0, 1)[None].float().div(255))[0, :-1].numpy()
    assert np.abs(plain - heat).max() > 1e-3  # the average is not the plain view's heatmaps


def test_detect_returns_a_pose_and_mask_for_any_photo_shape(tmp_path: Path) -> None:
    name = _install_tiny_pose_model(tmp_path / "models")
    for shape in ((90, 300, 3), (301, 77, 4), (64, 64, 1)):
        image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
        found = pose_tool.detect(image, name)
        assert found.person.shape == shape[:2] and found.person.dtype == np.float32
        assert 0.0 <= found.person.min() and found.person.max() <= 1.0
        assert found.pose.points.shape == (17, 2) and found.pose.image_size == (shape[1], shape[0])
        assert np.isfinite(found.pose.points).all()


def test_the_tool_moves_the_person_through_the_painted_mask(tmp_path: Path) -> None:
    _install_tiny_pose_model(tmp_path / "models")
    pose = standing_pose()
    image, mask = person_image(pose)
    target = pose.moved("left_knee", (pose["left_hip"][0] + 30, pose["left_hip"][1] + 15))
    params = pose_tool.PoseParams(model="tiny-pose", source=pose, target=target, use_mask=True,
                                  fill_model="opencv-telea")
    out = pose_tool.run(image, params, mask)
    assert out.shape == image.shape and not np.array_equal(out, image)
    assert np.array_equal(out[:, :30], image[:, :30])
    with pytest.raises(ValueError, match="no target pose"):
        pose_tool.run(image, pose_tool.PoseParams(model="tiny-pose", source=pose), mask)


def test_best_fill_model_falls_back_to_opencv_without_a_recommended_learned_one(tmp_path: Path, monkeypatch) -> None:
    from ganstudio.models.arch.inpaint_gated import GatedInpaintNet
    from ganstudio.train.checkpoint import export_safetensors

    (tmp_path / "pretrained").mkdir()
    monkeypatch.setenv("GANSTUDIO_PRETRAINED", str(tmp_path / "pretrained"))
    configure_registry(tmp_path / "models")
    assert pose_tool.best_fill_model() == "opencv-telea"
    card = {"name": "fill", "title": "Fill", "task": "inpaint",
            "architecture": {"name": "inpaint_gated", "params": {"channels": 4, "levels": 2, "dilations": [2]}}}
    export_safetensors(GatedInpaintNet(4, 2, (2,)), tmp_path / "models" / "fill.safetensors",
                       {**card, "pose_fill": {"recommended": False}})
    configure_registry(tmp_path / "models")
    assert pose_tool.best_fill_model() == "opencv-telea"
    export_safetensors(GatedInpaintNet(4, 2, (2,)), tmp_path / "models" / "fill.safetensors", card)
    configure_registry(tmp_path / "models")
    assert pose_tool.best_fill_model() == "fill"


def test_cli_detect_then_apply_the_edited_pose(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _install_tiny_pose_model(tmp_path / "models")
    pose = standing_pose()
    image, mask = person_image(pose)
    photo, mask_file = tmp_path / "person.png", tmp_path / "mask.png"
    write_image(photo, image)
    write_image(mask_file, mask[..., None])
    detected = tmp_path / "detected.json"
    assert cli_main(["pose", "detect", str(photo), "-o", str(detected), "--model", "tiny-pose",
                     "--mask", str(tmp_path / "found.png")]) == 0
    assert Pose.load(detected).image_size == (128, 200)
    assert read_image(tmp_path / "found.png").pixels.shape[:2] == (200, 128)
    assert cli_main(["pose", "detect", str(photo), "-o", str(detected), "--model", "tiny-pose"]) == 2
    assert "exists" in capsys.readouterr().err

    source, target = tmp_path / "source.json", tmp_path / "target.json"
    pose.save(source)
    pose.moved("left_elbow", (pose["left_shoulder"][0] + 26, pose["left_shoulder"][1])).save(target)
    out = tmp_path / "out.png"
    assert cli_main(["apply", "pose", str(photo), "-o", str(out), "--model", "tiny-pose", "--pose", str(target),
                     "--source-pose", str(source), "--mask", str(mask_file), "-q"]) == 0
    result = read_image(out).pixels
    assert result.shape == image.shape and not np.array_equal(result, image)
    assert cli_main(["apply", "pose", str(photo), "-o", str(tmp_path / "x.png"), "--model", "tiny-pose"]) == 2
    assert "--pose" in capsys.readouterr().err
    assert cli_main(["apply", "superres", str(photo), "-o", str(tmp_path / "y.png"), "--pose", str(target)]) == 2


def test_pose_is_not_offered_in_a_batch() -> None:
    from ganstudio.batch import BatchError, ChainStep

    with pytest.raises(BatchError, match="one photo at a time"):
        ChainStep("pose").build_params()


# -- training ------------------------------------------------------------------------------------------------


def _people_folder(root: Path, count: int = 12) -> Path:
    folder = root / "people"
    (folder / "photos").mkdir(parents=True)
    (folder / "masks").mkdir()
    landmarks = {}
    for i in range(count):
        pose = standing_pose(cx=64 + (i % 3) * 4, top=30)
        image, mask = person_image(pose, height=256, width=160)
        write_image(folder / "photos" / f"{i:04d}.jpg", image)
        if i % 2 == 0:
            write_image(folder / "masks" / f"{i:04d}.png", mask[..., None])
        marks = np.zeros((33, 3))
        marks[list(MEDIAPIPE_TO_JOINTS), :2] = pose.points / (160, 256)
        marks[list(MEDIAPIPE_TO_JOINTS), 2] = 1.0
        landmarks[f"{i:04d}.jpg"] = marks.tolist()
    (folder / "pose_landmarks.json").write_text(json.dumps(landmarks))
    return folder


def test_training_validates_checkpoints_resumes_and_exports(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    data = _people_folder(tmp_path)
    run = tmp_path / "run"
    tiny = dict(widths=(8, 8, 8, 8, 8), decoder=8, batch=4, val_images=3, height=96, width=64)
    config = PoseConfig(data=str(data), out=str(run), steps=3, val_every=2, sample_every=2, checkpoint_every=2,
                        log_every=1, **tiny)
    assert train(config, events=EventWriter()) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    start = next(e for e in events if e["event"] == "start")
    assert start["train_images"] == 9 and start["val_images"] == 3
    validation = next(e for e in events if e["event"] == "validation")
    assert 0.0 <= validation["pck@0.1"] <= 1.0 and "mask_iou" in validation
    assert [e["step"] for e in events if e["event"] == "step"] == [1, 2, 3]
    assert any(e["event"] == "sample" for e in events)
    saved = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))
    assert saved["step"] == 3

    more = PoseConfig(data=str(data), out=str(run), steps=5, val_every=100, checkpoint_every=100, log_every=1,
                      **tiny)
    assert train(more, resume=True, events=EventWriter()) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["step"] for e in events if e["event"] == "step"] == [4, 5]
    final = ckpt.load_checkpoint(ckpt.latest_checkpoint(run))
    assert any(not torch.equal(final["model"][k], v) for k, v in saved["model"].items() if v.is_floating_point())

    models = tmp_path / "models"
    card_path = export(run, models / "pose-net.safetensors", "pose-net", "Pose", machine="test")
    card = json.loads(card_path.read_text())
    assert card["task"] == "pose" and card["input"] == {"height": 96, "width": 64, "stride": 2,
                                                         "outputs": card["input"]["outputs"]}
    assert "research" in card["data"]["licence"]
    configure_registry(models)
    model_cache.clear()
    found = pose_tool.detect(person_image(standing_pose())[0], "pose-net")
    assert found.pose.points.shape == (17, 2)


def test_the_matte_moves_a_blurred_mask_edge_onto_the_photos_edge() -> None:
    from ganstudio.pose.matte import refine_mask

    rgb = np.full((60, 80, 3), 40, np.uint8)
    rgb[:, 37:] = 220  # the person is the bright right part, its edge at x = 37
    truth = np.zeros((60, 80), bool)
    truth[:, 37:] = True
    coarse = np.zeros((60, 80), np.float32)
    coarse[:, 42:] = 1.0  # a mask whose edge landed 5 px off ...
    coarse = cv2.GaussianBlur(coarse, (0, 0), 4.0)  # ... and soft, as an enlarged low-resolution mask is
    refined = refine_mask(rgb, coarse, radius=8)
    errors = lambda m: int(((m > 0.5) != truth).sum())  # noqa: E731
    assert errors(refined) < errors(coarse) // 2
    assert refined.dtype == np.float32 and 0.0 <= refined.min() and refined.max() <= 1.0
    assert np.array_equal(refine_mask(rgb, coarse, radius=0), coarse)


def test_loss_window_sends_means_every_n_steps_and_at_the_last() -> None:
    import io

    from ganstudio.train.common import LossWindow

    stream = io.StringIO()
    log = LossWindow(EventWriter(stream), every=2, total=5)
    sent = [log.add(step, {"a": float(step)}, lr=0.1) for step in range(1, 6)]
    assert sent[0] is None and sent[1] == {"a": 1.5} and sent[2] is None and sent[3] == {"a": 3.5}
    assert sent[4] == {"a": 5.0}, "the last step always reports, with the mean of its own window"
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["step"] for e in events] == [2, 4, 5] and all(e["it_per_s"] > 0 for e in events)


def test_training_repose_swings_a_limb_and_moves_its_labels_with_it() -> None:
    from ganstudio.train.people import random_repose

    pose = standing_pose()
    image, mask = person_image(pose)
    half_mask = cv2.resize(mask, (64, 100), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(5)
    out, joints, new_mask = random_repose(image, pose.points.copy(), half_mask, rng)
    moved = np.linalg.norm(joints - pose.points, axis=1) > 1.0
    assert moved.any() and not moved[[JOINT_INDEX[n] for n in ("nose", "left_hip", "right_hip")]].any()
    assert not np.array_equal(out, image) and out.shape == image.shape
    assert new_mask.shape == half_mask.shape and not np.array_equal(new_mask, half_mask)
    # the image changed where a moved joint went: pixels around it now belong to the person
    for index in np.flatnonzero(moved):
        x, y = np.clip(np.round(joints[index] / 2).astype(int), 0, [63, 99])
        assert new_mask[y, x] > 64, f"the mask must follow {JOINTS[index]}"


def test_training_repose_can_clean_its_views_with_the_refiner_inside_the_edit_but_not_the_fill(tmp_path: Path) -> None:
    from test_pose_refiner import TINY, _randomised

    from ganstudio.models.arch.pose_refiner import PoseRefiner
    from ganstudio.pose.refine import edit_region
    from ganstudio.train.people import load_refiner, person_weight, random_repose, random_swing, telea_fill

    pose = standing_pose()
    image, mask = person_image(pose)
    half_mask = cv2.resize(mask, (64, 100), interpolation=cv2.INTER_AREA)
    weights = tmp_path / "refiner.safetensors"
    ckpt.export_safetensors(_randomised(PoseRefiner(**TINY)), weights,
                            {"name": "refiner", "task": "pose_refine",
                             "architecture": {"name": "pose_refiner", "params": TINY}})
    refiner = load_refiner(str(weights))
    plain, plain_joints, _ = random_repose(image, pose.points.copy(), half_mask, np.random.default_rng(5))
    cleaned, joints, _ = random_repose(image, pose.points.copy(), half_mask, np.random.default_rng(5), refiner)
    np.testing.assert_array_equal(joints, plain_joints)  # the same swing: only the pixels are cleaned
    assert cleaned.shape == plain.shape and cleaned.dtype == np.uint8
    assert not np.array_equal(cleaned, plain), "the refiner ran"
    source = Pose(pose.points.copy())
    target = random_swing(source, np.random.default_rng(5))  # the draw random_repose made
    warp = repose(image, person_weight(half_mask, *image.shape[:2]), source, target, telea_fill)
    region = edit_region(warp.changed)
    assert region.any() and (region == 0).any()
    assert np.array_equal(cleaned[region == 0], plain[region == 0]), "pixels the edit left alone stay as they were"
    uncovered = warp.fill_mask & (warp.person_alpha < 0.5)
    assert uncovered.any() and np.array_equal(cleaned[uncovered], plain[uncovered]), "as the tool: not the fill"

    ckpt.export_safetensors(PoseNet(widths=(8, 8, 8, 8, 8), decoder=8), tmp_path / "detector.safetensors",
                            {"name": "detector", "architecture": {"name": "posenet", "params": {}}})
    with pytest.raises(ValueError, match="not a pose refiner"):
        load_refiner(str(tmp_path / "detector.safetensors"))


def test_a_known_person_matte_skips_detection_and_must_fit_the_image(tmp_path: Path, monkeypatch) -> None:
    _install_tiny_pose_model(tmp_path / "models")
    pose = standing_pose()
    image, mask = person_image(pose)
    target = pose.moved("left_knee", (pose["left_hip"][0] + 30, pose["left_hip"][1] + 15))
    person = (mask > 127).astype(np.float32)

    def no_detection(*args, **kwargs):
        raise AssertionError("the matte was given: no detection")

    monkeypatch.setattr(pose_tool, "detect", no_detection)
    params = pose_tool.PoseParams(model="tiny-pose", source=pose, target=target, fill_model="opencv-telea",
                                  person=person)
    with_matte = pose_tool.run(image, params)
    by_mask = pose_tool.run(image, pose_tool.PoseParams(model="tiny-pose", source=pose, target=target,
                                                        fill_model="opencv-telea", use_mask=True), mask)
    np.testing.assert_array_equal(with_matte, by_mask)
    with pytest.raises(ValueError, match="detect the pose again"):
        pose_tool.run(image, pose_tool.PoseParams(model="tiny-pose", source=pose, target=target,
                                                  person=person[:-1]))


def test_parts_moved_without_their_joints_found_are_named_and_placed_joints_count() -> None:
    from ganstudio.pose.skeleton import FOUND, found_text, unfound_moves

    pose = standing_pose()
    legs = [JOINT_INDEX[j] for j in JOINTS if j.endswith(("hip", "knee", "ankle"))]
    pose.confidence[legs] = FOUND / 4  # a waist-up portrait: no legs in it
    assert unfound_moves(pose, pose.moved("right_wrist", (90.0, 20.0))) == []
    assert unfound_moves(pose, pose.moved("left_knee", (40.0, 150.0))) == ["left leg"]
    # turning about an unfound joint needs it found too; a joint moved less than a pixel is not moved
    pose.confidence[JOINT_INDEX["left_elbow"]] = 0.0
    assert unfound_moves(pose, pose.moved("left_wrist", (10.0, 60.0))) == ["left arm"]
    assert unfound_moves(pose, pose.moved("left_wrist", tuple(pose["left_wrist"] + 0.5))) == []
    pose.confidence[JOINT_INDEX["left_elbow"]] = 1.0  # placed by hand
    assert unfound_moves(pose, pose.moved("left_wrist", (10.0, 60.0))) == []
    assert found_text(pose).startswith("Found the head and both arms; not found: both legs (drawn faint")
    pose.confidence[:] = 0.0
    assert found_text(pose).startswith("No person found")


def test_the_tool_refuses_an_edit_of_a_limb_it_did_not_find(tmp_path: Path) -> None:
    model = _install_tiny_pose_model(tmp_path)
    image, _ = person_image(standing_pose())
    source = standing_pose()
    source.confidence[JOINT_INDEX["right_elbow"]] = 0.01
    params = pose_tool.PoseParams(model=model, source=source, target=source.moved("right_elbow", (20.0, 60.0)),
                                  fill_model="opencv-telea", refine=False)
    with pytest.raises(ValueError, match="The right arm was not found: place its joints by hand or lock it"):
        pose_tool.run(image, params)
    # the same edit of an arm that was found goes through
    params.source = standing_pose()
    params.target = params.source.moved("right_elbow", (20.0, 60.0))
    assert not np.array_equal(pose_tool.run(image, params), image)


def test_the_first_pass_splits_people_and_picks_the_largest_or_the_clicked_one() -> None:
    mask = np.zeros((40, 60), np.float32)
    mask[5:35, 5:20] = 1.0  # a large person
    mask[10:30, 40:50] = 1.0  # a smaller one
    mask[2:3, 55:56] = 1.0  # a speck: not a person
    mask[36:39, 8:16] = 1.0  # a separate blob just below the large one (a hand, a bag): the same person
    people = pose_tool._people(mask)
    assert len(people) == 2 and people[0][0][20, 10] and people[0][0][37, 10] and people[1][0][20, 45]
    assert people[0][1] == (5, 5, 20, 39)
    assert pose_tool._chosen(people, None) == 0
    assert pose_tool._chosen(people, np.array([45.0, 20.0])) == 1  # inside the smaller one
    assert pose_tool._chosen(people, np.array([55.0, 38.0])) == 1  # nearest to it
