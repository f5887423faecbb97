"""The dock's own progress bar: a run's fraction and step, without napari's activity bar.

napari's ``progress`` bar calls ``QApplication.processEvents()`` on every
update. Called from a worker's signal, that paints the canvas in the middle of
another event, which crashed napari's OpenGL drawing (a segmentation fault in
``glDrawArrays`` after the layers were replaced). A ``QProgressBar`` does the
same in small: its ``setValue`` repaints the window at once, canvas included.
This bar is a text label, which Qt repaints with the next ordinary event.
"""

from __future__ import annotations

from magicgui.widgets import Label

__all__ = ["DockProgress"]


_WIDTH = 20  # characters of the bar


class DockProgress:
    """A text progress bar in the dock, driven as a count out of ``total`` (0: no count yet)."""

    def __init__(self) -> None:
        self.widget = Label(name="progress", value="", visible=False)
        self.n = 0
        self._total = 0

    def start(self, total: int, description: str) -> DockProgress:
        """Show the bar at 0 of ``total`` with ``description`` as its tooltip; returns itself."""
        self.n = 0
        self.total = total
        self.widget.tooltip = description
        self.widget.visible = True
        return self

    @property
    def total(self) -> int:
        return self._total

    @total.setter
    def total(self, value: int) -> None:
        self._total = max(int(value), 0)
        self._show()

    def set_description(self, text: str) -> None:
        self.widget.tooltip = text

    def update(self, steps: int = 1) -> None:
        """Move the bar on by ``steps``, never past its total."""
        self.n += int(steps)
        self._show()

    @property
    def fraction(self) -> float:
        return min(self.n / self._total, 1.0) if self._total else 0.0

    def close(self) -> None:
        """Hide the bar (the run ended)."""
        self.n = 0
        self.widget.visible = False
        self.widget.value = ""

    def _show(self) -> None:
        filled = int(round(self.fraction * _WIDTH))
        self.widget.value = "\u2588" * filled + "\u2591" * (_WIDTH - filled) + f" {round(self.fraction * 100)}%"
