""" "Run blockwise" in the dock widget: an image larger than memory, segmented on a local dask cluster.

The run reads the image layer's own file or store (``layer.source.path``)
on the cluster's worker processes, block by block, and writes an OME-Zarr
labels image to the ``.zarr`` the user picks, or, for an image read from an
OME-Zarr, into that store beside the image (see
:func:`napari_spectral_seg.blockwise.segment_blockwise`). An existing
output (or ``labels/<name>``) is replaced only when "replace existing
labels" is ticked for that run; otherwise the run is refused with what to do. Everything slow
happens off the GUI thread: a ``napari.qt.threading`` worker starts the
cluster and the run in a thread of its own and relays its per-block
progress; the GUI thread only reads the layer's path and the fields, moves
the progress bar and, at the end, adds a Labels layer whose levels are
dask arrays read lazily from the written store. Cancel stops the run
within a fraction of a second; the finished blocks are kept, so Run
blockwise with the same output resumes it.
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path

import numpy as np
from magicgui.widgets import CheckBox, FileEdit, LineEdit, PushButton, SpinBox
from napari.layers import Image
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info, show_warning

from ..core.params import SegmentationParams
from ..core.progress import Progress
from .run_status import ThrottledProgress

__all__ = ["BlockwisePanel", "blockwise_steps", "open_labels", "source_path"]

# What the worker yields before the first block is done.
_STARTING = Progress("blockwise", 0.0, "starting the cluster, then the whole-image decisions (threshold, sizes)...")


def source_path(layer: Image) -> str:
    """The file or store the layer was read from, which the cluster's workers read themselves.

    Raises
    ------
    ValueError
        The layer has no file behind it (made in memory, or an in-memory dask array).
    """
    path = getattr(getattr(layer, "source", None), "path", None)
    if not path:
        raise ValueError(
            f"Run blockwise: image '{layer.name}' has no file behind it (it was made in memory), and the "
            "cluster's workers read the image from its file. Save it as a zarr array or OME-Zarr "
            "(e.g. dask.array.to_zarr(layer.data, 'image.zarr')), open that file in napari, and run again; "
            "or use Run for an image that fits in memory."
        )
    return str(path)


def open_labels(labels_path) -> tuple[list, dict]:
    """The levels of a written OME-Zarr labels image as lazy dask arrays, and its ``spectral_seg`` attributes."""
    import dask.array as da
    import zarr

    from ..blockwise.source import multiscales_of

    attributes = dict(zarr.open_group(str(labels_path), mode="r").attrs)
    paths = [dataset["path"] for dataset in multiscales_of(attributes)[0]["datasets"]]
    levels = [da.from_zarr(str(Path(labels_path) / path)) for path in paths]
    return levels, dict(attributes.get("spectral_seg", {}))


def blockwise_steps(path: str, output: str, options: dict, params: SegmentationParams, cancel: threading.Event):
    """Generator run by the widget's worker: yields the run's :class:`Progress` (blocks done of all).

    ``segment_blockwise`` runs in a thread of its own (its progress callback
    cannot yield); this generator relays what it reports. Returns the run's
    summary, the lazy label levels and their recorded attributes.
    """
    from ..blockwise import segment_blockwise

    reports: queue.Queue = queue.Queue()
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["summary"] = segment_blockwise(
                path,
                output,
                params=params,
                progress=lambda done, total: reports.put((done, total)),
                cancel=cancel,
                **options,
            )
            outcome["labels"] = open_labels(outcome["summary"]["labels"])
        except BaseException as exc:  # handed to the worker's caller as the run's error
            outcome["error"] = exc
        finally:
            reports.put(None)

    yield _STARTING
    thread = threading.Thread(target=run, name="spectral-seg-blockwise", daemon=True)
    thread.start()
    while (report := reports.get()) is not None:
        done, total = report
        yield Progress("blockwise", done / total if total else 0.0, f"{done} of {total} blocks segmented")
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    levels, attributes = outcome["labels"]
    return outcome["summary"], levels, attributes


class BlockwisePanel:
    """The "Run blockwise" fields and button, and the run they start.

    Parameters
    ----------
    viewer : napari.Viewer
    owner : SpectralSegmentationWidget
        The dock widget: its ``image``, ``level``, ``cancel`` and ``status``
        fields and ``current_parameters()`` are used (its Cancel also stops
        this run).
    notify : callable
        ``notify(show, message)``: the widget's notification.
    """

    def __init__(self, viewer, owner, notify, bar):
        self._viewer = viewer
        # The dock's bar, shared with the widget's own runs; at most one repaint every half second.
        self._progress = ThrottledProgress(bar, self._show_status)
        self._owner = owner
        self._status, self._notify = owner.status, notify
        self._worker = None
        self._layer = None
        self._closed = False  # the widget went away: the run's callbacks do nothing
        self._cancel = threading.Event()
        self.output = FileEdit(
            name="blockwise_output",
            label="output .zarr",
            mode="w",
            filter="*.zarr",
            tooltip="The OME-Zarr store 'Run blockwise' writes (labels in OUTPUT.zarr/labels/<labels name>). "
            "The same output again resumes a cancelled run.",
        )
        self.into_image = CheckBox(
            name="blockwise_into_image",
            text="into the image's OME-Zarr",
            value=False,
            tooltip="For an image read from an OME-Zarr: write the labels into that store, as "
            "IMAGE.zarr/labels/<labels name> beside the image (its arrays and other labels are not touched); "
            "'output .zarr' is then not used.",
        )
        self.labels_name = LineEdit(
            name="blockwise_labels_name",
            label="labels name",
            value="spectral",
            tooltip="Name of the labels image: OUTPUT.zarr/labels/<name> (or IMAGE.zarr/labels/<name>).",
        )
        self.overwrite = CheckBox(
            name="blockwise_overwrite",
            text="replace existing labels",
            value=False,
            tooltip="The output .zarr (or IMAGE.zarr/labels/<labels name>) exists: replace it at the end of the "
            "run. Asked for each run: the box clears when a run starts.",
        )
        self.block_size = SpinBox(
            name="block_size",
            label="block size",
            min=64,
            max=16384,
            step=64,
            value=1024,
            tooltip="Pixels per side of a block; a worker's memory grows with its square (2D).",
        )
        self.workers = SpinBox(
            name="workers", label="workers", min=1, max=256, value=os.cpu_count() or 1, tooltip="Worker processes."
        )
        self.run = PushButton(
            name="run_blockwise",
            text="Run blockwise",
            tooltip="For images larger than memory: segment the image's file block by block on a local "
            "dask cluster, write the labels to 'blockwise output', and open them as a layer.",
        )
        self.run.changed.connect(self.start)

    @property
    def widgets(self) -> list:
        """The fields and the button, in the order they are shown."""
        return [
            self.output,
            self.into_image,
            self.labels_name,
            self.overwrite,
            self.block_size,
            self.workers,
            self.run,
        ]

    @property
    def running(self) -> bool:
        """Whether a blockwise run is going on."""
        return self._worker is not None

    def _job(self):
        """The layer, input path, output path and options of a run (checks only: reads no pixel)."""
        layer = self._owner.image.value
        if layer is None:
            raise ValueError("No image layer: open an image from a zarr, OME-Zarr or TIFF file first.")
        path = source_path(layer)
        # Into the image: the output is the input itself (segment_blockwise checks it is an OME-Zarr image).
        output = path if self.into_image.value else str(self.output.value or "")
        if not output or output in (".", str(Path.cwd())):
            raise ValueError("output .zarr: choose the store to write ('Select file' next to the field).")
        if not output.endswith(".zarr") and not self.into_image.value:
            raise ValueError(f"output .zarr {output}: name it *.zarr (an OME-Zarr store is written there).")
        if self._owner.region.value != "whole image":
            raise ValueError(
                "Run blockwise segments the whole image at the chosen level, not the field of view: set 'region' "
                "to 'whole image' (for the visible field of view, use Run: it reads only what the canvas shows)."
            )
        level = int(self._owner.level.value or 0) if layer.multiscale else 0
        name = str(self.labels_name.value or "").strip()
        options = dict(
            block_size=int(self.block_size.value),
            workers=int(self.workers.value),
            level=level,
            name=name,
            overwrite=self._replaces(Path(path) / "labels" / name if self.into_image.value else Path(output)),
        )
        return layer, path, output, options

    def _replaces(self, target: Path) -> bool:
        """Whether the run replaces ``target``; an existing one without 'replace existing labels' is refused."""
        if not target.exists():
            return False
        if not self.overwrite.value:
            other = "'labels name'" if self.into_image.value else "'output .zarr'"
            raise ValueError(
                f"{target} exists: tick 'replace existing labels' to replace it at the end of the run, "
                f"or choose another {other}."
            )
        return True

    def start(self, _=None) -> None:
        """Start a blockwise run with the current fields (does nothing while one runs)."""
        if self.running:
            return
        try:
            layer, path, output, options = self._job()
            params = self._owner.current_parameters()
            if params.threshold is None or params.seeds is not None:
                raise ValueError(
                    "Run blockwise: segments by threshold over the whole image; set 'mask' and 'seed points' to none."
                )
        except ValueError as exc:
            self._notify(show_error, str(exc))
            self._status.value = "blockwise not started"
            return
        self._layer = layer
        self._cancel = threading.Event()
        self._progress.start("Spectral segmentation: blockwise")
        worker = create_worker(
            blockwise_steps,
            path,
            output,
            options,
            params,
            self._cancel,
            _start_thread=False,
            _connect={
                "yielded": self._on_report,
                "returned": self._on_result,
                "errored": self._on_error,
                "finished": self._on_finished,
            },
        )
        self._worker = worker
        self.run.enabled = False
        self._owner.cancel.enabled = True
        self.overwrite.value = False  # asked again for the next run: never replaced by a box left ticked
        self._status.value = (
            "blockwise: starting (replacing the existing labels at the end)..."
            if options["overwrite"]
            else "blockwise: starting..."
        )
        worker.start()

    def stop(self) -> None:
        """Ask the blockwise run to stop; its finished blocks are kept (the same output resumes)."""
        if self._worker is not None:
            self._progress.drop()
            self._status.value = "cancelling blockwise..."
            self._cancel.set()

    def close(self) -> None:
        """The widget is going away: stop the run (its thread ends by itself)."""
        self._closed = True
        self._progress.finish(hide_bar=False)  # no update waits to land on the deleted dock
        self._cancel.set()

    # ------------------------------------------------------------ worker callbacks (main thread)
    def _show_status(self, text: str) -> None:
        self._status.value = text

    def _on_report(self, report: Progress) -> None:
        if not self._closed:
            self._progress.push(report)

    def _on_result(self, outcome) -> None:
        summary, levels, attributes = outcome
        layer = self._layer
        if self._closed:
            return
        self._progress.drop()
        n = levels[0].ndim
        scale = np.asarray(layer.scale[-n:], dtype=float)
        if layer.multiscale:
            scale = scale * np.asarray(layer.downsample_factors[summary_level(attributes)][-n:], dtype=float)
        data = levels if len(levels) > 1 else levels[0]
        self._viewer.add_labels(
            data,
            multiscale=len(levels) > 1,
            name=f"{layer.name} blockwise",
            scale=tuple(scale),
            translate=tuple(layer.translate[-n:]),
            metadata={"spectral_seg": dict(attributes, output=summary["output"])},
        )
        skipped = f", {summary['skipped_blocks']} without foreground" if summary["skipped_blocks"] else ""
        self._status.value = f"blockwise: {summary['n_labels']} segments in {summary['seconds']:.1f} s"
        self._status.tooltip = (
            f"{summary['blocks']} blocks{skipped}, {summary['resumed_blocks']} done before; "
            f"labels in {summary['labels']} (seed {summary['parameters']['random_state']})"
        )
        from ..blockwise.notes import dim_cut_notes

        for note in dim_cut_notes(summary):
            show_warning(note.text)
            self._status.value += f"; {note.status}"
            self._status.tooltip += f"\n{note.text}"

    def _on_error(self, exc) -> None:
        from ..blockwise import BlockwiseCancelled

        if self._closed:
            return
        self._progress.drop()
        if isinstance(exc, BlockwiseCancelled) or self._cancel.is_set():
            show_info("Blockwise run cancelled; finished blocks are kept: Run blockwise again to resume.")
            self._status.value = "blockwise cancelled (resumable)"
            return
        self._notify(show_error, str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}")
        self._status.value = "blockwise failed"

    def _on_finished(self) -> None:
        self._progress.finish(hide_bar=not self._closed)  # a closed dock's bar is deleted with it
        self._worker = None
        self._layer = None
        if self._closed:
            return
        self.run.enabled = True
        if not self._owner.running:
            self._owner.cancel.enabled = False


def summary_level(attributes: dict) -> int:
    """The input level a labels image was segmented at (recorded in its attributes)."""
    return int(attributes.get("level", 0) or 0)
