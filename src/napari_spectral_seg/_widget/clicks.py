"""Click-to-split and click-to-merge on the widget's result layers.

A click on a segment of a result layer cuts it in two (a spectral cut of that
segment alone, :func:`napari_spectral_seg.core.split_label`), or, in merge
mode, two clicks join two segments (:func:`napari_spectral_seg.core.merge_labels`).
Each edit is one undo step of the layer, and stays in the clicked frame of a
stack (labels restart at 1 in every frame).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from napari.components import LayerList
from napari.layers import Image, Labels, Points
from napari.utils.notifications import show_info, show_warning

from ..core import merge_labels, split_label
from .layers import METADATA_KEY, full_resolution, is_result_layer, seed_pixels

__all__ = ["CLICK_MODES", "ClickEditor", "clicked_frame", "in_frame", "label_under", "seeds_in_segment"]

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
        Called with a status line after each edit.
    """

    def __init__(
        self, layers: LayerList, seed_points: Callable[[], Points | None], report: Callable[[str], object]
    ) -> None:
        self._layers = layers
        self._seed_points = seed_points
        self._report = report
        self.mode = "off"
        self._merge_first = None  # (frame, label) picked by the first click in merge mode
        self._clicked_layers = []  # result layers carrying our mouse callback

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

    def split_at(self, world_position: Sequence[float], layer: Labels | None = None) -> None:
        """Split the segment under ``world_position`` in two (one undo step).

        Raises
        ------
        ValueError
            The click is on the background or outside, or the image the
            result was computed from is no longer in the viewer.
        """
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
        image = full_resolution(image_layer)
        frame = clicked_frame(layer, index)
        frame_labels = np.asarray(layer.data[frame])
        started = time.perf_counter()
        indices, values = split_label(
            np.asarray(image[frame]),
            frame_labels,
            label,
            seeds=seeds_in_segment(self._seed_points(), image_layer, frame_labels, label, frame),
            beta=params["beta"],
            random_state=params["random_state"],
            spacing=params.get("spacing"),
            sigma=params.get("sigma_used", params.get("sigma")),  # the width used, also when "auto" chose it
            channel_axis=-1 if image_layer.rgb else None,
        )
        with layer.block_history():
            layer.data_setitem(in_frame(frame, indices), values)
        self._report(f"split label {label} in {time.perf_counter() - started:.2f} s")

    def merge_at(self, world_position: Sequence[float], layer: Labels | None = None) -> None:
        """First call picks a segment, the second merges the segment under it into the first.

        Raises
        ------
        ValueError
            A click on the background or outside, or the two segments are
            in different frames.
        """
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
        if first_frame != frame:
            self._merge_first = None
            raise ValueError("The two segments to merge are in different frames; click two segments of one frame.")
        indices, value = merge_labels(np.asarray(layer.data[frame]), keep, label)
        with layer.block_history():
            layer.data_setitem(in_frame(frame, indices), value)
        self._report(f"merged label {label} into {keep}")
        self._merge_first = None
