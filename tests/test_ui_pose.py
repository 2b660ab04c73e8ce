"""The Pose tool in the editor through pytest-qt, offscreen: detect in the worker, the skeleton overlay, dragging
joints at two zooms (children follow, Shift moves one joint, locked joints stay), undo, pose files, and Apply as
one undo step."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox, QPushButton

from ganstudio.models import configure_registry
from ganstudio.models.arch.posenet import PoseNet
from ganstudio.pose import JOINT_INDEX, JOINTS, Pose
from ganstudio.tools import TOOLS
from ganstudio.train.checkpoint import export_safetensors
from ganstudio.tools import pose as pose_tool
from ganstudio.ui.pose_overlay import LEFT_COLOUR, RIGHT_COLOUR

TIMEOUT_MS = 20_000
TEST_MODEL = "test-pose"
WIDTH, HEIGHT = 128, 160
GREY = (128, 128, 128)

#: A person facing the camera (their left is the image's right), in a 128 x 160 image.
STANDING = {
    "nose": (64, 30), "left_eye": (68, 27), "right_eye": (60, 27), "left_ear": (73, 30), "right_ear": (55, 30),
    "left_shoulder": (80, 50), "right_shoulder": (48, 50), "left_elbow": (88, 75), "right_elbow": (40, 75),
    "left_wrist": (92, 100), "right_wrist": (36, 100), "left_hip": (74, 100), "right_hip": (54, 100),
    "left_knee": (76, 128), "right_knee": (52, 128), "left_ankle": (76, 152), "right_ankle": (52, 152),
}


def standing_pose() -> Pose:
    return Pose(np.array([STANDING[name] for name in JOINTS], np.float64), image_size=(WIDTH, HEIGHT))


def _person_image(tmp_path: Path, name: str = "person.png") -> tuple[Path, np.ndarray]:
    """A grey photo with a dark stick figure in :data:`STANDING`, and the figure's mask."""
    from PIL import Image

    pixels = np.full((HEIGHT, WIDTH, 3), GREY, np.uint8)
    torso = np.array([STANDING[n] for n in ("left_shoulder", "right_shoulder", "right_hip", "left_hip")], np.int32)
    cv2.fillConvexPoly(pixels, torso, (60, 40, 30))
    cv2.circle(pixels, STANDING["nose"], 11, (200, 150, 120), -1)
    for a, b in (("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"), ("right_shoulder", "right_elbow"),
                 ("right_elbow", "right_wrist"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
                 ("right_hip", "right_knee"), ("right_knee", "right_ankle")):
        cv2.line(pixels, STANDING[a], STANDING[b], (50, 60, 150), 7)
    path = tmp_path / name
    Image.fromarray(pixels).save(path)
    mask = np.where(np.any(pixels != GREY, axis=2), 255, 0).astype(np.uint8)
    return path, cv2.dilate(mask, np.ones((5, 5), np.uint8))


@pytest.fixture
def pose_window(window):
    """The window with a tiny random pose network installed in the user's model folder and the Pose tool picked."""
    torch.manual_seed(0)
    model = PoseNet(widths=(8, 8, 8, 8, 8), decoder=8)
    folder = Path(os.environ["GANSTUDIO_MODEL_DIR"])
    card = {"name": TEST_MODEL, "title": "Test pose", "task": "pose", "scale": 1,
            "architecture": {"name": "posenet", "params": {"joints": 17, "widths": [8, 8, 8, 8, 8], "decoder": 8}},
            "multiple_of": 32, "tiling": False, "input": {"height": 192, "width": 128, "stride": 2}}
    export_safetensors(model, folder / f"{TEST_MODEL}.safetensors", card)
    configure_registry(folder)
    window.tools_panel.refresh_models()
    window.tools_panel.select_tool("pose")
    page = window.tools_panel.pose_page
    page.editor("model").setCurrentIndex(page.editor("model").findData(TEST_MODEL))
    return window


def _open_posed(window, tmp_path, pose: Pose | None = None):
    path, mask = _person_image(tmp_path)
    document = window.open_file(path)
    pose = pose or standing_pose()
    document.set_pose(pose, pose.copy(), "Detect pose")
    return document, window.current_canvas, mask


def _view(canvas, point) -> QPoint:
    return canvas.mapFromScene(QPointF(float(point[0]), float(point[1])))


def _send_move(canvas, pos: QPoint, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    # QTest's mouseMove takes no modifiers, and Shift during the drag is what matters here.
    viewport = canvas.viewport()
    event = QMouseEvent(QEvent.Type.MouseMove, QPointF(pos), QPointF(viewport.mapToGlobal(pos)),
                        Qt.MouseButton.NoButton, Qt.MouseButton.LeftButton, modifiers)
    QApplication.sendEvent(viewport, event)


def _drag(qtbot, canvas, start, end, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """Drag with the left button from image point ``start`` to ``end``, in a few steps."""
    viewport = canvas.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, modifiers, _view(canvas, start))
    start, end = np.asarray(start, float), np.asarray(end, float)
    for fraction in (0.3, 0.7, 1.0):
        _send_move(canvas, _view(canvas, start + (end - start) * fraction), modifiers)
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, modifiers, _view(canvas, end))


def _show(canvas, zoom: float, point) -> None:
    canvas.set_zoom(zoom)
    canvas.centerOn(QPointF(*map(float, point)))


def _messages(window) -> list[str]:
    return [box.text() for box in window.findChildren(QMessageBox) if box.isVisible()]


def _top_text(document) -> str:
    stack = document.undo_stack
    return stack.text(stack.index() - 1)


def test_detect_runs_in_the_worker_and_shows_the_skeleton(pose_window, tmp_path, qtbot, monkeypatch):
    window = pose_window
    window.resize(1280, 800)  # a laptop screen: the Tools dock shares the height with History
    path, _ = _person_image(tmp_path)
    document = window.open_file(path)
    canvas = window.current_canvas
    page = window.tools_panel.pose_page
    assert canvas.pose_mode and not canvas.pose_overlay.isVisible()  # no pose yet
    assert not window.tools_panel.run_button.isEnabled()
    threads = []
    real_detect = pose_tool.detect

    def spy(*args, **kwargs):
        threads.append(threading.current_thread())
        return real_detect(*args, **kwargs)

    monkeypatch.setattr(pose_tool, "detect", spy)
    with qtbot.waitSignal(window.jobs.finished, timeout=TIMEOUT_MS):
        qtbot.mouseClick(page.detect_button, Qt.MouseButton.LeftButton)
        assert document.busy and not page.detect_button.isEnabled()
    assert threads and threads[0] is not threading.main_thread()
    pose = document.pose
    assert pose is not None and pose.points.shape == (17, 2) and np.isfinite(pose.points).all()
    assert pose.image_size == (WIDTH, HEIGHT)
    np.testing.assert_array_equal(document.pose_source.points, pose.points)
    assert _top_text(document) == "Detect pose" and document.pixels.shape == (HEIGHT, WIDTH, 3)
    overlay = canvas.pose_overlay
    assert overlay.isVisible() and overlay.target is pose
    # nothing moved yet: Apply waits, and says why
    assert not window.tools_panel.run_button.isEnabled() and window.tools_panel.run_button.text() == "Apply"
    # the longer help under the buttons takes room of its own: no button is squashed below its height
    qtbot.wait(50)
    for button in (page.detect_button, page.reset_button, page.lock_button, page.load_button, page.save_button,
                   window.tools_panel.run_button):
        assert button.height() >= button.sizeHint().height(), button.text()
    # the skeleton belongs to the Pose tool: another tool hides it, coming back shows it again
    window.tools_panel.select_tool("inpaint")
    assert not overlay.isVisible() and not canvas.pose_mode
    window.tools_panel.select_tool("pose")
    assert overlay.isVisible()
    # the detection is undoable like any other step
    window.undo_action.trigger()
    assert document.pose is None and not overlay.isVisible()


def _colour_at(canvas, point, offset=(0, 0)) -> np.ndarray:
    image = canvas.viewport().grab().toImage()
    view = _view(canvas, point) + QPoint(*offset)
    colour = QColor(image.pixel(view))
    return np.array([colour.red(), colour.green(), colour.blue()], float)


def _near(colour: np.ndarray, expected: QColor, tolerance: float = 40) -> bool:
    return float(np.abs(colour - [expected.red(), expected.green(), expected.blue()]).max()) <= tolerance


@pytest.mark.parametrize("zoom", [1.0, 3.0])
def test_the_overlay_draws_sides_in_their_colours_at_a_constant_screen_size(pose_window, make_image, zoom):
    window = pose_window
    path, _ = make_image(height=HEIGHT, width=WIDTH)
    document = window.open_file(path)
    document.apply_result(np.full((HEIGHT, WIDTH, 3), GREY, np.uint8), "Grey")  # a plain background to read
    pose = standing_pose()
    pose.confidence[JOINT_INDEX["right_ankle"]] = 0.05
    pose.locked[JOINT_INDEX["left_ankle"]] = True
    document.set_pose(pose, pose.copy(), "Detect pose")
    canvas = window.current_canvas
    _show(canvas, zoom, STANDING["left_wrist"])
    # a joint is a disc of the same few screen pixels at every zoom: inside at 3 px, clear of it at 12 px
    # (straight below the wrist, away from its bone)
    for joint, colour in (("left_wrist", LEFT_COLOUR), ("right_wrist", RIGHT_COLOUR)):
        assert _near(_colour_at(canvas, STANDING[joint]), colour), joint
        assert _near(_colour_at(canvas, STANDING[joint], (0, 3)), colour), joint
        assert _near(_colour_at(canvas, STANDING[joint], (0, 12)), QColor(*GREY), 2), joint
    _show(canvas, zoom, STANDING["left_ankle"])
    # an unsure joint is faint: nearer the photo than the colour
    faint = _colour_at(canvas, STANDING["right_ankle"])
    assert not _near(faint, RIGHT_COLOUR) and not _near(faint, QColor(*GREY), 2)
    # a locked joint is a square: its corner is filled where a disc's would not be
    assert _near(_colour_at(canvas, STANDING["left_ankle"], (4, 4)), LEFT_COLOUR)
    assert not _near(_colour_at(canvas, STANDING["right_knee"], (4, 4)), RIGHT_COLOUR)
    window.tools_panel.select_tool("superres")
    assert _near(_colour_at(canvas, STANDING["left_ankle"]), QColor(*GREY), 2)


@pytest.mark.parametrize("zoom", [1.0, 2.5])
def test_dragging_a_joint_carries_its_child(pose_window, tmp_path, qtbot, zoom):
    window = pose_window
    document, canvas, _ = _open_posed(window, tmp_path)
    start = document.pose
    _show(canvas, zoom, STANDING["left_elbow"])
    elbow, wrist = np.array(STANDING["left_elbow"], float), np.array(STANDING["left_wrist"], float)
    goal = elbow + (14, -9)
    _drag(qtbot, canvas, elbow, goal)
    moved = document.pose
    assert np.abs(moved["left_elbow"] - goal).max() <= 1.0 / zoom + 1e-6
    # the forearm turned with the elbow: the wrist is where Pose.moved puts it, well away from where it was
    expected = start.moved("left_elbow", tuple(moved["left_elbow"]))
    np.testing.assert_allclose(moved["left_wrist"], expected["left_wrist"], atol=1e-6)
    assert np.linalg.norm(moved["left_wrist"] - wrist) > 8
    others = [JOINT_INDEX[n] for n in JOINTS if n not in ("left_elbow", "left_wrist")]
    np.testing.assert_array_equal(moved.points[others], start.points[others])
    np.testing.assert_array_equal(document.pose_source.points, start.points)  # the person has not moved yet
    assert _top_text(document) == "Move left elbow" and document.selected_joint == "left_elbow"
    assert canvas.pose_overlay.target is moved


@pytest.mark.parametrize("zoom", [1.0, 2.5])
def test_shift_drag_moves_only_that_joint(pose_window, tmp_path, qtbot, zoom):
    window = pose_window
    document, canvas, _ = _open_posed(window, tmp_path)
    start = document.pose
    _show(canvas, zoom, STANDING["right_elbow"])
    elbow = np.array(STANDING["right_elbow"], float)
    _drag(qtbot, canvas, elbow, elbow + (-10, 8), Qt.KeyboardModifier.ShiftModifier)
    moved = document.pose
    assert np.abs(moved["right_elbow"] - (elbow + (-10, 8))).max() <= 1.0 / zoom + 1e-6
    others = [i for i in range(len(JOINTS)) if i != JOINT_INDEX["right_elbow"]]
    np.testing.assert_array_equal(moved.points[others], start.points[others])  # the wrist stayed


@pytest.mark.parametrize("zoom", [0.5, 4.0])
def test_joints_are_grabbed_within_the_same_screen_distance_at_any_zoom(pose_window, tmp_path, qtbot, zoom):
    window = pose_window
    document, canvas, _ = _open_posed(window, tmp_path)
    _show(canvas, zoom, STANDING["left_ankle"])
    ankle = _view(canvas, STANDING["left_ankle"])
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=ankle + QPoint(0, 18))
    assert document.selected_joint is None
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=ankle + QPoint(0, 8))
    assert document.selected_joint == "left_ankle"


