"""The toolbox: canvas and GAN tools as icon buttons with keys, the shortcut list, and each tool's starting model."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence

from ganstudio.models import get_registry
from ganstudio.tools import TOOLS
from ganstudio.ui.canvas import CanvasTool


def _focused_canvas(window, make_image, qtbot, height=120, width=160):
    window.open_file(make_image(height=height, width=width)[0])
    window.activateWindow()
    qtbot.waitActive(window)
    canvas = window.current_canvas
    canvas.setFocus()
    return canvas


def test_gan_tools_switch_by_key_and_by_button(window, make_image, qtbot):
    canvas = _focused_canvas(window, make_image, qtbot)
    for key, tool in ((Qt.Key.Key_I, "inpaint"), (Qt.Key.Key_T, "translate"), (Qt.Key.Key_P, "pose"),
                      (Qt.Key.Key_U, "superres")):
        qtbot.keyClick(canvas, key)
        assert window.tools_panel.current_tool == tool
        assert window._gan_tool_actions[tool].isChecked()
    assert not canvas.pose_mode
    button = window.toolbox.widgetForAction(window._gan_tool_actions["pose"])
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert window.tools_panel.current_tool == "pose" and canvas.pose_mode
    # the dock's own list and the toolbox stay in step
    window.tools_panel.select_tool("inpaint")
    assert window._gan_tool_actions["inpaint"].isChecked() and not window._gan_tool_actions["pose"].isChecked()


def test_choosing_a_gan_tool_reopens_a_closed_tools_dock(window, qtbot):
    window.tools_dock.close()
    assert not window.tools_dock.isVisible()
    window._gan_tool_actions["translate"].trigger()
    assert window.tools_dock.isVisible() and window.tools_panel.current_tool == "translate"


def test_canvas_tools_switch_by_button(window, make_image, qtbot):
    canvas = _focused_canvas(window, make_image, qtbot)
    for tool, action in window._tool_actions.items():
        qtbot.mouseClick(window.toolbox.widgetForAction(action), Qt.MouseButton.LeftButton)
        assert canvas.tool == tool and action.isChecked()


def test_zoom_tool_zooms_in_at_the_click_and_out_on_right_click(window, make_image, qtbot):
    # larger than the view, so the view can scroll to keep the clicked point under the cursor
    canvas = _focused_canvas(window, make_image, qtbot, height=1500, width=2000)
    qtbot.keyClick(canvas, Qt.Key.Key_Z)
    assert canvas.tool == CanvasTool.ZOOM
    canvas.actual_size()
    canvas.centerOn(1000, 750)
    point = canvas.mapFromScene(1040, 730)
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert canvas.zoom == pytest.approx(1.5)
    under = canvas.mapToScene(point)
    assert (under.x(), under.y()) == (pytest.approx(1040, abs=1.5), pytest.approx(730, abs=1.5))
    assert not canvas.document.mask.any(), "the zoom tool must not paint the mask"
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.RightButton, pos=point)
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.AltModifier, pos=point)
    assert canvas.zoom == pytest.approx(2 / 3)


def test_no_two_commands_share_a_key_and_the_toolbox_names_them(window):
    owners: dict[str, str] = {}
    for action in window.findChildren(QAction):
        for sequence in action.shortcuts():
            key = sequence.toString(QKeySequence.SequenceFormat.PortableText)
            assert owners.setdefault(key, action.text()) == action.text(), f"{key}: {owners[key]} and {action.text()}"
    single = {key for key in owners if len(key) == 1}
    assert {"H", "Z", "B", "E", "M", "L", "U", "I", "T", "P", "G", "Y"} <= single
    # keys the canvas takes for itself must stay free of commands
    assert not {"Space", "\\"} & set(owners)
    for action in window.toolbox.actions():
        if action.isSeparator():
            continue
        key = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        assert key and f"({key})" in action.toolTip(), action.toolTip()
        assert not action.icon().isNull(), action.text()


def test_keyboard_shortcuts_lists_every_tool_key_and_filters(window, qtbot):
    window.keyboard_action.trigger()
    dialog = window._shortcuts_dialog
    qtbot.waitExposed(dialog)
    rows = dialog.visible_rows()
    for action in list(window._tool_actions.values()) + list(window._gan_tool_actions.values()):
        name = action.text().replace("&", "")
        assert (name, action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)) in rows
    assert any(keys == "Space" for _, keys in rows)
    dialog.filter.setText("lasso")
    assert [what for what, _ in dialog.visible_rows()] == ["Lasso Mask"]
    dialog.close()


def _model_list(window, tool: str) -> list[str]:
    combo = window.tools_panel.page(tool).model_combo
    return [combo.itemData(index) for index in range(combo.count())]


def test_each_tool_starts_on_our_best_model_with_baselines_last(window):
    for tool in ("superres", "inpaint"):
        names = _model_list(window, tool)
        classic = [get_registry().get(name, TOOLS[tool].task).is_classic for name in names]
        assert classic == sorted(classic), f"{tool}: baselines must come last: {names}"
        combo = window.tools_panel.page(tool).model_combo
        assert not get_registry().get(combo.currentData(), TOOLS[tool].task).is_classic
        baseline_texts = [combo.itemText(index) for index, is_classic in enumerate(classic) if is_classic]
        assert baseline_texts and all(text.endswith("(baseline)") for text in baseline_texts)
    if "real-x4" in _model_list(window, "superres"):
        assert window.tools_panel.page("superres").model_combo.currentData() == "real-x4"


def test_a_model_the_user_picked_is_where_the_tool_starts_next_time(window, qtbot):
    from ganstudio.ui.main_window import MainWindow

    combo = window.tools_panel.page("superres").model_combo
    assert combo.currentData() != "lanczos"
    index = combo.findData("lanczos")
    combo.setCurrentIndex(index)
    combo.activated.emit(index)  # what a click in the list sends
    reopened = MainWindow()
    qtbot.addWidget(reopened)
    assert reopened.tools_panel.page("superres").model_combo.currentData() == "lanczos"
    # a list re-read (the model folder changed) is not the user's choice and changes nothing remembered
    reopened.tools_panel.refresh_models()
    again = MainWindow()
    qtbot.addWidget(again)
    assert again.tools_panel.page("superres").model_combo.currentData() == "lanczos"


def test_a_remembered_model_that_is_gone_falls_back_to_the_best(window, qtbot):
    from ganstudio.ui.main_window import MainWindow

    window._remember_tool_model("superres", "deleted-model")
    reopened = MainWindow()
    qtbot.addWidget(reopened)
    current = reopened.tools_panel.page("superres").model_combo.currentData()
    assert current == window.tools_panel.page("superres").model_combo.currentData()
