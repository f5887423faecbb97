"""The "Spectral segmentation" dock widget.

Thin by design: it reads the chosen layers, starts the core pipeline
(:func:`napari_spectral_seg.core.iter_segment`) in a ``napari.qt.threading``
worker, and adds or updates the result Labels layer on the main thread. The
worker never touches the viewer.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    Label,
    PushButton,
    SpinBox,
)
from napari.layers import Image, Labels, Points, Shapes
from napari.qt.threading import create_worker
from napari.utils import progress
from napari.utils.notifications import show_error, show_info, show_warning

from .. import __version__
from ..core import EIGEN_SOLVERS, merge_labels, split_label
from ..core.edges import DEFAULT_EDGE_LEVEL
from ..core.params import SegmentationParams
from .engine import HEARTBEAT, EngineProcess, run_seconds, segment_in_worker

if TYPE_CHECKING:
    import napari

METADATA_KEY = "spectral_seg"
CLICK_MODES = ("off", "split", "merge")
DIMS = ("2D", "3D")
FRAMES = ("current frame", "all frames")


def _result_geometry(image_layer, spatial: int) -> dict:
    """The image layer's world transform for a result of ``spatial`` axes.

    Scale and translate of the image's trailing (spatial) axes; for a
    result with as many axes as the image also rotate, shear, affine and
    units, so the labels overlay the image exactly in world coordinates
    (an RGB layer's scale has no channel entry, a stack's result frame is
    placed by scale and translate only).
    """
    geometry = dict(
        scale=tuple(image_layer.scale)[-spatial:],
        translate=tuple(image_layer.translate)[-spatial:],
    )
    units = getattr(image_layer, "units", None)  # napari < 0.6 has no units
    if units is not None:
        geometry["units"] = tuple(units)[-spatial:]
    if image_layer.ndim == spatial:
        geometry.update(rotate=image_layer.rotate, shear=image_layer.shear, affine=image_layer.affine)
    return geometry


def _result_status(n_segments: int, seconds: dict) -> str:
    """Status line after a run: segments and time, engine start-up shown apart."""
    startup = seconds.get("engine_start", 0.0)
    if startup < 0.5:  # the engine was ready: the usual case
        return f"{n_segments} segments in {run_seconds(seconds):.2f} s"
    return f"{n_segments} segments in {run_seconds(seconds):.2f} s (+ {startup:.1f} s engine start-up)"


def result_layer_name(image_name: str) -> str:
    """Name of the Labels layer that holds the segmentation of ``image_name``."""
    return f"{image_name} spectral"


def _full_resolution(image_layer):
    """The layer's pixel array at full resolution (level 0 of a multiscale layer)."""
    return image_layer.data[0] if image_layer.multiscale else image_layer.data


