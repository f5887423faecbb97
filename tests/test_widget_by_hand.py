"""What the widget showed when attacked by hand in a real window (docs/issue17_rerun.md, "Widget, by hand").

napari's notification shows its first line alone, about 40 characters, until
expanded: a refusal starts with what is wrong, and the dock's status line
(wrapped) says the first sentence with its fix.
"""

from napari.utils.notifications import notification_manager


def _messages():
    return [str(n.message) for n in notification_manager.records]


def test_a_refused_run_says_why_and_the_fix_in_the_status_line(viewer_and_widget, qtbot):
    # By hand: the status line said "failed", the notification's one visible line
    # "Spectral segmentation: 'segments' 5000".
    _, widget = viewer_and_widget
    widget.n_clusters.value = 1000  # the mask has 2,696 pixels: at most 674
    widget.run.native.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)
    assert _messages()[-1].startswith("'segments' 1000 asks for segments of")
    status = widget.status.value
    assert status.startswith("failed: 'segments' 1000") and "use at most 674" in status
    assert "n_clusters" not in status and len(status) < 130


def test_saving_to_a_missing_folder_starts_with_not_saved(viewer_and_widget, tmp_path):
    # By hand: the notification's visible line was "Spectral segmentation: The folder /tmp/".
    _, widget = viewer_and_widget
    widget.save_parameters(tmp_path / "no such folder" / "params.json")
    assert _messages()[-1].startswith("Parameters not saved: the folder")
    assert widget.status.value.startswith("Parameters not saved: the folder") and "choose an existing folder" in (
        widget.status.value
    )
    assert not (tmp_path / "no such folder").exists()


def test_a_long_status_line_at_full_dock_height_is_whole_or_elided_with_the_text_in_its_tooltip(
    viewer_and_widget, qtbot
):
    # By hand: with the dock filling the window's height the wrapped status line got about two and
    # a half of its lines, drawn centred: clipped at its top and bottom.
    viewer, widget = viewer_and_widget
    window = viewer.window._qt_window
    window.show()
    window.resize(1200, 600)  # less than the dock needs: the dock fills the window's height
    text = (
        "Parameters not saved: the folder 'no such folder with a rather long name here' does not exist in "
        "/tmp/some/long/path/that/goes/on/and/on/for/a/while/yet/more; choose an existing folder, or make it."
    )
    widget._show_status(text)
    label = widget.status.native
    qtbot.waitUntil(lambda: label.isVisible() and label.width() > 0, timeout=10_000)
    label.grab()  # paints it now (through its event filters), as the screen would
    assert widget.status.value == text  # the value stays whole
    if label.height() >= label.heightForWidth(label.width()):
        return  # every line has room: nothing to elide on this screen
    elision = getattr(widget, "_status_elision", None)
    assert elision is not None and elision.elided, (label.height(), label.heightForWidth(label.width()))
    spacing = label.fontMetrics().lineSpacing()
    assert 1 <= len(elision.lines) and len(elision.lines) * spacing <= label.contentsRect().height()
    assert elision.lines[0].startswith("Parameters not saved") and elision.lines[-1].endswith("…")
    assert text in label.toolTip()
    # Once it fits again (a short text), Qt paints it as usual.
    widget._show_status("4 segments in 0.20 s")
    label.grab()
    assert not elision.elided
