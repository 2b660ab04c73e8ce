"""The mask on the canvas: brush and eraser strokes, rectangle and lasso, undo, clear/invert, save/load, and the
inpaint tool's gate."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt
from PySide6.QtWidgets import QFileDialog

from ganstudio.ui.canvas import CanvasTool

TIMEOUT_MS = 10_000


def _view_point(canvas, x: float, y: float) -> QPoint:
    return canvas.mapFromScene(QPointF(x, y))


def _stroke(qtbot, canvas, points, button=Qt.MouseButton.LeftButton) -> None:
    viewport = canvas.viewport()
    qtbot.mousePress(viewport, button, pos=_view_point(canvas, *points[0]))
    for point in points[1:]:
        qtbot.mouseMove(viewport, _view_point(canvas, *point))
    qtbot.mouseRelease(viewport, button, pos=_view_point(canvas, *points[-1]))


def _open_with_brush(window, make_image, size: int = 8):
    path, _ = make_image(height=60, width=80)
    document = window.open_file(path)
    window.brush_action.trigger()
    window.mask_settings.brush_size = size
    canvas = window.current_canvas
    assert canvas.tool == CanvasTool.BRUSH
    return document, canvas


def test_a_brush_stroke_paints_the_mask_and_undo_clears_it(window, make_image, qtbot):
    document, canvas = _open_with_brush(window, make_image)
    _stroke(qtbot, canvas, [(10, 30), (30, 30), (50, 30)])
    painted = document.mask.copy()
    assert painted[30, 10:51].min() == 255  # the whole line, not just the dabs
    assert painted[0:20].max() == 0 and painted[:, 60:].max() == 0  # and nothing far from it
    assert document.undo_stack.count() == 1 and document.undo_stack.text(0) == "Paint mask"
    window.undo_action.trigger()
    assert not document.mask.any()
    window.redo_action.trigger()
    np.testing.assert_array_equal(document.mask, painted)


def test_right_drag_erases(window, make_image, qtbot):
    document, canvas = _open_with_brush(window, make_image, size=12)
    _stroke(qtbot, canvas, [(10, 30), (50, 30)])
    _stroke(qtbot, canvas, [(30, 20), (30, 40)], button=Qt.MouseButton.RightButton)
    assert document.mask[30, 15] == 255 and document.mask[30, 30] == 0
    assert document.undo_stack.count() == 2 and document.undo_stack.text(1) == "Erase mask"


def test_hand_tool_pans_instead_of_painting(window, make_image, qtbot):
    path, _ = make_image(height=60, width=80)
    document = window.open_file(path)
    canvas = window.current_canvas
    canvas.set_zoom(32.0)
    start = canvas.horizontalScrollBar().value()
    viewport = canvas.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=QPoint(200, 100))
    qtbot.mouseMove(viewport, QPoint(150, 100))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=QPoint(150, 100))
    assert canvas.horizontalScrollBar().value() == start + 50
    assert not document.mask.any()


def test_bracket_keys_resize_the_brush(window):
    window.mask_settings.brush_size = 40
    window.larger_brush_action.trigger()
    assert window.mask_settings.brush_size == 48
    window.smaller_brush_action.trigger()
    window.smaller_brush_action.trigger()
    assert window.mask_settings.brush_size == 33
    window.mask_settings.brush_size = 1
    window.larger_brush_action.trigger()
    assert window.mask_settings.brush_size == 2


def test_clear_and_invert_are_undoable(window, make_image, qtbot):
    document, canvas = _open_with_brush(window, make_image)
    _stroke(qtbot, canvas, [(10, 10)])
    painted = document.mask.copy()
    window.invert_mask_action.trigger()
    np.testing.assert_array_equal(document.mask, 255 - painted)
    window.clear_mask_action.trigger()
    assert not document.mask.any()
    window.undo_action.trigger()
    window.undo_action.trigger()
    np.testing.assert_array_equal(document.mask, painted)


def test_mask_save_and_load_round_trip(window, make_image, qtbot, tmp_path, monkeypatch):
    document, canvas = _open_with_brush(window, make_image)
    _stroke(qtbot, canvas, [(20, 20), (40, 40)])
    painted = document.mask.copy()
    target = tmp_path / "mask.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    window.save_mask_action.trigger()
    window.clear_mask_action.trigger()
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(target), ""))
    window.load_mask_action.trigger()
    np.testing.assert_array_equal(document.mask, painted)
    assert document.undo_stack.text(document.undo_stack.count() - 1) == "Load mask"


def test_the_mask_follows_an_upscale(window, make_image):
    path, original = make_image(height=10, width=10)
    document = window.open_file(path)
    document.set_mask(np.pad(np.full((4, 4), 255, np.uint8), 3), "Load mask")
    document.apply_result(np.repeat(np.repeat(original, 2, 0), 2, 1), "Upscale")
    assert document.mask.shape == (20, 20) and document.mask[6:14, 6:14].min() == 255
    assert document.mask.sum() == 64 * 255
    document.undo_stack.undo()
    assert document.mask.shape == (10, 10)


def test_inpaint_waits_for_a_mask_then_fills_it(window, make_image, qtbot):
    document, canvas = _open_with_brush(window, make_image)
    window.tools_panel.select_tool("inpaint")
    run = window.tools_panel.run_button
    assert not run.isEnabled()
    _stroke(qtbot, canvas, [(30, 30), (45, 30)])
    assert run.isEnabled()
    before, mask = document.pixels.copy(), document.mask.copy()
    with qtbot.waitSignal(window.jobs.finished, timeout=TIMEOUT_MS):
        qtbot.mouseClick(run, Qt.MouseButton.LeftButton)
    changed = np.any(document.pixels != before, axis=2)
    assert changed.any() and not changed[mask == 0].any()
    # the used mask is cleared with the fill, so the result shows; one undo brings back both
    assert document.mask_is_empty and not run.isEnabled()
    np.testing.assert_array_equal(document.before, before)  # compare still shows the image before the fill
    document.undo_stack.undo()
    np.testing.assert_array_equal(document.pixels, before)
    np.testing.assert_array_equal(document.mask, mask)


def test_a_tool_option_to_use_the_mask_also_waits_for_one(window, make_image):
    from ganstudio.tools import get_tool

    translate = get_tool("translate")
    assert not translate.uses_mask(translate.params_type(use_mask=False))
    assert translate.uses_mask(translate.params_type(use_mask=True))
    path, _ = make_image()
    window.open_file(path)
    window.tools_panel.select_tool("translate")
    page = window.tools_panel.current_page
    page.editor("use_mask").setChecked(True)
    assert page.needs_mask() and not window.tools_panel.run_button.isEnabled()


def test_middle_drag_and_space_drag_pan_even_with_the_brush(window, make_image, qtbot):
    document, canvas = _open_with_brush(window, make_image)
    canvas.set_zoom(32.0)
    viewport, bar = canvas.viewport(), canvas.horizontalScrollBar()
    start = bar.value()
    qtbot.mousePress(viewport, Qt.MouseButton.MiddleButton, pos=QPoint(200, 100))
    qtbot.mouseMove(viewport, QPoint(170, 100))
    qtbot.mouseRelease(viewport, Qt.MouseButton.MiddleButton, pos=QPoint(170, 100))
    assert bar.value() == start + 30
    qtbot.keyPress(canvas, Qt.Key.Key_Space)
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=QPoint(200, 100))
    qtbot.mouseMove(viewport, QPoint(180, 100))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=QPoint(180, 100))
    qtbot.keyRelease(canvas, Qt.Key.Key_Space)
    assert bar.value() == start + 50
    assert not document.mask.any()


def test_the_mask_shows_as_a_red_overlay_of_adjustable_strength(window, make_image, qtbot):
    document, canvas = _open_with_brush(window, make_image, size=16)
    document.apply_result(np.full_like(document.pixels, 128), "Grey")
    _stroke(qtbot, canvas, [(20, 30), (60, 30)])

    def shown(x: int, y: int) -> tuple[int, int, int]:
        point = _view_point(canvas, x, y)
        return canvas.viewport().grab().toImage().pixelColor(point).getRgb()[:3]

    window.mask_settings.opacity = 0.5
    red, green, _ = shown(40, 30)
    assert red > 170 and green < 110
    assert shown(40, 5) == (128, 128, 128)  # outside the mask the image is untouched
    window.mask_settings.opacity = 0.0
    assert shown(40, 30) == (128, 128, 128)
    window.mask_settings.opacity = 0.5
    window.show_mask_action.trigger()
    assert not window.mask_settings.visible and shown(40, 30) == (128, 128, 128)


def _open_with_tool(window, make_image, action, tool):
    """An 80 x 60 image at 100 %, so a view point maps to one whole image pixel, with ``action``'s tool chosen."""
    path, _ = make_image(height=60, width=80)
    document = window.open_file(path)
    action.trigger()
    canvas = window.current_canvas
    assert canvas.tool == tool
    canvas.set_zoom(1.0)
    assert canvas.mapToScene(_view_point(canvas, 10, 20)) == QPointF(10, 20)
    return document, canvas