def _stack_shape(image_layer) -> tuple:
    """Shape of the layer's non-channel axes: the shape of its result Labels layer."""
    return tuple(_full_resolution(image_layer).shape[: image_layer.ndim])


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
    ``dims``, ``frames``, ``seeds``, ``seed``, ``run``, ``cancel``,
    ``click_mode``, ``save_params``, ``status``.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        self._viewer = napari_viewer
        self._worker = None
        self._progress = None
        self._progress_n = 0
        self._job = None  # what the running worker was started with
        self._closed = False  # set when the Qt widget is destroyed
        # The engine runs in a child process; start it now so its imports
        # are done by the time the user clicks Run.
        self._engine = EngineProcess()
        self._engine.start()

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
            tooltip="Labels layer (each label region is segmented on its own) or "
            "Shapes layer (the drawn regions). 'none' uses the threshold instead.",
        )
        self.auto_threshold = CheckBox(
            name="auto_threshold",
            text="Otsu threshold",
            value=True,
            tooltip="Without a mask, segment pixels above Otsu's threshold.",
        )
        self.threshold = FloatSpinBox(
            name="threshold",
            label="threshold",
            value=0.0,
            min=-1e12,
            max=1e12,
            step=0.01,
            enabled=False,
            tooltip="Without a mask, segment pixels brighter than this. "
            "Set it below the image minimum to use the whole image.",
        )
        self.n_clusters = SpinBox(
            name="n_clusters",
            label="segments",
            value=4,
            min=1,
            max=10_000,
            tooltip="Number of segments (each separate piece of the mask gets at least one).",
        )
        self.auto_segments = CheckBox(
            name="auto_segments",
            text="Auto: decide per object",
            value=False,
            tooltip="Split each piece of the mask where it holds touching objects "
            "(necks, dark seams), keep it whole where it is one object.",
        )
        self.sensitivity = FloatSpinBox(
            name="sensitivity",
            label="sensitivity",
            value=0.85,
            min=0.0,
            max=1.0,
            step=0.05,
            enabled=False,
            tooltip="Auto only: larger values split more readily (0..1).",
        )
        self.edge_level = FloatSpinBox(
            name="edge_level",
            label="edge level",
            value=DEFAULT_EDGE_LEVEL,
            min=0.0,
            max=0.95,
            step=0.05,
            enabled=False,
            tooltip="Auto with a threshold (mask 'none') only: each object's outline is drawn where its "
            "signal above background has fallen to this fraction of that object's own brightness "
            "(0.4 = 40 %), so one global threshold no longer cuts dim objects too small and draws "
            "bright ones too large. Outlines move at most 3 px, in or out. Lower values give larger "
            "outlines; 0 keeps the threshold's edges.",
        )
        self.sigma = FloatSpinBox(
            name="sigma",
            label="smoothing σ (px)",
            value=0.0,
            min=0.0,
            max=100.0,
            step=0.5,
            tooltip="Gaussian smoothing before the mask and the graph; 0 = none.",
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
        self.beta = FloatSpinBox(
            name="beta",
            label="beta",
            value=1.0,
            min=0.001,
            max=1e4,
            step=0.1,
            tooltip="Edge sensitivity: weights are exp(-beta * gradient / std). 1 is the scikit-learn example.",
        )
        self.eigen_solver = ComboBox(
            name="eigen_solver", label="eigen solver", choices=list(EIGEN_SOLVERS), value="auto"
        )
        self.min_size = SpinBox(
            name="min_size",
            label="min size (px)",
            value=20,
            min=0,
            max=10**9,
            tooltip="Pieces of the mask smaller than this are left out.",
        )
        self.seeds = ComboBox(
            name="seeds",
            label="seed points",
            choices=self._points_choices,
            tooltip="Points layer: one segment per point (label i holds point i); 'none' uses the number of segments.",
        )
        self.seed = SpinBox(
            name="seed",
            label="seed",
            value=0,
            min=0,
            max=2**31 - 1,
            tooltip="Random seed: the same seed gives the same labels.",
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
        # Grouped by the question each answers, with a heading per group.
        self.extend(
            [
                _heading("What to segment"),
                self.image,
                self.mask,
                self.auto_threshold,
                self.threshold,
                self.min_size,
                self.sigma,
                _heading("How many segments"),
                self.n_clusters,
                self.auto_segments,
                self.sensitivity,
                self.edge_level,
                self.seeds,
                _heading("Stacks"),
                self.dims,
                self.frames,
                _heading("Fine tuning"),
                self.beta,
                self.eigen_solver,
                self.seed,
                self.run,
                self.cancel,
                self.status,
                _heading("Edit the result"),
                self.click_mode,
                self.save_params,
            ]
        )

        self.auto_threshold.changed.connect(self._update_threshold_enabled)
        self.mask.changed.connect(self._update_threshold_enabled)
        self.image.changed.connect(self._on_image_changed)
        self.run.changed.connect(self.start)
        self.cancel.changed.connect(self.stop)
        self.save_params.changed.connect(self._ask_where_to_save)
        self.click_mode.changed.connect(self._install_click_callbacks)
        self.seeds.changed.connect(self._update_count_enabled)
        self.auto_segments.changed.connect(self._update_count_enabled)
        self.dims.changed.connect(self._update_frames_enabled)
        self._merge_first = None  # label picked by the first click in merge mode
        self._clicked_layers = []  # result layers carrying our mouse callback

        layer_events = self._viewer.layers.events
        for event in (layer_events.inserted, layer_events.removed, layer_events.reordered):
            event.connect(self.reset_choices)
        self._viewer.layers.selection.events.active.connect(self._follow_active_layer)
        self.native.destroyed.connect(self._on_destroyed)
        self.reset_choices()
        self._follow_active_layer()
        self._on_image_changed()  # the first choice was set before the signals were connected
        self._update_threshold_enabled()

    # ------------------------------------------------------------ choices
    def _image_choices(self, _widget=None):
        return [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, Image)]

    def _mask_choices(self, _widget=None):
        masks = [
            (layer.name, layer)
            for layer in self._viewer.layers
            if (isinstance(layer, Labels) and METADATA_KEY not in layer.metadata) or isinstance(layer, Shapes)
        ]
        return [("none", None), *masks]

    def _points_choices(self, _widget=None):
        points = [(layer.name, layer) for layer in self._viewer.layers if isinstance(layer, Points)]
        return [("none", None), *points]

    def _follow_active_layer(self, event=None):
        active = self._viewer.layers.selection.active
        if isinstance(active, Image) and active in [v for _, v in self._image_choices()]:
            self.image.value = active

    def _update_threshold_enabled(self, _=None):
        uses_threshold = self.mask.value is None
        self.auto_threshold.enabled = uses_threshold
        self.threshold.enabled = uses_threshold and not self.auto_threshold.value
        self._update_edge_level_enabled()

    def _update_count_enabled(self, _=None):
        # Seed points fix the number of segments; auto decides it.
        seeded = self.seeds.value is not None
        self.auto_segments.enabled = not seeded
        self.n_clusters.enabled = not seeded and not self.auto_segments.value
        self.sensitivity.enabled = not seeded and self.auto_segments.value
        self._update_edge_level_enabled()

    def _update_edge_level_enabled(self, _=None):
        # Edges are moved only in auto mode, and only when a threshold (not a
        # mask layer) tells the background apart (see current_parameters).
        seeded = self.seeds.value is not None
        self.edge_level.enabled = not seeded and self.auto_segments.value and self.mask.value is None

    def _update_frames_enabled(self, _=None):
        layer = self.image.value
        self.frames.enabled = layer is not None and layer.ndim > self._spatial_ndim(layer)

    def _spatial_ndim(self, layer) -> int:
        return min(int(self.dims.value[0]), layer.ndim)

    def _on_image_changed(self, layer=None):
        layer = self.image.value
        if layer is None:
            return
        self.dims.value = "3D" if layer.ndim >= 3 else "2D"
        self._update_frames_enabled()
        lo, hi = (float(v) for v in layer.contrast_limits_range)
        if not self.threshold.enabled:
            self.threshold.value = (lo + hi) / 2

    # ------------------------------------------------------------ running
    @property
    def running(self) -> bool:
        """Whether a segmentation is running."""
        return self._worker is not None

    def _collect_job(self):
        """Read the layers and fields; returns (job dict) or raises ValueError with a user message."""
        layer = self.image.value
        if layer is None:
            raise ValueError(
                "No image layer: open an image (or File > Open Sample > Four circles) and pick it in 'image'."
            )
        data = _full_resolution(layer)
        spatial_ndim = self._spatial_ndim(layer)
        n_leading = layer.ndim - spatial_ndim  # time (or other) axes before the frame
        spatial_shape = tuple(data.shape[n_leading : layer.ndim])
        all_frames = n_leading > 0 and self.frames.value == "all frames"
        frame_index = None
        if n_leading and not all_frames:
            frame_index = self._current_frame(layer, n_leading)
            data = data[frame_index]
        mask_layer = self.mask.value
        mask = None
        if isinstance(mask_layer, Shapes):
            mask = self._shapes_mask(mask_layer, layer, spatial_shape)
        elif mask_layer is not None:
            mask_shape = tuple(mask_layer.data.shape)
            full_shape = _stack_shape(layer)
            if mask_shape not in (spatial_shape, full_shape):
                raise ValueError(
                    f"mask '{mask_layer.name}' has shape {mask_shape} but image "
                    f"'{layer.name}' has {spatial_shape}; pick a mask drawn on this image, or 'none'."
                )
            # A copy: the user's layer is untouched. Integer labels keep their
            # regions apart in the core.
            mask = np.array(mask_layer.data)
            if mask_shape == full_shape and frame_index is not None and mask_shape != spatial_shape:
                mask = mask[frame_index]
        seeds = None
        if self.seeds.value is not None:
            if all_frames:
                raise ValueError("Seed points work on one frame: set 'frames' to 'current frame'.")
            seeds = self._seed_pixels(self.seeds.value, layer, spatial_ndim, frame_index)
        params = dict(self.current_parameters(), seeds=seeds)
        if all_frames:
            params.pop("seeds")
            params["spatial_ndim"] = spatial_ndim
        image = np.array(data)  # copy: the worker never reads a layer the user can edit
        return dict(
            layer=layer,
            mask_layer=mask_layer,
            image=image,
            mask=mask,
            params=params,
            frame_index=frame_index,
            all_frames=all_frames,
        )

    def _current_frame(self, layer, n_leading) -> tuple:
        """Index of the frame the viewer shows, over the layer's leading axes."""
        point = np.asarray(self._viewer.dims.point)[-layer.ndim :]
        coords = np.asarray(layer.world_to_data(point))[:n_leading]
        shape = np.asarray(_stack_shape(layer)[:n_leading])
        return tuple(int(v) for v in np.clip(np.round(coords), 0, shape - 1))

    @staticmethod
    def _shapes_mask(shapes_layer, image_layer, spatial_shape):
        """Union of the drawn shapes, rasterised on the image's pixel grid."""
        if len(shapes_layer.data) == 0:
            raise ValueError(f"mask '{shapes_layer.name}' has no shapes; draw a region or pick 'none'.")
        ndim = len(spatial_shape)
        # Vertices in the image's pixel coordinates, whatever the two layers' transforms.
        vertices = [
            np.array([image_layer.world_to_data(shapes_layer.data_to_world(v)) for v in shape])[:, -ndim:]
            for shape in shapes_layer.data
        ]
        on_image = Shapes(vertices, shape_type=list(shapes_layer.shape_type), ndim=ndim)
        masks = on_image.to_masks(mask_shape=spatial_shape)
        return np.any(masks, axis=0)

    @staticmethod
    def _seed_pixels(points_layer, image_layer, spatial_ndim, frame_index=None):
        """Points of ``points_layer`` as pixel coordinates of ``image_layer``, shape (n, spatial_ndim).

        For a frame of a stack, only the points placed on that frame count.
        """
        if len(points_layer.data) == 0:
            raise ValueError(f"seed points '{points_layer.name}' has no points; add points or pick 'none'.")
        world = np.array([points_layer.data_to_world(p) for p in points_layer.data])
        pixels = np.array([image_layer.world_to_data(w) for w in world])
        if frame_index and pixels.shape[1] > spatial_ndim:
            leading = np.rint(pixels[:, : len(frame_index)]).astype(int)
            on_frame = np.all(leading == np.asarray(frame_index), axis=1)
            if not on_frame.any():
                raise ValueError(
                    f"None of the seed points of '{points_layer.name}' is on frame {frame_index}; "
                    "add points on this frame."
                )
            if not on_frame.all():
                show_info(
                    f"Using the {int(on_frame.sum())} seed point(s) on frame {frame_index}; "
                    f"{int((~on_frame).sum())} on other frames are ignored."
                )
            pixels = pixels[on_frame]
        return pixels[:, -spatial_ndim:]

    def current_parameters(self) -> dict:
        """The fields (and the image layer's geometry) as keyword arguments of
        :func:`napari_spectral_seg.segment`, without mask and seed points."""
        uses_mask = self.mask.value is not None
        auto = self.auto_segments.value
        params = dict(
            threshold=None if uses_mask else ("otsu" if self.auto_threshold.value else float(self.threshold.value)),
            n_clusters="auto" if auto else int(self.n_clusters.value),
            sensitivity=float(self.sensitivity.value) if auto else None,
            # None where the core would not use it (no auto, or a mask layer
            # instead of a threshold), so saved parameters say what was done.
            edge_level=(float(self.edge_level.value) or None) if auto and not uses_mask else None,
            beta=float(self.beta.value),
            sigma=float(self.sigma.value) or None,
            eigen_solver=self.eigen_solver.value,
            random_state=int(self.seed.value),
            min_size=int(self.min_size.value),
        )
        layer = self.image.value
        if layer is not None:
            spatial_ndim = self._spatial_ndim(layer)  # an RGB layer's ndim leaves out the channel axis
            params.update(
                channel_axis=-1 if layer.rgb else None,
                # The layer's scale is the pixel (voxel) size: anisotropic
                # stacks are segmented as physical objects.
                spacing=[float(v) for v in layer.scale[-spatial_ndim:]],
            )
        return params

    def save_parameters(self, path) -> None:
        """Write the current parameters as JSON ``{"spectral_seg": {...}}``, the format
        ``napari-spectral-seg batch --params`` reads, so a batch run replays this widget exactly."""
        import json
        from pathlib import Path

        params = dict(self.current_parameters(), version=__version__)
        Path(path).write_text(json.dumps({METADATA_KEY: params}, indent=2))
        self.status.value = f"parameters saved to {Path(path).name}"

    def _ask_where_to_save(self, _=None):
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(
            self.native, "Save parameters", "spectral_seg_params.json", "JSON (*.json)"
        )
        if path:
            self.save_parameters(path)

    def start(self, _=None):
        """Start a segmentation with the current fields (does nothing while one runs)."""
        if self.running:
            return
        try:
            job = self._collect_job()
        except ValueError as exc:
            show_warning(str(exc))
            self.status.value = "not started"
            return
        self._job = job
        self._progress = progress(total=100, desc="Spectral segmentation")
        self._progress_n = 0
        params = dict(job["params"])
        spatial_ndim = params.pop("spatial_ndim", None)
        worker = create_worker(
            segment_in_worker,
            self._engine,
            job["image"],
            job["mask"],
            SegmentationParams(**params),
            spatial_ndim,
            dict(job["params"], threshold_used=None),
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
        self.status.value = "running..."
        worker.start()

    def stop(self, _=None):
        """Ask the running segmentation to stop at its next step."""
        if self._worker is not None:
            self.status.value = "cancelling..."
            self._worker.quit()

    def wait(self, timeout: float = 60.0) -> None:
        """Block (processing Qt events) until the running segmentation ends; for scripts."""
        from qtpy.QtWidgets import QApplication

        deadline = time.monotonic() + timeout
        while self.running and time.monotonic() < deadline:
            QApplication.processEvents()
            time.sleep(0.01)
        if self.running:
            raise TimeoutError(f"segmentation still running after {timeout} s")

    # ------------------------------------------------------------ worker callbacks (main thread)
    def _on_progress(self, update):
        bar = self._progress
        if self._closed or bar is None or update is HEARTBEAT:
            return
        if isinstance(update, str):  # a warning from the pipeline
            show_warning(f"Spectral segmentation: {update}")
            return
        self.status.value = f"{update.step}: {update.message}"
        bar.set_description(f"Spectral segmentation: {update.step}")
        target = int(round(update.fraction * 100))
        if target > self._progress_n:
            # update() may process events, even this worker's "finished"
            bar.update(target - self._progress_n)
            self._progress_n = target

    def _on_result(self, result):
        if self._closed:
            return
        job = self._job
        layer = job["layer"]
        if layer not in self._viewer.layers:
            show_warning(f"Image '{layer.name}' was removed while it was being segmented; the result was discarded.")
            self.status.value = "discarded (image removed)"
            return
        params = dict(result.parameters)
        params.update(
            image=layer.name,
            mask=None if job["mask_layer"] is None else job["mask_layer"].name,
            # The run's own time; a wait for the engine to start (first run
            # only) is recorded apart, as the status line shows it.
            seconds=round(run_seconds(result.seconds), 3),
            engine_start_seconds=round(result.seconds.get("engine_start", 0.0), 3),
            n_segments=int(result.labels.max()),
            frames="all" if job["all_frames"] else job["frame_index"],
            version=__version__,
        )
        if job["frame_index"] is not None:
            self._show_frame(layer, job["frame_index"], result.labels, params)
        else:
            self._show_labels(layer, result.labels, params)
        self._install_click_callbacks()
        if params["threshold_used"] is not None and params["threshold"] == "otsu":
            self.threshold.value = float(params["threshold_used"])
        self.status.value = _result_status(params["n_segments"], result.seconds)

    def _show_frame(self, image_layer, frame_index, frame_labels, params):
        """Put one frame's labels into the stack-shaped result layer (other frames kept)."""
        full_shape = _stack_shape(image_layer)
        existing = self._result_layer_for(image_layer)
        # How each frame was made: frames keep their labels across runs.
        per_frame = {}
        if existing is not None and existing.data.shape == full_shape:
            per_frame = dict(existing.metadata.get(METADATA_KEY, {}).get("per_frame", {}))
        per_frame[str(tuple(frame_index))] = dict(params)
        params = dict(params, per_frame=per_frame)
        if existing is not None and existing.data.shape == full_shape:
            existing.data[frame_index] = frame_labels
            existing.metadata = {**existing.metadata, METADATA_KEY: params}
            existing.refresh()
            return existing
        stack = np.zeros(full_shape, dtype=np.int32)
        stack[frame_index] = frame_labels
        return self._show_labels(image_layer, stack, params)

    def _show_labels(self, image_layer, labels, params):
        name = result_layer_name(image_layer.name)
        geometry = _result_geometry(image_layer, labels.ndim)
        metadata = {METADATA_KEY: params}
        existing = self._viewer.layers[name] if name in self._viewer.layers else None
        if isinstance(existing, Labels) and existing.data.shape == labels.shape:
            existing.data = labels.astype(existing.data.dtype, copy=False)
            for key, value in geometry.items():
                try:
                    setattr(existing, key, value)
                except (AttributeError, ValueError, TypeError):
                    pass  # e.g. units the layer cannot take
            existing.metadata = {**existing.metadata, **metadata}
            return existing
        if existing is not None:
            name = f"{name} [{len(self._viewer.layers)}]"
        # The whole transform goes in at construction: setting it afterwards
        # fires a refresh per attribute (measured ~25 ms of main-thread time
        # at 1024^2, on top of the ~90 ms napari needs to add a layer).
        try:
            return self._viewer.add_labels(labels, name=name, metadata=metadata, **geometry)
        except (ValueError, TypeError):
            geometry.pop("units", None)  # units napari does not accept
            return self._viewer.add_labels(labels, name=name, metadata=metadata, **geometry)

    # ------------------------------------------------------------ click to split / merge
    def _result_layer_for(self, image_layer):
        name = result_layer_name(image_layer.name)
        layer = self._viewer.layers[name] if name in self._viewer.layers else None
        return layer if isinstance(layer, Labels) else None

    def _install_click_callbacks(self, mode=None):
        self._merge_first = None
        for layer in self._clicked_layers:
            if self._on_click in layer.mouse_drag_callbacks:
                layer.mouse_drag_callbacks.remove(self._on_click)
        self._clicked_layers = []
        if self.click_mode.value == "off":
            return
        for layer in self._viewer.layers:
            if isinstance(layer, Labels) and METADATA_KEY in layer.metadata:
                layer.mouse_drag_callbacks.append(self._on_click)
                self._clicked_layers.append(layer)
        if not self._clicked_layers:
            show_info("No segmentation result yet: click Run first, then click on its segments.")

    def _on_click(self, layer, event):
        if event.type != "mouse_press":
            return
        world = np.asarray(event.position)
        try:
            if self.click_mode.value == "split":
                self.split_at(world, layer)
            elif self.click_mode.value == "merge":
                self.merge_at(world, layer)
        except (ValueError, KeyError, IndexError) as exc:
            show_warning(str(exc))

    def _label_under(self, layer, world):
        index = tuple(int(round(v)) for v in layer.world_to_data(world))
        if any(i < 0 or i >= n for i, n in zip(index, layer.data.shape)):
            raise ValueError("The click is outside the segmentation; click inside a segment.")
        return index, int(layer.data[index])

    @staticmethod
    def _clicked_frame(layer, index):
        """Leading (time) index of the clicked pixel, () for a single image or volume.

        Labels restart at 1 in every frame, so an edit must stay in its frame.
        """
        spatial = len(layer.metadata[METADATA_KEY].get("spacing") or ()) or layer.ndim
        return tuple(index[: layer.ndim - spatial])

    def split_at(self, world_position, layer=None):
        """Split the segment under ``world_position`` in two (one undo step)."""
        layer = layer if layer is not None else self._clicked_layers[0]
        index, label = self._label_under(layer, world_position)
        if label == 0:
            raise ValueError("That click is on the background; click inside the segment to split.")
        params = layer.metadata[METADATA_KEY]
        if params["image"] not in self._viewer.layers:
            raise ValueError(
                f"The image '{params['image']}' this result was computed from is no longer in the viewer "
                "(renamed or removed); run the segmentation again."
            )
        image_layer = self._viewer.layers[params["image"]]
        image = _full_resolution(image_layer)
        frame = self._clicked_frame(layer, index)
        frame_labels = np.asarray(layer.data[frame])
        started = time.perf_counter()
        indices, values = split_label(
            np.asarray(image[frame]),
            frame_labels,
            label,
            seeds=self._seeds_in_segment(image_layer, frame_labels, label, frame),
            beta=params["beta"],
            random_state=params["random_state"],
            spacing=params.get("spacing"),
            sigma=params.get("sigma"),
            channel_axis=-1 if image_layer.rgb else None,
        )
        indices = self._in_frame(frame, indices)
        with layer.block_history():
            layer.data_setitem(indices, values)
        self.status.value = f"split label {label} in {time.perf_counter() - started:.2f} s"

    def _seeds_in_segment(self, image_layer, frame_labels, label, frame):
        """Seed points inside the clicked segment: with two or more, the split
        gives one part per point (the first point's part keeps the label)."""
        points_layer = self.seeds.value
        if points_layer is None or len(points_layer.data) < 2:
            return None
        pixels = self._seed_pixels(points_layer, image_layer, frame_labels.ndim, frame or None)
        rounded = np.rint(pixels).astype(int)
        inside = np.all((rounded >= 0) & (rounded < frame_labels.shape), axis=1)
        rounded = rounded[inside]
        in_segment = rounded[frame_labels[tuple(rounded.T)] == label]
        return in_segment if len(in_segment) >= 2 else None

    @staticmethod
    def _in_frame(frame, indices):
        """Frame-local pixel indices as indices into the whole stack."""
        if not frame:
            return indices
        n = len(indices[0])
        return tuple(np.full(n, i, dtype=np.intp) for i in frame) + tuple(indices)

    def merge_at(self, world_position, layer=None):
        """First call picks a segment, the second merges the segment under it into the first."""
        layer = layer if layer is not None else self._clicked_layers[0]
        index, label = self._label_under(layer, world_position)
        if label == 0:
            raise ValueError("That click is on the background; click inside a segment to merge.")
        frame = self._clicked_frame(layer, index)
        if self._merge_first is None or self._merge_first == (frame, label):
            self._merge_first = (frame, label)
            self.status.value = f"merge: label {label} picked, click the segment to join to it"
            return
        first_frame, keep = self._merge_first
        if first_frame != frame:
            self._merge_first = None
            raise ValueError("The two segments to merge are in different frames; click two segments of one frame.")
        indices, value = merge_labels(np.asarray(layer.data[frame]), keep, label)
        indices = self._in_frame(frame, indices)
        with layer.block_history():
            layer.data_setitem(indices, value)
        self.status.value = f"merged label {label} into {keep}"
        self._merge_first = None

    def _on_destroyed(self, *_):
        # The viewer (or the dock) closed: stop the worker and the engine;
        # callbacks of a worker that still finishes find _closed and do nothing.
        self._closed = True
        if self._worker is not None:
            self._worker.quit()
        self._engine.terminate()

    def _on_error(self, exc):
        if self._closed:
            return
        if isinstance(exc, (ValueError, TypeError, MemoryError)):
            show_error(f"Spectral segmentation: {exc}")
        else:
            show_error(f"Spectral segmentation failed ({type(exc).__name__}): {exc}")
        self.status.value = "failed"

    def _on_aborted(self):
        self._engine.terminate()  # it is still busy with the abandoned job
        if self._closed:
            return
        show_info("Spectral segmentation cancelled; no layer was changed.")
        self.status.value = "cancelled"

    def _on_finished(self):
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        self._worker = None
        self._job = None
        if self._closed:
            return
        self.run.enabled = True
        self.cancel.enabled = False