def test_the_mask_brush_paints_over_joints_instead_of_grabbing_them(pose_window, tmp_path, qtbot):
    window = pose_window
    document, canvas, _ = _open_posed(window, tmp_path)
    window.brush_action.trigger()
    start = document.pose
    _drag(qtbot, canvas, STANDING["left_wrist"], (110, 110))
    assert document.pose is start and document.mask[100, 92] == 255


def test_a_click_selects_and_a_locked_joint_stays(pose_window, tmp_path, qtbot):
    window = pose_window
    document, canvas, _ = _open_posed(window, tmp_path)
    page = window.tools_panel.pose_page
    assert not page.lock_button.isEnabled()  # nothing selected
    wrist = STANDING["left_wrist"]
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=_view(canvas, wrist))
    assert document.selected_joint == "left_wrist" and _top_text(document) == "Detect pose"  # a click moves nothing
    assert page.lock_button.isEnabled() and page.lock_button.text() == "Lock left wrist"
    qtbot.mouseClick(page.lock_button, Qt.MouseButton.LeftButton)
    assert document.pose.locked[JOINT_INDEX["left_wrist"]] and _top_text(document) == "Lock left wrist"
    assert page.lock_button.text() == "Unlock left wrist"
    count = document.undo_stack.count()
    _drag(qtbot, canvas, wrist, (wrist[0] + 15, wrist[1] + 5))
    np.testing.assert_array_equal(document.pose["left_wrist"], wrist)
    assert document.undo_stack.count() == count
    # its parent still moves, and the locked wrist stays behind instead of following
    _drag(qtbot, canvas, STANDING["left_elbow"], (100, 70))
    np.testing.assert_array_equal(document.pose["left_wrist"], wrist)
    assert np.abs(document.pose["left_elbow"] - (100, 70)).max() <= 1.0
    # unlocking is a step too
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=_view(canvas, wrist))
    qtbot.mouseClick(page.lock_button, Qt.MouseButton.LeftButton)
    assert not document.pose.locked.any() and _top_text(document) == "Unlock left wrist"


