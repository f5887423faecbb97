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
