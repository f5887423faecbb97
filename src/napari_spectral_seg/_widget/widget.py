"""The "Spectral segmentation" dock widget.

Thin by design: the parameter fields come from :mod:`.form`, the layers are
chosen and the result layer written by :mod:`.layers`, clicks on the result
are edits of :mod:`.clicks` (computed by the engine too), and the
segmentation runs on the engine of :mod:`.engine` (a child process) from a
``napari.qt.threading`` worker that reads the layers' pixels into shared
memory (:mod:`.shared`) and relays progress. The worker never touches the
viewer: the result is put into the viewer on the main thread.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox, Container, Label, PushButton
from napari.layers import Image, Labels, Points, Shapes
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QTimer

from .. import __version__
from ..core.params import SegmentationParams
from ..core.pipeline import SegmentationResult
from ..core.progress import SegmentationCancelled
from .blockwise import BlockwisePanel
from .clicks import CLICK_MODES, ClickEditor
from .engine import HEARTBEAT, EngineProcess, run_seconds, segment_in_worker
from .files import write_atomically
from .fit import PointsClickNotice, RefitOnDock, wrap_status
from .form import COMPOUNDS, ParameterForm
from .layers import (
    METADATA_KEY,
    EditWatch,
    collect_job,
    default_dims,
    is_result_layer,
    layer_parameters,
    put_result,
    recorded_parameters,
    result_layer,
    result_layer_name,
    result_metadata,
    spatial_ndim,
)
from .levels import LevelFields
from .measurements import MeasurementsPanel
from .messages import for_widget, headline
from .progress_bar import DockProgress
from .run_status import ThrottledProgress
from .shared import close_all_blocks

if TYPE_CHECKING:
    import napari

__all__ = ["METADATA_KEY", "SpectralSegmentationWidget", "result_layer_name"]

DIMS = ("2D", "3D")
FRAMES = ("current frame", "all frames")


def _result_status(n_segments: int, seconds: dict, n_frames: int | None = None) -> str:
    """Status line after a run: segments (all frames together) and time, engine start-up shown apart."""
    startup = seconds.get("engine_start", 0.0)
    what = f"{n_segments} segments" if n_frames is None else f"{n_segments} segments in {n_frames} frames"
    if startup < 0.5:  # the engine was ready: the usual case
        return f"{what} in {run_seconds(seconds):.2f} s"
    return f"{what} in {run_seconds(seconds):.2f} s (+ {startup:.1f} s engine start-up)"


def _heading(text: str) -> Label:
    return Label(value=f"<b>{text}</b>", label="")


class SpectralSegmentationWidget(Container):
    """Dock widget: segment the chosen image layer by spectral clustering.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer whose layers are read and written.

    Notes
    -----
    Sub-widgets, by name, for scripts and tests: ``image``, ``mask``,
    ``auto_threshold``, ``threshold``, ``n_clusters``, ``auto_segments``,
    ``sensitivity``, ``edge_level``, ``beta``, ``sigma``, ``eigen_solver``, ``min_size``,
    ``dims``, ``frames``, ``level``, ``region``, ``blockwise_output``, ``block_size``, ``workers``,
    ``run_blockwise`` (:mod:`.blockwise`), ``seeds``, ``seed``, ``run``, ``cancel``, ``progress``,
    ``click_mode``, ``save_params``, ``status``; ``measurements``: the last result's table (:mod:`.measurements`).
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        self._viewer = napari_viewer
        self._worker = None
        self._bar = DockProgress()
        self._job = None  # what the running worker was started with
        self._cancel_requested = False  # Cancel was asked for this run: its result, if it comes, is dropped
        self._cancel = threading.Event()  # set by Cancel: the worker stops reading, the engine its job
        self._watch = EditWatch(None)  # edits of the result layer during the run
        self._typed_threshold = None  # the threshold the user typed, kept while Otsu is ticked
        self._closed = False  # set when the Qt widget is destroyed
        # The engine runs in a child process; start it now so its imports
        # are done by the time the user clicks Run.
        self._engine = EngineProcess()
        self._engine.start()
        self._form = ParameterForm()
        self._levels = LevelFields(napari_viewer)
        self.level, self.region = self._levels.widgets
        self._add_controls()
        # The last result's table, docked below the canvas when a result arrives.
        self.measurements = MeasurementsPanel(napari_viewer, self._notify, owner=self.native)
        self._clicks = ClickEditor(
            napari_viewer.layers, lambda: self.seeds.value, self._show_status, engine=self._engine, run_busy=self._busy
        )
        # The run's progress, at most one repaint every half second (each repaints the whole window under Xvfb).
        self._progress = ThrottledProgress(self._bar, self._show_status)
        self._connect()
        self.reset_choices()
        self._follow_active_layer()
        self._on_image_changed()  # the first choice was set before the signals were connected
        self._update_enabled()
        self._refit = RefitOnDock(napari_viewer, self.native)
        self._status_elision = wrap_status(self.status.native)
        self._points_notice = PointsClickNotice(
            napari_viewer, lambda: [layer.name for layer in napari_viewer.layers if is_result_layer(layer)]
        )

    def _add_controls(self) -> None:
        """The layer pickers and buttons, then every control in its group under a heading.

        A parameter field not placed in a group here (one declared later) goes
        under "Fine tuning", so a new parameter needs no widget code.
        """
        self._make_pickers_and_buttons()
        self._blockwise = BlockwisePanel(self._viewer, self, self._notify, self._bar)
        form = self._form.widgets
        # Grouped by the question each answers, with a heading per group.
        groups = {
            "What to segment": [
                self.image,
                self.mask,
                *(
                    form[name]
                    for name in (
                        "polarity",
                        "auto_threshold",
                        "threshold",
                        "dim_objects",
                        "low_threshold",
                        "background",
                        "auto_min_size",
                        "min_size",
                        "auto_sigma",
                        "sigma",
                    )
                ),
            ],
            "How many segments": [
                *(form[name] for name in ("n_clusters", "auto_segments", "sensitivity", "edge_level")),
                self.seeds,
            ],
            "Stacks": [self.dims, self.frames],
            "Large images": [self.level, self.region, *self._blockwise.widgets],
            "Fine tuning": [form["beta"], form["eigen_solver"], form["seed"]],
        }
        placed = {id(widget) for widgets in groups.values() for widget in widgets}
        groups["Fine tuning"] += [widget for widget in form.values() if id(widget) not in placed]
        controls = []
        for heading, widgets in groups.items():
            controls += [_heading(heading), *widgets]
        controls += [
            self.run,
            self.cancel,
            self._bar.widget,
            self.status,
            _heading("Edit the result"),
            self.click_mode,
            self.save_params,
        ]
        self.extend(controls)

    def _make_pickers_and_buttons(self) -> None:
        """The layer pickers, the stack and click choices, the buttons and the status line."""
        self.image = ComboBox(
            name="image",
            label="image",
            choices=self._image_choices,
            tooltip="Image layer to segment (the active one by default).",
        )
        self.mask = ComboBox(
            name="mask",
            label="mask",
            choices=self._mask_choices,
            tooltip="Labels layer (each label region is segmented on its own, no threshold) or "
            "Shapes layer (a region of interest: the threshold applies inside the drawn regions). "
            "'none': the threshold over the whole image.",
        )
        self.seeds = ComboBox(
            name="seeds",
            label="seed points",
            choices=self._points_choices,
            tooltip="Points layer: one segment per point (label i holds point i); 'none' uses the number of segments.",
        )
        self.dims = ComboBox(
            name="dims",
            label="segment in",
            choices=list(DIMS),
            value="2D",
            tooltip="2D: each (y, x) plane is a frame. 3D: each (z, y, x) volume is one, "
            "segmented with the layer's scale as voxel size.",
        )
        self.frames = ComboBox(
            name="frames",
            label="frames",
            choices=list(FRAMES),
            value="current frame",
            enabled=False,
            tooltip="For stacks with more axes than 'segment in' (time series): the frame "
            "shown in the viewer, or every frame (cancel stops between frames).",
        )
        self.click_mode = ComboBox(
            name="click_mode",
            label="click on result",
            choices=list(CLICK_MODES),
            value="off",
            tooltip="split: a click on a segment cuts it in two (spectral cut of that "
            "segment alone). merge: click two segments to join them. "
            "Each edit is one undo step (Ctrl+Z on the result layer).",
        )
        self.run = PushButton(name="run", text="Run")
        self.cancel = PushButton(name="cancel", text="Cancel", enabled=False)
        self.save_params = PushButton(
            name="save_params",
            text="Save parameters...",
            tooltip="Write the current parameters to a JSON file for `napari-spectral-seg batch --params FILE`.",
        )
        self.status = Label(name="status", value="")

    def _connect(self) -> None:
        form = self._form.widgets
        for choice in (form[compound.name] for compound in COMPOUNDS):
            choice.changed.connect(self._update_enabled)
        for picker in (self.mask, self.seeds):
            # Qt's signal: magicgui's `changed` is never emitted for the "none" choice (None).
            picker.native.currentIndexChanged.connect(self._update_enabled)
        self.image.changed.connect(self._on_image_changed)
        self.run.changed.connect(self.start)
        self.cancel.changed.connect(self.stop)
        self.save_params.changed.connect(self._ask_where_to_save)
        self.click_mode.changed.connect(self._install_click_callbacks)
        self.dims.changed.connect(self._update_frames_enabled)
        form["auto_threshold"].changed.connect(self._on_otsu_toggled)
        layer_events = self._viewer.layers.events
        layer_events.removed.connect(self._on_layer_removed)
        for event in (layer_events.inserted, layer_events.removed, layer_events.reordered):
            event.connect(self.reset_choices)
        self._viewer.layers.selection.events.active.connect(self._follow_active_layer)
        self.native.destroyed.connect(self._on_destroyed)

    def _show_status(self, text: str) -> None:
        self.status.value = text

    # ------------------------------------------------------------ choices
    def _image_choices(self, _widget=None):
        return [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, Image)]

    def _mask_choices(self, _widget=None):
        masks = [
            (layer.name, layer)
            for layer in self._viewer.layers
            if (isinstance(layer, Labels) and not is_result_layer(layer)) or isinstance(layer, Shapes)
        ]
        return [("none", None), *masks]

    def _points_choices(self, _widget=None):
        points = [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, Points)]
        return [("none", None), *points]

    def _follow_active_layer(self, event=None):
        active = self._viewer.layers.selection.active
        if isinstance(active, Image) and active in [v for _, v in self._image_choices()]:
            self.image.value = active

    def _update_enabled(self, _=None):
        self._form.update_enabled(uses_mask=isinstance(self.mask.value, Labels), seeded=self.seeds.value is not None)

    def _update_frames_enabled(self, _=None):
        layer = self.image.value
        self.frames.enabled = layer is not None and layer.ndim > self._spatial_ndim(layer)

    def _spatial_ndim(self, layer) -> int:
        return spatial_ndim(layer, int(self.dims.value[0]))

    def _on_image_changed(self, layer=None):
        layer = self.image.value
        if layer is None:
            return
        # A (t, y, x) movie is segmented frame by frame; a z-stack as a volume.
        self.dims.value = f"{default_dims(layer, self._viewer.dims.axis_labels)}D"
        self._update_frames_enabled()
        self._levels.set_layer(layer, self._spatial_ndim(layer))
        lo, hi = (float(v) for v in layer.contrast_limits_range)
        if self.auto_threshold.value:  # informational while Otsu is ticked; a typed value is kept apart
            self.threshold.value = (lo + hi) / 2

    def _on_otsu_toggled(self, ticked: bool) -> None:
        """Ticked: the field shows Otsu's values, the typed value is kept; unticked: the typed value is back."""
        if ticked:
            self._typed_threshold = float(self.threshold.value)
        elif self._typed_threshold is not None:
            self.threshold.value = self._typed_threshold

    # ------------------------------------------------------------ parameters
    def current_parameters(self) -> SegmentationParams:
        """The fields and the image layer's geometry (spacing, channel axis) as parameters.

        Without seed points (read from their layer when a run starts); a
        Labels mask makes the threshold None, a Shapes region of interest
        keeps it (Otsu's inside the region). ``.as_kwargs()`` gives keyword
        arguments of :func:`napari_spectral_seg.segment`.
        """
        layer = self.image.value
        geometry = {} if layer is None else layer_parameters(layer, self._spatial_ndim(layer))
        mask = self.mask.value
        return self._form.parameters(
            uses_mask=isinstance(mask, Labels), roi=isinstance(mask, Shapes), layer_parameters=geometry
        )

    def save_parameters(self, path: str | os.PathLike) -> None:
        """Write the current parameters as JSON ``{"spectral_seg": {...}}``, the format
        ``napari-spectral-seg batch --params`` reads, so a batch run replays this widget exactly."""
        import json
        from pathlib import Path

        path = Path(path)
        if not path.parent.is_dir():
            message = (  # the path last: the status line shows the first sentence, the tooltip all
                f"Parameters not saved: the folder '{path.parent.name}' does not exist; choose an existing folder. "
                f"It was looked for at {path.parent}."
            )
            self._notify(show_error, message, status="")
            return
        record = recorded_parameters(self.current_parameters(), from_layer=self.image.value is not None)
        text = json.dumps({METADATA_KEY: dict(record, version=__version__)}, indent=2)
        try:
            write_atomically(path, text)
        except OSError as exc:
            self._notify(show_error, f"Parameters not saved to {path}: {exc.strerror or exc}.", status="")
            return
        self.status.value = f"parameters saved to {path.name}"

    def _notify(self, show, message: str, status: str | None = None) -> None:
        """A notification of ``message`` in the fields' words, also the status line's tooltip.

        napari's notification shows its first line alone (about 40 characters)
        until expanded: it starts with what is wrong, the whole text behind its
        expand button. With ``status``, the status line (in the dock, wrapped)
        shows the first sentence with its fix, after ``status: `` unless it is "".
        """
        text = for_widget(message)
        show(text)
        self.status.tooltip = text
        if status is not None:
            self.status.value = f"{status}: {headline(text)}" if status else headline(text)

    def _ask_where_to_save(self, _=None):
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(
            self.native, "Save parameters", "spectral_seg_params.json", "JSON (*.json)"
        )
        if path:
            self.save_parameters(path)

    # ------------------------------------------------------------ running
    @property
    def running(self) -> bool:
        """Whether a segmentation is running."""
        return self._worker is not None

    def _busy(self) -> bool:
        """Whether the engine is in use: a segmentation or a click edit is running."""
        return self.running or self._clicks.busy

    def start(self, _=None) -> None:
        """Start a segmentation with the current fields (does nothing while one runs)."""
        if self.running:
            return
        if self._clicks.busy:
            self._notify(show_info, "An edit of the result is running; click Run again when it has finished.")
            return
        layer = self.image.value
        try:
            placement = None if layer is None else self._levels.placement(layer, self._spatial_ndim(layer))
            job = collect_job(
                layer,
                self.mask.value,
                self.seeds.value,
                self.current_parameters(),
                dims=int(self.dims.value[0]),
                all_frames=self.frames.value == "all frames",
                dims_point=self._viewer.dims.point,
                placement=placement,
            )
        except ValueError as exc:
            self._notify(show_warning, str(exc), status="not started")
            return
        self._job = job
        self._cancel_requested = False
        self._cancel = threading.Event()
        # The result layer this run lands on: edits made to it meanwhile are never overwritten.
        self._watch = EditWatch(result_layer(self._viewer.layers, job.layer))
        self._progress.start("Spectral segmentation")
        worker = create_worker(
            segment_in_worker,
            self._engine,
            job.image,
            job.mask,
            job.params,
            job.spatial_ndim,
            job.stack_parameters() if job.all_frames else None,
            self._cancel,
            _start_thread=False,
            _connect={
                "yielded": self._on_progress,
                "returned": self._on_result,
                "errored": self._on_error,
                "aborted": self._on_aborted,
                "finished": self._on_finished,
            },
        )
        self._worker = worker
        self.run.enabled = False
        self.cancel.enabled = True
        # A Run while the engine starts (or drops a cancelled job) waits for it: the status says so.
        ready = self._engine.state == "idle"
        self.status.value = "running..." if ready else "queued: waiting for the engine to start..."
        worker.start()

    def stop(self, _=None) -> None:
        """Ask the running segmentation (or blockwise run) to stop at its next step."""
        self._blockwise.stop()
        if self._worker is not None:
            self._cancel_requested = True
            self._progress.drop()
            self.status.value = "cancelling..."
            # The worker stops reading, the engine drops its job and stays ready for the next Run.
            self._cancel.set()

    def _on_layer_removed(self, event) -> None:
        """The image being segmented, or the result layer it lands on, was removed: cancel the run."""
        job = self._job
        if job is None or self._worker is None:
            return
        removed = event.value
        if removed is job.layer or removed is self._watch.layer:
            what = "Image" if removed is job.layer else "Result layer"
            self._cancel_requested = True
            self._cancel.set()  # thread-safe, no Qt: the run stops at once
            # The status and the notification wait for napari to finish removing the layer
            # (its canvas drops the layer's visual after this handler): nothing of ours runs mid-removal.
            message = f"{what} '{removed.name}' was removed while it was being segmented; the run was cancelled."
            QTimer.singleShot(0, lambda: self._removed_notice(message))

    def _removed_notice(self, message: str) -> None:
        if self._closed:
            return
        show_info(message)
        if self.running:
            self._progress.drop()
            self.status.value = "cancelling..."

    def wait(self, timeout: float = 60.0) -> None:
        """Block (processing Qt events) until the running segmentation or click edit ends; for scripts."""
        from qtpy.QtWidgets import QApplication

        deadline = time.monotonic() + timeout
        while self._busy() and time.monotonic() < deadline:
            QApplication.processEvents()
            time.sleep(0.01)
        if self._busy():
            raise TimeoutError(f"segmentation (or an edit) still running after {timeout} s")

    # ------------------------------------------------------------ worker callbacks (main thread)
    def _on_progress(self, update):
        if self._closed or update is HEARTBEAT:
            return
        if isinstance(update, str):  # a warning from the pipeline
            self._notify(show_warning, update)
            return
        self._progress.push(update)

    def _on_result(self, result: SegmentationResult):
        if self._closed:
            return
        self._progress.drop()  # the result's status line replaces any progress still waiting
        job = self._job
        if self._cancel_requested:
            # The result was on its way when Cancel (or the removal of its image) stopped the run:
            # a cancelled run changes no layer, whenever its result arrives.
            self.status.value = "cancelled"
            return
        if job.layer not in self._viewer.layers:
            show_warning(
                f"Image '{job.layer.name}' was removed while it was being segmented; the result was discarded."
            )
            self.status.value = "discarded (image removed)"
            return
        metadata = result_metadata(job, result, run_seconds(result.seconds))
        edited = self._watch.edited
        layer = put_result(self._viewer.layers, job, result.labels, metadata, new_layer=edited)
        self.measurements.show_result(
            layer, result.measurements, job.spatial_ndim or result.labels.ndim, job.frame_index
        )
        if edited:
            show_info(
                f"'{self._watch.layer.name}' was edited during the run, so your edits are kept; "
                f"the new result is in '{layer.name}'."
            )
        self._install_click_callbacks()
        used = metadata["threshold_used"]
        # Only while Otsu is ticked (the field is informational then): a typed threshold is never replaced.
        if isinstance(used, float) and metadata["threshold"] in ("otsu", "auto") and self.auto_threshold.value:
            self.threshold.value = used
        noticed = self._form.show_chosen(metadata)
        n_frames = len(result.parameters.get("per_frame", {})) if job.all_frames else None
        self.status.value = _result_status(metadata["n_segments"], result.seconds, n_frames) + noticed

    def _on_error(self, exc):
        if self._closed:
            return
        self._progress.drop()
        if isinstance(exc, SegmentationCancelled) or self._cancel_requested:
            # The status line says so; a notification too would cost the GUI thread a
            # repaint per frame of its slide-in (bench/ui_latency.py).
            self.status.value = "cancelled"
            return
        known = isinstance(exc, (ValueError, TypeError, MemoryError))
        self._notify(show_error, str(exc) if known else f"{type(exc).__name__}: {exc}", status="failed")

    def _on_aborted(self):
        if self._closed:
            self._engine.terminate()
            return
        # The worker was stopped (not by Cancel, which ends the engine's job and
        # the worker with it): the engine may still be busy with the abandoned job,
        # so a fresh one starts now (without waiting) and the next Run finds it ready.
        self._engine.restart()
        show_info("Spectral segmentation cancelled; no layer was changed.")
        self.status.value = "cancelled"

    def _on_finished(self):
        self._progress.finish(hide_bar=not self._closed)  # a closed dock's bar is deleted with it
        self._worker = None
        self._job = None
        self._watch.close()
        self._watch = EditWatch(None)
        if self._closed:
            return
        if self._cancel_requested and self.status.value == "cancelling...":
            # Cancel came as the run ended: the worker stopped with neither its result
            # nor an abort, and the engine may hold an unread reply: a cancel like any other.
            self._on_aborted()
        self.run.enabled = True
        self.cancel.enabled = False

    def _on_destroyed(self, *_):
        # The viewer (or the dock) closed: stop the worker and the engine;
        # callbacks of a worker that still finishes find _closed and do nothing.
        self._closed = True
        self._progress.finish(hide_bar=False)  # no update waits to be shown on a deleted label
        self._points_notice.set_mode("off")  # the viewer's callback goes with the widget
        self._cancel.set()
        self._blockwise.close()
        self._clicks.close()
        if self._worker is not None:
            self._worker.quit()
        self._engine.terminate()
        close_all_blocks(self._engine)

    # ------------------------------------------------------------ click to split / merge
    def _install_click_callbacks(self, _=None):
        self._clicks.install(self.click_mode.value)
        self._points_notice.set_mode(self.click_mode.value)

    def split_at(self, world_position: Sequence[float], layer: Labels | None = None) -> None:
        """Split the segment under ``world_position`` in two (one undo step)."""
        self._clicks.split_at(world_position, layer)

    def merge_at(self, world_position: Sequence[float], layer: Labels | None = None) -> None:
        """First call picks a segment, the second merges the segment under it into the first."""
        self._clicks.merge_at(world_position, layer)