def test_a_drag_undoes_and_redoes(pose_window, tmp_path, qtbot):
    window = pose_window
    document, canvas, _ = _open_posed(window, tmp_path)
    start = document.pose
    _drag(qtbot, canvas, STANDING["right_knee"], (40, 120))
    moved = document.pose
    assert "Move right knee" in window.undo_action.text()
    window.undo_action.trigger()
    assert document.pose is start and canvas.pose_overlay.target is start
    window.redo_action.trigger()
    assert document.pose is moved and canvas.pose_overlay.target is moved
    assert np.abs(moved["right_knee"] - (40, 120)).max() <= 1.0


def test_space_drag_pans_over_a_joint_and_the_wheel_zooms(pose_window, tmp_path, qtbot):
    window = pose_window
    document, canvas, _ = _open_posed(window, tmp_path)
    _show(canvas, 16.0, STANDING["nose"])
    start_scroll = canvas.horizontalScrollBar().value()
    viewport = canvas.viewport()
    nose = _view(canvas, STANDING["nose"])
    qtbot.keyPress(canvas, Qt.Key.Key_Space)
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=nose)
    qtbot.mouseMove(viewport, nose + QPoint(-40, 0))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=nose + QPoint(-40, 0))
    qtbot.keyRelease(canvas, Qt.Key.Key_Space)
    assert canvas.horizontalScrollBar().value() == start_scroll + 40
    np.testing.assert_array_equal(document.pose["nose"], STANDING["nose"])
    zoom = canvas.zoom
    event = QWheelEvent(QPointF(50, 50), QPointF(viewport.mapToGlobal(QPoint(50, 50))), QPoint(0, 0),
                        QPoint(0, -120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(viewport, event)
    assert canvas.zoom < zoom


def test_save_and_load_pose_round_trip(pose_window, tmp_path, qtbot, monkeypatch):
    window = pose_window
    document, canvas, _ = _open_posed(window, tmp_path)
    page = window.tools_panel.pose_page
    _drag(qtbot, canvas, STANDING["left_wrist"], (110, 60))
    document.selected_joint = "right_ankle"
    page.toggle_lock()
    saved = document.pose
    target = tmp_path / "raised"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    qtbot.mouseClick(page.save_button, Qt.MouseButton.LeftButton)
    assert (tmp_path / "raised.json").is_file()
    qtbot.mouseClick(page.reset_button, Qt.MouseButton.LeftButton)
    np.testing.assert_array_equal(document.pose.points, document.pose_source.points)
    assert _top_text(document) == "Reset pose" and not window.tools_panel.run_button.isEnabled()
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(tmp_path / "raised.json"), ""))
    qtbot.mouseClick(page.load_button, Qt.MouseButton.LeftButton)
    assert _top_text(document) == "Load pose"
    np.testing.assert_allclose(document.pose.points, saved.points, atol=1e-3)
    np.testing.assert_array_equal(document.pose.locked, saved.locked)
    np.testing.assert_array_equal(document.pose_source.points, standing_pose().points)  # still the person's pose
    assert window.tools_panel.run_button.isEnabled()
    # a file that is not a pose is reported and changes nothing
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(tmp_path / "bad.json"), ""))
    before = document.undo_stack.count()
    qtbot.mouseClick(page.load_button, Qt.MouseButton.LeftButton)
    assert any("not a GAN Studio pose file" in text for text in _messages(window))
    assert document.undo_stack.count() == before


