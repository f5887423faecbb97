"""Click-to-split and click-to-merge on the widget's result layers.

A click on a segment of a result layer cuts it in two (a spectral cut of that
segment alone, :func:`napari_spectral_seg.core.split_label`), or, in merge
mode, two clicks join two segments (:func:`napari_spectral_seg.core.merge_labels`).
Each edit is one undo step of the layer, and stays in the clicked frame of a
stack (labels restart at 1 in every frame).

With an engine (the widget's), the click only reads the pixel under it: a
worker thread crops the segment (and its image) out of the layers, the engine
process computes the edit, and the edit is applied on the GUI thread when it
comes back. A click while an edit (or a run) is in progress is refused with a
message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from napari.components import LayerList
from napari.layers import Image, Labels, Points
from napari.utils.notifications import show_info, show_warning

from ..core import merge_labels, split_label
from ..core.progress import run_to_end
from .layers import METADATA_KEY, EditWatch, full_resolution, is_result_layer, seed_pixels
from .shared import slab_bounds

__all__ = [
    "CLICK_MODES",
    "ClickEditor",
    "Edit",
    "bounding_box",
    "clicked_frame",
    "edit_steps",
    "in_frame",
    "label_under",
    "seeds_in_segment",
]

CLICK_MODES = ("off", "split", "merge")


def label_under(layer: Labels, world: Sequence[float]) -> tuple[tuple[int, ...], int]:
    """The pixel index under the world position ``world`` and its label.

    Raises
    ------
    ValueError
        The position is outside the layer.
    """
    index = tuple(int(round(v)) for v in layer.world_to_data(world))
    if any(i < 0 or i >= n for i, n in zip(index, layer.data.shape)):
        raise ValueError("The click is outside the segmentation; click inside a segment.")
    return index, int(layer.data[index])


def clicked_frame(layer: Labels, index: tuple[int, ...]) -> tuple[int, ...]:
    """Leading (time) index of the clicked pixel, () for a single image or volume.

    Labels restart at 1 in every frame, so an edit must stay in its frame.
    The frame's axes are the recorded spacing's (the whole layer without).
    """
    spatial = len(layer.metadata[METADATA_KEY].get("spacing") or ()) or layer.ndim
    return tuple(index[: layer.ndim - spatial])


def in_frame(frame: tuple[int, ...], indices: tuple) -> tuple:
    """Frame-local pixel indices as indices into the whole stack."""
    if not frame:
        return indices
    n = len(indices[0])
    return tuple(np.full(n, i, dtype=np.intp) for i in frame) + tuple(indices)


def seeds_in_segment(
    points_layer: Points | None, image_layer: Image, frame_labels: np.ndarray, label: int, frame: tuple[int, ...]
) -> np.ndarray | None:
    """Seed points inside the clicked segment, in pixels of the frame, or None if fewer than two.

    With two or more, the split gives one part per point (the first
    point's part keeps the label).
    """
    if points_layer is None or len(points_layer.data) < 2:
        return None
    pixels = seed_pixels(points_layer, image_layer, frame_labels.ndim, frame or None)
    rounded = np.rint(pixels).astype(int)
    inside = np.all((rounded >= 0) & (rounded < frame_labels.shape), axis=1)
    rounded = rounded[inside]
    in_segment = rounded[frame_labels[tuple(rounded.T)] == label]
    return in_segment if len(in_segment) >= 2 else None


def bounding_box(labels: Any, values: Sequence[int], margin: int = 1) -> tuple[slice, ...] | None:
    """The box holding every pixel of ``labels`` equal to one of ``values``, ``margin`` pixels wider.

    Read a slab at a time (a worker thread's work: the GIL is free between
    slabs). None if no pixel has one of the values.
    """
    low, high = [None] * labels.ndim, [None] * labels.ndim
    for start, stop in slab_bounds(labels):
        slab = np.asarray(labels[start:stop])
        region = np.zeros(slab.shape, dtype=bool)
        for value in values:
            region |= slab == value
        for axis in range(labels.ndim):
            hits = np.flatnonzero(region.any(axis=tuple(a for a in range(labels.ndim) if a != axis)))
            if len(hits) == 0:
                break
            first, last = int(hits[0]), int(hits[-1])
            if axis == 0:
                first, last = first + start, last + start
            low[axis] = first if low[axis] is None else min(low[axis], first)
            high[axis] = last if high[axis] is None else max(high[axis], last)
    if low[0] is None:
        return None
    return tuple(slice(max(lo - margin, 0), min(hi + margin + 1, n)) for lo, hi, n in zip(low, high, labels.shape))


def _largest_label(labels: Any) -> int:
    return max((int(np.asarray(labels[start:stop]).max()) for start, stop in slab_bounds(labels)), default=0)


@dataclass
class Edit:
    """One click edit: what it reads, and where it goes.

    Attributes
    ----------
    kind : {"split", "merge"}
    layer : Labels
        The result layer edited.
    frame : tuple
        The clicked frame of a stack (``()`` for one image).
    labels : array-like
        The frame's labels (a view of the layer's data).
    image : array-like or None
        The frame of the image the result was computed from (split only).
    options : dict
        Keyword arguments of the core function (``label``, ``seeds``... for
        a split; ``keep``, ``other`` for a merge).
    """

    kind: str
    layer: Labels
    frame: tuple
    labels: Any
    image: Any = None
    options: dict = field(default_factory=dict)

    @property
    def touched(self) -> tuple[int, ...]:
        """The labels the edit changes or needs."""
        if self.kind == "split":
            return (self.options["label"],)
        return (self.options["keep"], self.options["other"])


def edit_steps(edit: Edit, engine=None) -> Generator[Any, None, tuple]:
    """Compute ``edit`` on a crop around its segments: in ``engine`` if given, else here.

    What the worker thread runs: the crop is read a slab at a time, the
    engine computes (yielding its heartbeats), and the indices come back
    in the frame's coordinates.

    Returns
    -------
    indices : tuple of ndarray
        Pixels of the frame to change.
    values : ndarray or int
        Their new labels.
    """
    box = bounding_box(edit.labels, edit.touched)
    if box is None:
        raise ValueError("The segment is no longer in the layer; click on a segment.")
    labels = np.array(edit.labels[box])
    options = dict(edit.options)
    image = None
    if edit.kind == "split":
        image = np.asarray(edit.image[box])  # a crop: a dask image computes only these chunks
        options["next_label"] = _largest_label(edit.labels) + 1
        if options.get("seeds") is not None:
            options["seeds"] = np.asarray(options["seeds"], dtype=float) - [s.start for s in box]
    if engine is not None:
        local, values = yield from engine.run(edit.kind, image, labels, options)
    elif edit.kind == "split":
        local, values = split_label(image, labels, **options)
    else:
        local, values = merge_labels(labels, **options)
    return tuple(np.asarray(c) + s.start for c, s in zip(local, box)), values


class ClickEditor:
    """Split or merge segments of the result layers where the user clicks.

    Parameters
    ----------
    layers : LayerList
        The viewer's layers: result layers get the click callback, and the
        image a result was computed from is found here by name.
    seed_points : callable
        Returns the seed-points layer chosen in the widget (or None).
    report : callable
        Called with a status line when an edit starts and after it.
    engine : EngineProcess, optional
        Compute the edits there, from a worker thread, and apply them when
        they come back (the widget). Without, an edit is computed in the
        calling thread before ``split_at`` / ``merge_at`` return.
    run_busy : callable, optional
        Returns whether the engine is running a segmentation (a click then
        is refused).
    """

    def __init__(
        self,
        layers: LayerList,
        seed_points: Callable[[], Points | None],
        report: Callable[[str], object],
        *,
        engine=None,
        run_busy: Callable[[], bool] | None = None,
    ) -> None:
        self._layers = layers
        self._seed_points = seed_points
        self._report = report
        self._engine = engine
        self._run_busy = run_busy if run_busy is not None else (lambda: False)
        self.mode = "off"
        self._merge_first = None  # (frame, label) picked by the first click in merge mode
        self._clicked_layers = []  # result layers carrying our mouse callback
        self._worker = None  # the edit in progress (with an engine)
        self._closed = False

    @property
    def busy(self) -> bool:
        """Whether an edit is being computed."""
        return self._worker is not None

    def close(self) -> None:
        """The widget is going away: an edit still coming is dropped."""
        self._closed = True

    def install(self, mode: str) -> None:
        """Switch to ``mode`` (one of :data:`CLICK_MODES`): the callback goes on every result layer."""
        self.mode = mode
        self._merge_first = None
        for layer in self._clicked_layers:
            if self.on_click in layer.mouse_drag_callbacks:
                layer.mouse_drag_callbacks.remove(self.on_click)
        self._clicked_layers = []
        if mode == "off":
            return
        for layer in self._layers:
            if is_result_layer(layer):
                layer.mouse_drag_callbacks.append(self.on_click)
                self._clicked_layers.append(layer)
        if not self._clicked_layers:
            show_info("No segmentation result yet: click Run first, then click on its segments.")

    def on_click(self, layer: Labels, event: Any) -> None:
        """The mouse callback: split or merge at the click; a problem is a warning."""
        if event.type != "mouse_press":
            return
        world = np.asarray(event.position)
        try:
            if self.mode == "split":
                self.split_at(world, layer)
            elif self.mode == "merge":
                self.merge_at(world, layer)
        except (ValueError, KeyError, IndexError) as exc:
            show_warning(str(exc))

    def _check_free(self) -> None:
        if self.busy:
            raise ValueError("An edit is still being computed; click again when it has finished.")
        if self._run_busy():
            raise ValueError("A segmentation is running; edit the result when it has finished.")

    def split_at(self, world_position: Sequence[float], layer: Labels | None = None) -> None:
        """Split the segment under ``world_position`` in two (one undo step).

        With an engine the split is computed in the background and applied
        when it comes back; the status line says when.

        Raises
        ------
        ValueError
            The click is on the background or outside, the image the
            result was computed from is no longer in the viewer, or an
            edit or a run is in progress.
        """
        self._check_free()
        layer = layer if layer is not None else self._clicked_layers[0]
        index, label = label_under(layer, world_position)
        if label == 0:
            raise ValueError("That click is on the background; click inside the segment to split.")
        params = layer.metadata[METADATA_KEY]
        if params["image"] not in self._layers:
            raise ValueError(
                f"The image '{params['image']}' this result was computed from is no longer in the viewer "
                "(renamed or removed); run the segmentation again."
            )
        image_layer = self._layers[params["image"]]
        frame = clicked_frame(layer, index)
        frame_labels = layer.data[frame]  # a view: read by the worker
        options = dict(
            label=label,
            seeds=seeds_in_segment(self._seed_points(), image_layer, frame_labels, label, frame),
            beta=params["beta"],
            random_state=params["random_state"],
            spacing=params.get("spacing"),
            sigma=params.get("sigma_used", params.get("sigma")),  # the width used, also when "auto" chose it
            channel_axis=-1 if image_layer.rgb else None,
        )
        image = full_resolution(image_layer)[frame]
        self._start(Edit("split", layer, frame, frame_labels, image, options), f"splitting label {label}...")

    def merge_at(self, world_position: Sequence[float], layer: Labels | None = None) -> None:
        """First call picks a segment, the second merges the segment under it into the first.

        Raises
        ------
        ValueError
            A click on the background or outside, the two segments are
            in different frames, or an edit or a run is in progress.
        """
        self._check_free()
        layer = layer if layer is not None else self._clicked_layers[0]
        index, label = label_under(layer, world_position)
        if label == 0:
            raise ValueError("That click is on the background; click inside a segment to merge.")
        frame = clicked_frame(layer, index)
        if self._merge_first is None or self._merge_first == (frame, label):
            self._merge_first = (frame, label)
            self._report(f"merge: label {label} picked, click the segment to join to it")
            return
        first_frame, keep = self._merge_first
        self._merge_first = None
        if first_frame != frame:
            raise ValueError("The two segments to merge are in different frames; click two segments of one frame.")
        edit = Edit("merge", layer, frame, layer.data[frame], options=dict(keep=keep, other=label))
        self._start(edit, f"merging label {label} into {keep}...")

    def _start(self, edit: Edit, status: str) -> None:
        """Compute ``edit``: here and now without an engine, else in the background."""
        started = time.perf_counter()
        if self._engine is None:
            result = run_to_end(edit_steps(edit))
            self._apply(edit, result, started, EditWatch(None))
            return
        from napari.qt.threading import create_worker
        from qtpy.QtCore import Qt
        from qtpy.QtWidgets import QApplication

        watch = EditWatch(edit.layer)  # a paint meanwhile makes the edit stale
        worker = create_worker(
            edit_steps,
            edit,
            self._engine,
            _start_thread=False,
            _connect={
                "returned": lambda result: self._apply(edit, result, started, watch),
                "errored": lambda exc: self._failed(exc),
                "finished": lambda: self._finished(watch),
            },
        )
        self._worker = worker
        QApplication.setOverrideCursor(Qt.CursorShape.BusyCursor)
        self._report(status)
        worker.start()

    def _apply(self, edit: Edit, result: tuple, started: float, watch: EditWatch) -> None:
        """Put a computed edit into its layer as one undo step (GUI thread)."""
        if self._closed:
            return
        layer = edit.layer
        if layer not in self._layers:
            self._report("edit dropped: its layer was removed")
            return
        if watch.edited:
            show_warning(f"'{layer.name}' changed while the edit was computed, so it was not applied; click again.")
            self._report("edit not applied")
            return
        indices, values = result
        with layer.block_history():
            layer.data_setitem(in_frame(edit.frame, indices), values)
        seconds = time.perf_counter() - started
        if edit.kind == "split":
            self._report(f"split label {edit.options['label']} in {seconds:.2f} s")
        else:
            self._report(f"merged label {edit.options['other']} into {edit.options['keep']}")

    def _failed(self, exc: Exception) -> None:
        if self._closed:
            return
        show_warning(str(exc) if isinstance(exc, ValueError) else f"The edit failed ({type(exc).__name__}): {exc}")
        self._report("edit failed")

    def _finished(self, watch: EditWatch) -> None:
        from qtpy.QtWidgets import QApplication

        watch.close()
        self._worker = None
        QApplication.restoreOverrideCursor()