def _drag(qtbot, canvas, start, end, button=Qt.MouseButton.LeftButton, release_modifier=Qt.KeyboardModifier.NoModifier):
    viewport = canvas.viewport()
    qtbot.mousePress(viewport, button, pos=_view_point(canvas, *start))
    qtbot.mouseMove(viewport, _view_point(canvas, *end))
    qtbot.mouseRelease(viewport, button, release_modifier, _view_point(canvas, *end))


def _box(shape, x0, y0, x1, y1) -> np.ndarray:
    expected = np.zeros(shape, np.uint8)
    expected[y0:y1, x0:x1] = 255
    return expected


def test_an_eraser_stroke_clears_and_right_drag_paints(window, make_image, qtbot):
    document, canvas = _open_with_brush(window, make_image, size=12)
    _stroke(qtbot, canvas, [(10, 30), (50, 30)])
    painted = document.mask.copy()
    window.eraser_action.trigger()
    assert canvas.tool == CanvasTool.ERASER
    _stroke(qtbot, canvas, [(30, 20), (30, 40)])
    assert document.mask[30, 15] == 255 and document.mask[30, 30] == 0
    assert document.undo_stack.count() == 2 and document.undo_stack.text(1) == "Erase mask"
    window.undo_action.trigger()
    np.testing.assert_array_equal(document.mask, painted)
    window.redo_action.trigger()
    # with the eraser, right-drag is the inverse: it paints
    _stroke(qtbot, canvas, [(70, 5), (70, 15)], button=Qt.MouseButton.RightButton)
    assert document.mask[10, 70] == 255
    assert document.undo_stack.text(document.undo_stack.count() - 1) == "Paint mask"