def test_apply_is_disabled_until_a_joint_moves(pose_window, tmp_path, qtbot):
    window = pose_window
    run = window.tools_panel.run_button
    path, _ = _person_image(tmp_path)
    document = window.open_file(path)
    assert not run.isEnabled()  # no pose
    pose = standing_pose()
    document.set_pose(pose, pose.copy(), "Detect pose")
    assert not run.isEnabled()  # nothing moved
    canvas = window.current_canvas
    _drag(qtbot, canvas, STANDING["right_wrist"], (20, 70))
    assert run.isEnabled()
    qtbot.mouseClick(window.tools_panel.pose_page.reset_button, Qt.MouseButton.LeftButton)
    assert not run.isEnabled()
    window.undo_action.trigger()
    assert run.isEnabled()


def test_apply_reposes_the_person_in_one_undo_step(pose_window, tmp_path, qtbot):
    window = pose_window
    document, canvas, mask = _open_posed(window, tmp_path)
    document.set_mask(mask, "Paint mask")
    source = document.pose
    target = source.moved("right_elbow", (22, 52)).moved("right_wrist", (14, 28))
    document.set_pose(source, target, "Move right wrist")
    page = window.tools_panel.pose_page
    page.editor("use_mask").setChecked(True)
    page.editor("fill_model").setCurrentIndex(page.editor("fill_model").findData("opencv-telea"))
    run = window.tools_panel.run_button
    assert run.isEnabled()
    before, count = document.pixels.copy(), document.undo_stack.count()
    with qtbot.waitSignal(window.jobs.finished, timeout=TIMEOUT_MS):
        qtbot.mouseClick(run, Qt.MouseButton.LeftButton)
    assert document.undo_stack.count() == count + 1 and _top_text(document) == "Pose"
    changed = np.any(document.pixels != before, axis=2)
    # the old forearm is gone (filled with background) and there is arm where the new one is
    old_forearm = np.array(STANDING["right_elbow"]) * 0.5 + np.array(STANDING["right_wrist"]) * 0.5
    assert changed[int(old_forearm[1]), int(old_forearm[0])]
    assert np.abs(document.pixels[int(old_forearm[1]), int(old_forearm[0])].astype(int) - GREY).max() < 40
    assert np.abs(document.pixels[40, 18].astype(int) - GREY).max() > 40
    # the person now stands in the target pose, which is where the next edit starts
    np.testing.assert_allclose(document.pose_source.points, target.points)
    np.testing.assert_allclose(document.pose.points, target.points)
    assert not run.isEnabled() and document.mask_is_empty
    window.undo_action.trigger()
    np.testing.assert_array_equal(document.pixels, before)
    assert document.pose_source is source and document.pose is target
    np.testing.assert_array_equal(document.mask, mask)
    assert run.isEnabled()


