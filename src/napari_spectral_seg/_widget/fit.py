"""How the dock fits napari's window and tools.

- :class:`RefitOnDock`: docking narrows the canvas, and an image fitted to the
  wider one is clipped; a view that was fitted to the data when the dock was
  made (what napari shows after opening an image or a sample) is fitted
  again, a view the user zoomed or panned is left as it is.
- :func:`wrap_status`: a long status line wraps instead of widening the dock, elided when it lacks height.
- :class:`PointsClickNotice`: in split or merge mode, a click while a Points
  layer is active adds a point, not an edit: say so and what to do instead.
"""

from __future__ import annotations

import numpy as np
from napari.layers import Points
from napari.utils.notifications import show_info
from qtpy.QtCore import QEvent, QObject, QTimer
from qtpy.QtWidgets import QSizePolicy

__all__ = ["PointsClickNotice", "RefitOnDock", "is_fitted", "wrap_status"]


def _camera_state(camera) -> tuple:
    return tuple(camera.center), float(camera.zoom), tuple(camera.angles)


def is_fitted(viewer) -> bool:
    """Whether the viewer shows its layers as ``reset_view`` fits them (the camera is left as it was)."""
    if len(viewer.layers) == 0:
        return False
    camera = viewer.camera
    before = _camera_state(camera)
    viewer.reset_view()
    fitted = _camera_state(camera)
    camera.center, camera.zoom, camera.angles = before
    return all(np.allclose(a, b, rtol=1e-3, atol=1e-6) for a, b in zip(before, fitted))


class RefitOnDock(QObject):
    """Fit the view again once ``widget`` is first shown (docked), if it was fitted when this was made.

    Parameters
    ----------
    viewer : napari.Viewer
    widget : QWidget
        The dock widget's Qt widget.
    """

    def __init__(self, viewer, widget) -> None:
        super().__init__(widget)
        self._viewer = viewer
        self._pending = is_fitted(viewer)
        if self._pending:
            widget.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:
        if self._pending and event.type() == QEvent.Type.Show:
            self._pending = False
            watched.removeEventFilter(self)
            # After the dock's layout has narrowed the canvas (the next turns of the event loop).
            QTimer.singleShot(50, self._refit)
        return False

    def _refit(self) -> None:
        try:
            self._viewer.reset_view()
        except RuntimeError:  # the viewer closed meanwhile
            pass


def wrap_status(label):
    """Let the status line (a QLabel) wrap, and not ask the dock for the width of its longest line.

    Returns the :class:`~.status_line.StatusElision` that paints it elided
    (the whole text in its tooltip) when the dock gives it less height than
    its lines need.
    """
    from .status_line import StatusElision

    label.setWordWrap(True)
    policy = label.sizePolicy()
    policy.setHorizontalPolicy(QSizePolicy.Policy.Ignored)
    label.setSizePolicy(policy)
    return StatusElision(label)


class PointsClickNotice:
    """While clicks edit the result, a click on an active Points layer says how to edit instead.

    Parameters
    ----------
    viewer : napari.Viewer
    result_names : callable
        Returns the names of the result layers.
    """

    def __init__(self, viewer, result_names) -> None:
        self._viewer = viewer
        self._result_names = result_names
        self.mode = "off"

    def set_mode(self, mode: str) -> None:
        """The widget's *click on result* mode: the notice is on in "split" and "merge"."""
        self.mode = mode
        callbacks = self._viewer.mouse_drag_callbacks
        if mode == "off":
            if self._on_click in callbacks:
                callbacks.remove(self._on_click)
        elif self._on_click not in callbacks:
            callbacks.append(self._on_click)

    def _on_click(self, _viewer, event) -> None:
        active = self._viewer.layers.selection.active
        if not isinstance(active, Points) or event.type != "mouse_press":
            return
        names = self._result_names()
        target = f"the result layer '{names[0]}'" if names else "a result layer (click Run first)"
        show_info(
            f"'click on result' is {self.mode}, but '{active.name}' (points) is selected, so the click "
            f"adds a point; select {target} in the layer list to {self.mode} segments."
        )