def test_a_rectangle_drag_fills_exactly_that_rectangle_and_right_drag_clears_one(window, make_image, qtbot):
    document, canvas = _open_with_tool(window, make_image, window.rectangle_action, CanvasTool.RECTANGLE)
    _drag(qtbot, canvas, (50, 40), (10, 20))  # any direction
    filled = _box(document.mask.shape, 10, 20, 50, 40)
    np.testing.assert_array_equal(document.mask, filled)
    assert document.undo_stack.count() == 1 and document.undo_stack.text(0) == "Mask rectangle"
    _drag(qtbot, canvas, (20, 25), (30, 35), button=Qt.MouseButton.RightButton)
    cleared = filled.copy()
    cleared[25:35, 20:30] = 0
    np.testing.assert_array_equal(document.mask, cleared)
    assert document.undo_stack.count() == 2 and document.undo_stack.text(1) == "Clear rectangle"
    window.undo_action.trigger()
    np.testing.assert_array_equal(document.mask, filled)
    window.undo_action.trigger()
    assert not document.mask.any()
    window.redo_action.trigger()
    window.redo_action.trigger()
    np.testing.assert_array_equal(document.mask, cleared)


def test_a_rectangle_is_clipped_to_the_image_and_a_click_does_nothing(window, make_image, qtbot):
    document, canvas = _open_with_tool(window, make_image, window.rectangle_action, CanvasTool.RECTANGLE)
    _drag(qtbot, canvas, (30, 30), (30, 30))
    assert not document.mask.any() and document.undo_stack.count() == 0
    _drag(qtbot, canvas, (60, 50), (95, 70))  # past the bottom-right corner of the 80 x 60 image
    np.testing.assert_array_equal(document.mask, _box(document.mask.shape, 60, 50, 80, 60))
    assert document.undo_stack.count() == 1


def test_alt_drag_clears_a_rectangle(window, make_image, qtbot):
    document, canvas = _open_with_tool(window, make_image, window.rectangle_action, CanvasTool.RECTANGLE)
    document.set_mask(np.full_like(document.mask, 255), "Load mask")
    viewport = canvas.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.AltModifier, _view_point(canvas, 5, 5))
    qtbot.mouseMove(viewport, _view_point(canvas, 15, 10))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.AltModifier,
                       _view_point(canvas, 15, 10))
    np.testing.assert_array_equal(document.mask, 255 - _box(document.mask.shape, 5, 5, 15, 10))
    assert document.undo_stack.text(document.undo_stack.count() - 1) == "Clear rectangle"


def test_shift_makes_the_rectangle_a_square(window, make_image, qtbot):
    document, canvas = _open_with_tool(window, make_image, window.rectangle_action, CanvasTool.RECTANGLE)
    _drag(qtbot, canvas, (40, 45), (10, 30), release_modifier=Qt.KeyboardModifier.ShiftModifier)
    # 30 wide and 15 high: the longer side wins, towards where the mouse went (up and to the left)
    np.testing.assert_array_equal(document.mask, _box(document.mask.shape, 10, 15, 40, 45))