def test_each_image_keeps_its_own_pose_and_an_upscale_scales_it(pose_window, tmp_path, make_image):
    window = pose_window
    document, canvas, _ = _open_posed(window, tmp_path)
    other_path, pixels = make_image(height=HEIGHT, width=WIDTH, seed=3)
    other = window.open_file(other_path)
    assert other.pose is None and not window.current_canvas.pose_overlay.isVisible()
    assert not window.tools_panel.pose_page.save_button.isEnabled()
    window.tabs.setCurrentIndex(0)
    assert window.tools_panel.pose_page.save_button.isEnabled()
    document.apply_result(np.repeat(np.repeat(document.pixels, 2, 0), 2, 1), "Upscale")
    np.testing.assert_allclose(document.pose.points, standing_pose().points * 2)
    assert document.pose.image_size == (2 * WIDTH, 2 * HEIGHT)
    document.undo_stack.undo()
    np.testing.assert_allclose(document.pose.points, standing_pose().points)


def test_the_pose_tool_is_not_offered_for_batches(window):
    dialog = window.open_batch_dialog()
    add_menu = next(b for b in dialog.findChildren(QPushButton) if b.text() == "Add tool").menu()
    titles = [action.text() for action in add_menu.actions()]
    assert "Pose" in [spec.title for spec in TOOLS.values()]
    assert "Pose" not in titles and "Inpainting" in titles
    dialog.close()


