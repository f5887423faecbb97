"""The dock's status line when the dock has less height for it than its wrapped text needs.

With the dock filling the window's height, napari's dock layout gives the
wrapped status line less than its height for its width, and Qt draws the
text centred in the box it got: clipped at its top and bottom. Here the
label is painted as many whole lines as its box holds, the last one ending
in an ellipsis, and the tooltip holds the whole text. The label's text is
not changed (the widget's ``status.value`` stays whole); when everything
fits, Qt paints it as usual.
"""

from __future__ import annotations

from qtpy.QtCore import QEvent, QObject, Qt
from qtpy.QtGui import QPainter, QPalette, QTextLayout

__all__ = ["StatusElision", "visible_lines"]


def visible_lines(text: str, font, width: int, max_lines: int) -> tuple[list[str], bool]:
    """``text`` word-wrapped at ``width`` pixels in at most ``max_lines`` lines, the last elided if text is left.

    Returns the lines and whether text was left out.
    """
    from qtpy.QtGui import QFontMetrics

    metrics = QFontMetrics(font)
    layout = QTextLayout(text, font)
    layout.beginLayout()
    lines = []
    while len(lines) < max_lines:
        line = layout.createLine()
        if not line.isValid():
            break
        line.setLineWidth(width)
        start, length = line.textStart(), line.textLength()
        if len(lines) == max_lines - 1 and start + length < len(text):
            rest = " ".join(text[start:].split())
            lines.append(metrics.elidedText(rest, Qt.TextElideMode.ElideRight, width))
            layout.endLayout()
            return lines, True
        lines.append(text[start : start + length].rstrip())
    layout.endLayout()
    return lines, False


class StatusElision(QObject):
    """Paints a wrapped QLabel elided to the lines its box holds when it got less height than it needs.

    Attributes
    ----------
    elided : bool
        Whether the last paint left text out (the tooltip then holds it all).
    lines : list of str
        The lines last painted elided (empty when Qt painted the label itself).
    """

    def __init__(self, label) -> None:
        super().__init__(label)
        self._label = label
        self.elided = False
        self.lines: list[str] = []
        label.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:
        if watched is not self._label or event.type() != QEvent.Type.Paint:
            return False
        label = self._label
        box = label.contentsRect()
        if not label.text() or label.heightForWidth(box.width()) <= label.height():
            self.elided, self.lines = False, []
            return False  # it fits: Qt's own painting
        spacing = label.fontMetrics().lineSpacing()
        lines, left_out = visible_lines(label.text(), label.font(), box.width(), max(box.height() // spacing, 1))
        if not left_out:  # short of a margin only: every line is drawn whole by Qt
            self.elided, self.lines = False, []
            return False
        self.lines, self.elided = lines, True
        if label.text() not in label.toolTip():
            label.setToolTip(label.text())
        painter = QPainter(label)
        painter.setPen(label.palette().color(QPalette.ColorRole.WindowText))
        ascent = label.fontMetrics().ascent()
        for row, text in enumerate(self.lines):
            painter.drawText(box.x(), box.y() + row * spacing + ascent, text)
        painter.end()
        return True