def test_the_rectangle_outline_shows_while_dragging_and_escape_cancels(window, make_image, qtbot):
    document, canvas = _open_with_tool(window, make_image, window.rectangle_action, CanvasTool.RECTANGLE)
    document.set_mask(_box(document.mask.shape, 0, 0, 5, 5), "Load mask")
    before = document.mask.copy()
    outline = canvas._shapes[CanvasTool.RECTANGLE].outline
    viewport = canvas.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=_view_point(canvas, 10, 10))
    qtbot.mouseMove(viewport, _view_point(canvas, 40, 30))
    assert outline.isVisible() and outline.path().boundingRect() == QRectF(10, 10, 30, 20)
    qtbot.keyClick(canvas, Qt.Key.Key_Escape)
    assert not outline.isVisible()
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=_view_point(canvas, 40, 30))
    np.testing.assert_array_equal(document.mask, before)
    assert document.undo_stack.count() == 1  # only the loaded mask
    # the next drag works as usual
    _drag(qtbot, canvas, (10, 10), (20, 20))
    assert document.mask[15, 15] == 255 and document.undo_stack.count() == 2


def test_a_lasso_fills_the_inside_of_the_outline(window, make_image, qtbot):
    document, canvas = _open_with_tool(window, make_image, window.lasso_action, CanvasTool.LASSO)
    outline = canvas._shapes[CanvasTool.LASSO].outline
    viewport = canvas.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=_view_point(canvas, 10, 10))
    qtbot.mouseMove(viewport, _view_point(canvas, 60, 10))
    qtbot.mouseMove(viewport, _view_point(canvas, 10, 50))
    assert outline.isVisible() and outline.path().elementCount() == 3
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=_view_point(canvas, 10, 50))
    assert not outline.isVisible()
    mask = document.mask
    assert mask[20, 20] == 255 and mask[11, 58] == 255 and mask[48, 11] == 255  # inside, also near the corners
    assert mask[40, 50] == 0  # inside the bounding box, beyond the long edge
    assert mask[:10].max() == 0 and mask[:, :10].max() == 0 and mask[51:].max() == 0 and mask[:, 61:].max() == 0
    assert document.undo_stack.count() == 1 and document.undo_stack.text(0) == "Mask lasso"
    painted = mask.copy()
    # right-drag clears what a lasso encloses
    _stroke(qtbot, canvas, [(12, 12), (30, 12), (12, 30)], button=Qt.MouseButton.RightButton)
    assert document.mask[15, 15] == 0 and document.mask[40, 12] == 255
    assert document.undo_stack.text(1) == "Clear lasso"
    window.undo_action.trigger()
    np.testing.assert_array_equal(document.mask, painted)


def test_a_lasso_of_fewer_than_three_points_does_nothing(window, make_image, qtbot):
    document, canvas = _open_with_tool(window, make_image, window.lasso_action, CanvasTool.LASSO)
    _stroke(qtbot, canvas, [(10, 10), (40, 30), (40, 30), (10, 10)])
    _stroke(qtbot, canvas, [(10, 10), (20, 20), (30, 30)])  # three points on one line enclose nothing either
    assert not document.mask.any() and document.undo_stack.count() == 0


def test_tool_shortcuts(window, make_image, qtbot):
    path, _ = make_image()
    window.open_file(path)
    window.activateWindow()
    qtbot.waitActive(window)
    canvas = window.current_canvas
    canvas.setFocus()
    for key, action, tool in ((Qt.Key.Key_E, window.eraser_action, CanvasTool.ERASER),
                              (Qt.Key.Key_M, window.rectangle_action, CanvasTool.RECTANGLE),
                              (Qt.Key.Key_L, window.lasso_action, CanvasTool.LASSO),
                              (Qt.Key.Key_B, window.brush_action, CanvasTool.BRUSH),
                              (Qt.Key.Key_H, window.hand_action, CanvasTool.HAND)):
        qtbot.keyClick(canvas, key)
        assert action.isChecked() and canvas.tool == tool
    # a canvas opened later starts with the chosen tool
    window.lasso_action.trigger()
    window.open_file(make_image()[0])
    assert window.current_canvas.tool == CanvasTool.LASSO


def test_mask_tools_win_over_joints_in_pose_mode(window, make_image, qtbot):
    path, _ = make_image()
    window.open_file(path)
    canvas = window.current_canvas
    canvas.set_pose_mode(True)
    for action, grabs in ((window.hand_action, True), (window.eraser_action, False),
                          (window.rectangle_action, False), (window.lasso_action, False)):
        action.trigger()
        assert canvas._grabs_joints() == grabs


def test_the_translate_working_size_starts_at_the_models_own(window):
    window.tools_panel.select_tool("translate")
    page = window.tools_panel.current_page
    spin = page.editor("working_size")
    assert spin.value() == 0 and spin.text() == "Model's own" and page.params().working_size == 0
    spin.setValue(256)
    assert page.params().working_size == 256 and spin.text() == "256 px"