def test_apply_uses_the_person_found_by_detect_until_the_image_changes(pose_window, tmp_path, qtbot, monkeypatch):
    from ganstudio.tools import pose as pose_tool

    window = pose_window
    path, _ = _person_image(tmp_path)
    document = window.open_file(path)
    page = window.tools_panel.pose_page
    with qtbot.waitSignal(window.jobs.finished, timeout=TIMEOUT_MS):
        qtbot.mouseClick(page.detect_button, Qt.MouseButton.LeftButton)
    model = page.params().model
    found = document.person_for(model)
    assert found is not None and found.shape == document.pixels.shape[:2]
    assert document.person_for("another-detector") is None

    detections = []
    real_detect = pose_tool.detect

    def counting_detect(*args, **kwargs):
        detections.append(args)
        return real_detect(*args, **kwargs)

    monkeypatch.setattr(pose_tool, "detect", counting_detect)
    page.editor("fill_model").setCurrentIndex(page.editor("fill_model").findData("opencv-telea"))
    source = document.pose.copy()
    source.confidence[:] = 1.0  # the test model's guesses, taken as found: Apply moves only joints it knows
    document.set_pose(source, source.moved("right_wrist", (14, 28)), "Move right wrist")
    assert page.params().person is found
    with qtbot.waitSignal(window.jobs.finished, timeout=TIMEOUT_MS):
        qtbot.mouseClick(window.tools_panel.run_button, Qt.MouseButton.LeftButton)
    assert detections == []  # Apply took Detect's matte
    # the image has changed: that matte no longer belongs to it, until an undo brings the old image back
    assert document.person_for(model) is None and page.params().person is None
    window.undo_action.trigger()
    assert document.person_for(model) is found


