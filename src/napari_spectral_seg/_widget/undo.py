"""A run landing on the result layer is one undo step of that layer; an undo is seen as an edit.

napari's Labels layer replays its undo steps in place, pixel by pixel;
assigning ``layer.data`` leaves that history untouched, so an undo after a
re-run wrote the first run's pixels back into the second run's labels (a mix
of two runs). Here a run writes the pixels it changes with the layer's public
``data_setitem`` inside ``block_history``: one undo step, so Ctrl+Z brings
back the previous result with the user's edits, and redo the run again.

That step costs GUI-thread time in proportion to the pixels changed
(``bench/undo_step.py``); a run that changes more than
:data:`MAX_STEP_PIXELS` replaces the labels and clears the layer's history
instead (by napari's public route: an uneditable layer has none), so an undo
can never mix two runs either. napari's history itself is private (napari
0.9 warns on a plugin's access), so nothing here reads it: an
:class:`UndoTracker` mirrors it from the layer's ``paint`` events (one per
step) and wraps the layer's ``undo``/``redo`` (what Ctrl+Z and Ctrl+Shift+Z
call), so the run's parameters (``layer.metadata["spectral_seg"]``) follow
undo and redo, and an undo during a run is seen like a paint edit.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np

__all__ = ["HISTORY_LIMIT", "MAX_COMPARED_PIXELS", "MAX_STEP_PIXELS", "UndoTracker", "tracker", "write_run"]

# Pixels a run may change and still be one undo step: about 45 ms of GUI-thread time (bench/undo_step.py).
MAX_STEP_PIXELS = 2**18
# Larger results are not compared with the labels they replace (the comparison alone would hold
# napari's thread and a mask of this many bytes): their runs replace the labels and clear the history.
MAX_COMPARED_PIXELS = 2**24
# napari's Labels keeps this many undo steps (Labels._history_limit).
HISTORY_LIMIT = 100
_TRACKER = "spectral_seg_tracker"  # the wrapped undo's attribute that holds the layer's tracker


class UndoTracker:
    """The undo steps of one Labels layer, mirrored from its ``paint`` events, with the runs among them.

    Parameters
    ----------
    layer : napari.layers.Labels
        The layer; its ``undo`` and ``redo`` are wrapped (on the instance).
    key : str
        The metadata key of a run's record.

    Attributes
    ----------
    listeners : list of callable
        Called with no argument after every undo or redo.
    """

    def __init__(self, layer, key: str) -> None:
        self.layer = layer
        self.key = key
        self.listeners: list[Callable[[], None]] = []
        # Each step: None (an edit) or (record before, record after) of a run.
        self._undo: deque = deque(maxlen=HISTORY_LIMIT)
        self._redo: deque = deque(maxlen=HISTORY_LIMIT)
        self._next_run = None  # the records of the run whose step the next paint event is
        self._undo_layer, self._redo_layer = layer.undo, layer.redo
        layer.events.paint.connect(self._on_step)
        layer.events.editable.connect(self._on_editable)
        layer.undo, layer.redo = self._wrap(self.undo), self._wrap(self.redo)

    def _wrap(self, method):
        def replay() -> None:
            method()

        replay.__doc__ = method.__doc__
        setattr(replay, _TRACKER, self)
        return replay

    def _on_step(self, _event=None) -> None:
        self._undo.append(self._next_run)
        self._redo.clear()
        self._next_run = None

    def write_as_run(self, indices: tuple, values: np.ndarray, before, after) -> None:
        """``data_setitem(indices, values)`` as one undo step that is the run recorded by ``after``."""
        self._next_run = (before, after)
        with self.layer.block_history():
            self.layer.data_setitem(indices, values)
        self._next_run = None  # no step when nothing changed

    def _on_editable(self, _event=None) -> None:
        if not self.layer.editable:  # napari clears the history of a layer that is not editable
            self._undo.clear()
            self._redo.clear()

    def undo(self) -> None:
        """The layer's undo; a run's step undone brings back the record of the labels before it."""
        self._undo_layer()
        if self._undo:
            step = self._undo.pop()
            self._redo.append(step)
            if step is not None:
                self._set_record(step[0])
        self._notify()

    def redo(self) -> None:
        """The layer's redo; a run's step redone brings its record back."""
        self._redo_layer()
        if self._redo:
            step = self._redo.pop()
            self._undo.append(step)
            if step is not None:
                self._set_record(step[1])
        self._notify()

    def _set_record(self, record) -> None:
        others = {name: value for name, value in self.layer.metadata.items() if name != self.key}
        self.layer.metadata = others if record is None else {**others, self.key: record}

    def _notify(self) -> None:
        for listener in list(self.listeners):
            listener()


def tracker(layer, key: str) -> UndoTracker:
    """The layer's :class:`UndoTracker`, made on first use."""
    found = getattr(layer.undo, _TRACKER, None)
    return found if found is not None else UndoTracker(layer, key)


def write_run(layer, labels: np.ndarray, key: str, metadata: dict, frame_index: tuple | None = None) -> bool:
    """Write a run's ``labels`` into ``layer`` (all of it, or the frame ``frame_index``), as one undo step.

    Parameters
    ----------
    layer : napari.layers.Labels
        The result layer, of the labels' shape (or the stack's, with ``frame_index``).
    labels : ndarray
        The run's labels, of the layer's dtype.
    key : str
        The metadata key of the run's record.
    metadata : dict
        The run's record, put under ``key``.
    frame_index : tuple, optional
        The frame of a stack the run segmented.

    Returns
    -------
    bool
        Whether the run is an undo step; False: it changed more than
        :data:`MAX_STEP_PIXELS` pixels, the labels have more than
        :data:`MAX_COMPARED_PIXELS`, or the layer's data is not a numpy
        array, and the layer's undo history was cleared.
    """
    history = tracker(layer, key)
    before = layer.metadata.get(key)
    frame = () if frame_index is None else tuple(int(i) for i in frame_index)
    as_step = isinstance(layer.data, np.ndarray) and labels.size <= MAX_COMPARED_PIXELS
    if as_step:
        changed = (layer.data[frame] if frame else layer.data) != labels
        n_changed = int(np.count_nonzero(changed))
        as_step = n_changed <= MAX_STEP_PIXELS
    if as_step and n_changed:
        where = np.nonzero(changed)
        indices = tuple(np.full(n_changed, i, dtype=np.intp) for i in frame) + where
        history.write_as_run(indices, labels[where], before, metadata)
    elif not as_step:
        if frame:
            layer.data[frame] = labels
            layer.refresh()
        else:
            layer.data = labels
        _clear_history(layer)
    layer.metadata = {**layer.metadata, key: metadata}
    return as_step


def _clear_history(layer) -> None:
    """Clear the layer's undo history: napari drops it when the layer stops being editable."""
    mode = layer.mode
    layer.editable = False
    layer.editable = True
    layer.mode = mode
