"""The measurement table of the dock widget: the result layer's ``features``, shown sortable.

The engine measures the labels (:func:`napari_spectral_seg._widget.engine.measure_result`);
this module only places the table: world coordinates (the layer's translate
added to the centroids), the frame of a run on one frame of a stack, the
result layer's ``features`` (other frames' rows kept), and a Qt table where
a click on a row selects that label in the viewer and centres the view on
it, beside a bar chart of the sizes. "Save measurements..." writes the table as CSV.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from napari.layers import Labels
from qtpy.QtCore import QAbstractTableModel, QModelIndex, Qt
from qtpy.QtWidgets import QAbstractItemView, QHBoxLayout, QLabel, QPushButton, QTableView, QVBoxLayout, QWidget

from ..core.measure import AXIS_NAMES, concatenate_tables, frame_columns, table_length, with_frame
from ..io import METADATA_KEY
from ..tables import TableError, write_table
from .undo import tracker

__all__ = ["MeasurementsPanel", "SizeHistogram", "TableModel", "layer_table", "world_table"]

# napari maps a label to its features row through this column (without it, row i is label i).
INDEX_COLUMN = "index"


def world_table(table: dict, layer: Labels, n_spatial: int, frame_index: tuple | None = None) -> dict:
    """The engine's table placed in the result layer's world: translate added, the frame of a one-frame run.

    Centroids come from the engine in units of the layer's scale from the
    frame's pixel 0; the layer's translate of the spatial axes makes them
    world coordinates.
    """
    table = dict(table)
    translate = tuple(layer.translate)[-n_spatial:]
    for axis, offset in zip(AXIS_NAMES[n_spatial], translate):
        table[f"centroid_{axis}"] = np.asarray(table[f"centroid_{axis}"], dtype=np.float64) + float(offset)
    return with_frame(table, frame_index) if frame_index else table


def _features_table(layer: Labels) -> dict:
    features = layer.features
    return {name: features[name].to_numpy() for name in features.columns if name != INDEX_COLUMN}


def layer_table(layer: Labels, table: dict, frame_index: tuple | None) -> dict:
    """The table the result layer holds after a run: for a one-frame run, the other frames' rows kept.

    Rows of other frames from earlier runs stay while their columns are
    the same (the same image); the frames' rows in frame order.
    """
    if not frame_index:
        return table
    kept = _features_table(layer)
    names = frame_columns(len(frame_index))
    if list(kept) != list(table) or not table_length(kept):
        return table
    other = ~np.all([kept[name] == value for name, value in zip(names, frame_index)], axis=0)
    merged = concatenate_tables([{name: column[other] for name, column in kept.items()}, table])
    order = np.lexsort([merged["label"], *(merged[name] for name in reversed(names))])
    return {name: column[order] for name, column in merged.items()}


_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
# Rows looked at to size the columns: all of them (Qt's default is 1000) would hold the GUI
# thread for 0.7 s with 20k objects; the first rows are a good guess of the widths.
_ROWS_FOR_WIDTHS = 50


def _shown(value) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)


class TableModel(QAbstractTableModel):
    """A table (column name -> array) for a QTableView, sorted by any column without copying cells into Qt."""

    def __init__(self, table: dict | None = None):
        super().__init__()
        self.set_table(table or {})

    def set_table(self, table: dict) -> None:
        """Show ``table`` (in its own row order)."""
        self.beginResetModel()
        self.table = table
        self.names = list(table)
        self.order = np.arange(table_length(table))
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt's name
        return 0 if parent.isValid() else len(self.order)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt's name
        return 0 if parent.isValid() else len(self.names)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and index.isValid():
            return _shown(self.table[self.names[index.column()]][self.order[index.row()]])
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _RIGHT
        return None

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802 - Qt's name
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return self.names[section] if section < len(self.names) else None
        return str(section + 1)

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        self.layoutAboutToBeChanged.emit()
        if 0 <= column < len(self.names):
            self.order = np.argsort(self.table[self.names[column]], kind="stable")
            if order == Qt.SortOrder.DescendingOrder:
                self.order = self.order[::-1]
        else:  # no sort column (the indicator cleared): the table's own order
            self.order = np.arange(table_length(self.table))
        self.layoutChanged.emit()

    def row(self, view_row: int) -> dict:
        """The values of the row shown at ``view_row``, by column name."""
        i = self.order[view_row]
        return {name: self.table[name][i] for name in self.names}


class SizeHistogram(QWidget):
    """A small bar chart of the objects' sizes (area or volume), painted with Qt: no plotting library."""

    BINS = 20

    def __init__(self):
        super().__init__()
        self.counts = np.zeros(0, dtype=np.int64)
        self.edges = np.zeros(0)
        self.what = "area"
        self.setMinimumSize(200, 120)
        self.setMaximumWidth(320)

    def set_sizes(self, sizes, what: str) -> None:
        """Show the distribution of ``sizes`` (``what``: "area" or "volume")."""
        sizes = np.asarray(sizes, dtype=np.float64)
        sizes = sizes[np.isfinite(sizes)]
        self.what = what
        if sizes.size:
            self.counts, self.edges = np.histogram(sizes, bins=self.BINS)
        else:
            self.counts, self.edges = np.zeros(0, dtype=np.int64), np.zeros(0)
        self.setToolTip(f"{what} of the {sizes.size} objects, {self.BINS} bins")
        self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt's name
        from qtpy.QtGui import QColor, QPainter

        painter = QPainter(self)
        try:
            pen = self.palette().windowText().color()
            painter.setPen(pen)
            width, height = self.width(), self.height()
            text_height = painter.fontMetrics().height()
            painter.drawText(4, text_height, f"{self.what} distribution")
            if not self.counts.size or self.counts.max() == 0:
                return
            top, bottom = text_height + 4, height - text_height - 4
            bar = (width - 8) / len(self.counts)
            painter.drawLine(4, int(bottom), width - 4, int(bottom))
            for i, count in enumerate(self.counts):
                h = (bottom - top) * count / self.counts.max()
                painter.fillRect(int(4 + i * bar), int(bottom - h), max(int(bar) - 1, 1), int(h), QColor(90, 160, 220))
            painter.drawText(4, height - 4, f"{self.edges[0]:.3g}")
            right = f"{self.edges[-1]:.3g}"
            painter.drawText(width - 4 - painter.fontMetrics().horizontalAdvance(right), height - 4, right)
        finally:
            painter.end()