def test_refine_is_offered_only_with_a_refiner_installed_and_keeps_the_users_choice(no_shipped_models,
                                                                                      pose_window):
    from test_pose_refiner import TINY, _randomised
    from ganstudio.models.arch.pose_refiner import PoseRefiner

    page = pose_window.tools_panel.pose_page
    refine = page.editor("refine")
    assert not refine.isEnabled() and not refine.isChecked() and not page.params().refine
    assert "pose-refiner" in refine.toolTip()
    folder = Path(os.environ["GANSTUDIO_MODEL_DIR"])
    card = {"name": "tiny-refiner", "title": "Tiny refiner", "task": "pose_refine",
            "architecture": {"name": "pose_refiner", "params": TINY}, "tiling": False}
    export_safetensors(_randomised(PoseRefiner(**TINY)), folder / "tiny-refiner.safetensors", card)
    configure_registry(folder)
    pose_window.tools_panel.refresh_models()
    assert refine.isEnabled() and refine.isChecked() and page.params().refine
    assert "Tiny refiner" in refine.toolTip()
    refine.setChecked(False)
    pose_window.tools_panel.refresh_models()
    assert refine.isEnabled() and not refine.isChecked() and not page.params().refine


def test_apply_refuses_to_move_an_arm_that_was_not_found_until_it_is_placed_by_hand(pose_window, tmp_path, qtbot):
    """The portrait case: an arm the detector did not find is drawn faint, Apply says so instead of warping
    whatever lies there, and dragging a faint joint places it (the photo's pose and the target both), after
    which it counts as found."""
    window = pose_window
    guessed = standing_pose()
    for joint in ("right_elbow", "right_wrist"):
        guessed.confidence[JOINT_INDEX[joint]] = 0.05
        guessed.points[JOINT_INDEX[joint]] += (9, 6)  # the guess is off
    document, canvas, mask = _open_posed(window, tmp_path, guessed)
    page = window.tools_panel.pose_page
    page.editor("fill_model").setCurrentIndex(page.editor("fill_model").findData("opencv-telea"))
    document.set_mask(mask, "Paint mask")
    page.editor("use_mask").setChecked(True)
    _show(canvas, 1.0, STANDING["right_elbow"])

    # placing: the faint elbow dragged to where the elbow really is moves it in both poses, the wrist stays
    _drag(qtbot, canvas, guessed["right_elbow"], STANDING["right_elbow"])
    assert _top_text(document) == "Place right elbow"
    np.testing.assert_allclose(document.pose_source["right_elbow"], STANDING["right_elbow"], atol=1.0)
    np.testing.assert_allclose(document.pose["right_elbow"], document.pose_source["right_elbow"])
    np.testing.assert_array_equal(document.pose["right_wrist"], guessed["right_wrist"])
    assert document.pose_source.confidence[JOINT_INDEX["right_elbow"]] == 1.0 and not document.pose_edited

    # moving the placed elbow swings the wrist, whose place is still a guess: Apply is refused, naming the arm
    _drag(qtbot, canvas, document.pose["right_elbow"], np.array(STANDING["right_elbow"]) + (-8, -14))
    before = document.pixels.copy()
    run = window.tools_panel.run_button
    assert not run.isEnabled()
    assert page.run_hint() == "The right arm was not found: place its joints by hand or lock it."
    assert page.run_hint() in window.tools_panel._hint.text()

    # place the wrist too (undo the move first: placing happens on the photo's pose), then the move applies
    window.undo_action.trigger()
    _drag(qtbot, canvas, document.pose["right_wrist"], STANDING["right_wrist"])
    assert _top_text(document) == "Place right wrist"
    _drag(qtbot, canvas, document.pose["right_elbow"], np.array(STANDING["right_elbow"]) + (-8, -14))
    assert run.isEnabled() and page.run_hint() == ""
    with qtbot.waitSignal(window.jobs.finished, timeout=TIMEOUT_MS):
        qtbot.mouseClick(run, Qt.MouseButton.LeftButton)
    assert _top_text(document) == "Pose" and np.any(document.pixels != before)


