"""Preview of the visible area: runs on a crop in the worker, matches what the whole run gives there, changes
nothing until applied."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from ganstudio.tools import get_tool
from ganstudio.tools.base import preview_region
from ganstudio.tools.superres import SuperResParams
from ganstudio.ui.tools_panel import PREVIEW_SIDE

TIMEOUT_MS = 20_000


def test_preview_region_is_the_visible_part_cut_to_the_limit_around_its_centre() -> None:
    shape = (400, 600, 3)
    assert preview_region(shape, (-50.0, -20.0, 200.0, 100.5), 256) == (slice(0, 81), slice(0, 150))
    rows, cols = preview_region(shape, (0, 0, 600, 400), 256)
    assert (rows.stop - rows.start, cols.stop - cols.start) == (256, 256)
    assert (rows.start + rows.stop) // 2 == 200 and (cols.start + cols.stop) // 2 == 300
    with pytest.raises(ValueError, match="in view"):
        preview_region(shape, (700, 0, 100, 100), 256)


def test_only_previewable_tools_offer_a_preview(window, make_image) -> None:
    window.open_file(make_image()[0])
    panel = window.tools_panel
    panel.select_tool("superres")
    assert panel.preview_button.isVisible() and panel.preview_button.isEnabled()
    panel.select_tool("translate")
    assert not panel.preview_button.isVisible()


def test_preview_shows_the_whole_runs_pixels_there_and_applies_on_request(window, make_image, qtbot) -> None:
    path, original = make_image(height=420, width=600)
    document = window.open_file(path)
    canvas = window.current_canvas
    canvas.set_zoom(2.0)  # only part of the photo is in view
    canvas.centerOn(300, 210)
    panel = window.tools_panel
    panel.select_tool("superres")
    page = panel.current_page
    page.editor("model").setCurrentIndex(page.editor("model").findData("bicubic"))
    page.editor("scale").setCurrentIndex(page.editor("scale").findData(2))
    rows, cols = preview_region(document.pixels.shape, canvas.visible_rect(), PREVIEW_SIDE)
    assert 0 < rows.start and rows.stop < 420 and 0 < cols.start and cols.stop < 600

    with qtbot.waitSignal(window.jobs.finished, timeout=TIMEOUT_MS):
        qtbot.mouseClick(panel.preview_button, Qt.MouseButton.LeftButton)
    dialog = window._preview_dialog
    assert dialog is not None and dialog.isVisible()
    np.testing.assert_array_equal(document.pixels, original)
    assert document.undo_stack.count() == 0 and not document.busy

    whole = get_tool("superres").run(original, SuperResParams(model="bicubic", scale=2))
    expected = whole[rows.start * 2:rows.stop * 2, cols.start * 2:cols.stop * 2]
    assert dialog.showing == "after"
    shown = dialog.image_label.pixmap().toImage()
    assert (shown.width(), shown.height()) == (expected.shape[1], expected.shape[0])
    after = dialog._displays["after"].buffer[:, :, 2::-1]  # BGRA -> RGB
    np.testing.assert_array_equal(after, expected)
    # Space flips to the same area before, enlarged the plain way, and back
    qtbot.keyClick(dialog, Qt.Key.Key_Space)
    assert dialog.showing == "before" and dialog.before_button.isChecked()
    before = dialog._displays["before"].buffer[:, :, 2::-1]
    assert before.shape == expected.shape and not np.array_equal(before, expected)
    qtbot.keyClick(dialog, Qt.Key.Key_Space)
    assert dialog.showing == "after"
    assert "×2" in dialog.windowTitle() and "view (from x" in dialog.details.text()

    with qtbot.waitSignal(window.jobs.finished, timeout=TIMEOUT_MS):
        qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
    np.testing.assert_array_equal(document.pixels, whole)
    assert document.undo_stack.count() == 1