class MeasurementsPanel(QWidget):
    """The measurement table of the last result, its caption and "Save measurements...".

    Docked below the canvas on the first result (a table wants width; the
    parameter dock has none to spare), and again after its dock was closed.

    Parameters
    ----------
    viewer : napari.Viewer
        Where a clicked row's label is selected and shown.
    notify : callable
        ``notify(show, message)``: a notification (the widget's).
    owner : QWidget, optional
        The widget this table belongs to: its dock goes when the owner does.
    """

    DOCK_NAME = "Measurements (spectral segmentation)"

    def __init__(self, viewer, notify: Callable[[Callable, str], None], owner: QWidget | None = None):
        # A hidden child of the owner until docked: it goes with the owner, never an orphan top-level window.
        super().__init__(owner)
        self.hide()
        self._viewer = viewer
        self._notify = notify
        self._dock = None
        self._saver = None  # the thread writing a CSV
        self.layer = None
        self.n_spatial = 2
        self.model = TableModel()
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSortingEnabled(True)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.verticalHeader().setVisible(False)
        for header in (self.view.horizontalHeader(), self.view.verticalHeader()):
            header.setResizeContentsPrecision(_ROWS_FOR_WIDTHS)
        self.view.setMinimumHeight(150)
        self.view.clicked.connect(self._on_clicked)
        self.caption = QLabel("Measurements: run a segmentation.")
        self.save_button = QPushButton("Save measurements...")
        self.save_button.setToolTip("Write the table as CSV (one row per object).")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self._ask_where_to_save)
        top = QHBoxLayout()
        top.addWidget(self.caption, 1)
        top.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 4)
        layout.addLayout(top)
        self.histogram = SizeHistogram()
        body = QHBoxLayout()
        body.addWidget(self.view, 1)
        body.addWidget(self.histogram)
        layout.addLayout(body)
        if owner is not None:
            owner.destroyed.connect(self._undock)

    def _ensure_docked(self) -> None:
        window = getattr(self._viewer, "window", None)
        if window is None:
            return  # a headless viewer
        # The plugin's viewer is napari's public proxy: what it returns is a proxy of the panel too.
        docked = window.dock_widgets.get(self.DOCK_NAME)
        if getattr(docked, "__wrapped__", docked) is self:
            return  # docked already: docking again added a dock (and widened the window) per result
        self._dock = window.add_dock_widget(self, name=self.DOCK_NAME, area="bottom")
        self.show()

    def _undock(self, *_) -> None:
        dock, self._dock = self._dock, None
        if dock is None:
            return
        try:
            self._viewer.window.remove_dock_widget(dock)
        except (RuntimeError, LookupError, AttributeError):
            pass  # the window is closing too

    @property
    def table(self) -> dict:
        """The table shown (column name -> array)."""
        return self.model.table

    def show_result(self, layer: Labels, table: dict | None, n_spatial: int, frame_index: tuple | None) -> None:
        """Put a run's table (from the engine) in ``layer.features`` and show it."""
        if table is None:
            return
        self._ensure_docked()
        self._watch(layer)
        self.n_spatial = n_spatial
        full = layer_table(layer, world_table(table, layer, n_spatial, frame_index), frame_index)
        labels = full.get("label", np.zeros(0, dtype=np.int64))
        layer.features = {INDEX_COLUMN: labels, **full}
        self.model.set_table(full)
        what = "area" if "area" in full else "volume"
        self.histogram.set_sizes(full.get(what, ()), what)
        self.view.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.view.resizeColumnsToContents()
        self.save_button.setEnabled(True)
        units = getattr(layer, "units", None)
        unit = str(units[-1]) if units else "pixel"
        self.caption.setText(
            f"<b>{table_length(full)} objects</b> of '{layer.name}', sizes in {unit} units, centroids in "
            "world coordinates; click a row to select its object."
        )

    def _watch(self, layer: Labels) -> None:
        # A change of the labels after the run leaves the table behind: say so. A paint event is an
        # edit (brush, fill, split, merge), a data event new labels (``layer.data = ...`` from a
        # script), the tracker's listeners an undo or redo (no public event of napari).
        if self.layer is not None:
            self.layer.events.paint.disconnect(self._on_edited)
            self.layer.events.data.disconnect(self._on_edited)
            listeners = tracker(self.layer, METADATA_KEY).listeners
            if self._on_edited in listeners:
                listeners.remove(self._on_edited)
        self.layer = layer
        layer.events.paint.connect(self._on_edited)
        layer.events.data.connect(self._on_edited)
        tracker(layer, METADATA_KEY).listeners.append(self._on_edited)

    def _on_edited(self, _event=None) -> None:
        text = self.caption.text()
        if "edited since" not in text:
            self.caption.setText(f"{text} The labels were edited since: run again to measure them.")

    def select_row(self, view_row: int) -> None:
        """Select the label of the row shown at ``view_row`` and centre the view on it (its frame shown)."""
        layer = self.layer
        if layer is None or layer not in self._viewer.layers:
            return
        row = self.model.row(view_row)
        layer.selected_label = int(row["label"])
        world = self._world_position(layer, row)
        dims = self._viewer.dims
        offset = dims.ndim - layer.ndim  # the layer's axes are the viewer's last
        for axis, value in enumerate(world):
            if offset + axis not in dims.displayed:
                dims.set_point(offset + axis, value)
        self._viewer.camera.center = tuple(world[d - offset] for d in dims.displayed if d >= offset)
        self._viewer.layers.selection.active = layer

    def _world_position(self, layer: Labels, row: dict) -> list[float]:
        """World coordinates of every axis of ``layer`` at the row's object: its frame, then its centroid."""
        n_leading = layer.ndim - self.n_spatial
        scale, translate = tuple(layer.scale), tuple(layer.translate)
        names = frame_columns(n_leading) if n_leading else ()
        frame = [float(row.get(name, 0)) * scale[i] + translate[i] for i, name in enumerate(names)]
        return frame + [float(row[f"centroid_{axis}"]) for axis in AXIS_NAMES[self.n_spatial]]

    def _on_clicked(self, index) -> None:
        self.select_row(index.row())

    @property
    def saving(self) -> bool:
        """Whether a table is being written."""
        return self._saver is not None

    def save(self, path) -> None:
        """Write the table as CSV (atomically) in a thread: 20k rows take about a second.

        The caption says where it went; a notification says what went
        wrong. The table's arrays are never changed (a new run brings new
        ones), so the thread reads them safely.
        """
        from napari.qt.threading import create_worker

        if self.saving:
            return
        self._saver = create_worker(
            write_table,
            path,
            self.table,
            _start_thread=False,
            _connect={"returned": self._on_saved, "errored": self._on_save_failed, "finished": self._on_save_done},
        )
        self.save_button.setEnabled(False)
        self._saver.start()

    def _on_saved(self, path) -> None:
        self.caption.setText(f"{self.caption.text().split(' Saved to')[0]} Saved to {path}.")

    def _on_save_failed(self, exc) -> None:
        from napari.utils.notifications import show_error

        message = str(exc) if isinstance(exc, TableError) else f"measurements not saved ({type(exc).__name__}: {exc})"
        self._notify(show_error, message)

    def _on_save_done(self) -> None:
        self._saver = None
        self.save_button.setEnabled(True)

    def _ask_where_to_save(self, _=None) -> None:
        from qtpy.QtWidgets import QFileDialog

        name = f"{self.layer.name if self.layer is not None else 'spectral'}_measurements.csv"
        path, _ = QFileDialog.getSaveFileName(self, "Save measurements", name, "CSV (*.csv)")
        if path:
            self.save(path)