def test_a_click_on_another_person_poses_them_instead(pose_window, tmp_path, qtbot, monkeypatch):
    window = pose_window
    path, _ = _person_image(tmp_path)
    document = window.open_file(path)
    asked = []
    real_detect = pose_tool.detect

    def two_people(image, model, runtime=None, cancel=None, near=None):
        asked.append(near)
        found = real_detect(image, model, runtime, cancel, near)
        return pose_tool.Detection(found.pose, found.person, [(60.0, 10.0, 90.0, 100.0)] if near is None else [])

    monkeypatch.setattr(pose_tool, "detect", two_people)
    with qtbot.waitSignal(window.jobs.finished, timeout=TIMEOUT_MS):
        qtbot.mouseClick(window.tools_panel.pose_page.detect_button, Qt.MouseButton.LeftButton)
    assert document.other_people == [(60.0, 10.0, 90.0, 100.0)]
    assert "2 people in the photo: click another to pose them instead" in window.statusBar().currentMessage()
    canvas = window.current_canvas
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=_view(canvas, (5, 5)))  # nobody there
    assert asked == [None]
    with qtbot.waitSignal(window.jobs.finished, timeout=TIMEOUT_MS):
        qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=_view(canvas, (75, 50)))
    assert asked == [None, (pytest.approx(75, abs=1), pytest.approx(50, abs=1))]
    assert document.other_people == []


def test_the_shipped_models_names_fit_the_pose_panel(window, qtbot):
    """The panel is narrow: a model shows by its title, whole, with its name in the tooltip."""
    from ganstudio.models import get_registry

    shipped = [m for m in get_registry().for_task("pose") if m.source == "pretrained"]
    if not shipped:
        pytest.skip("no pose model is shipped in this build")
    window.resize(1280, 800)
    window.tools_panel.select_tool("pose")
    combo = window.tools_panel.pose_page.editor("model")
    qtbot.waitUntil(lambda: combo.isVisible())
    index = combo.findData(shipped[0].name)
    assert combo.itemText(index) == shipped[0].title
    assert shipped[0].name in combo.itemData(index, Qt.ItemDataRole.ToolTipRole)
    combo.setCurrentIndex(index)
    assert combo.fontMetrics().horizontalAdvance(combo.currentText()) < combo.width() - 24  # room for the arrow
