"""The steps of ``n_clusters="auto"`` after the mask, and the end of every run.

:func:`iter_auto_tail` decides and cuts each connected component
(:mod:`.auto`), adds the dim objects found below the threshold
(:mod:`.dim`) and moves each object's edge to its own brightness
(:mod:`.edges`); :func:`paint` and :func:`finish` are shared with the
pipeline's fixed-count steps. ``run`` is the pipeline's record of one run
(``core.pipeline._Run``).
"""

from __future__ import annotations

import time

import numpy as np

from .auto import default_min_part, iter_auto_labels
from .dim import dim_search, find_dim_objects
from .edges import refine_object_edges
from .labels import relabel_by_first_pixel
from .params import DEFAULT_EDGE_LEVEL
from .progress import Progress, relay
from .result import SegmentationResult

__all__ = ["finish", "iter_auto_tail", "paint"]


def paint(node_label, index, spatial_shape) -> np.ndarray:
    """Node labels painted onto the image grid (0 outside the mask)."""
    labels = np.zeros(int(np.prod(spatial_shape)), dtype=np.int64)
    labels[index.pixel_of_node] = node_label
    return labels.reshape(spatial_shape)


def finish(run, labels, t3, eigenvalues):
    run.seconds["labels"] = time.perf_counter() - t3
    run.seconds["total"] = time.perf_counter() - run.t0
    yield Progress("labels", 1.0, "done")
    return SegmentationResult(
        labels=labels,
        parameters=run.parameters,
        n_components=run.index.n_components,
        eigenvalues=eigenvalues,
        seconds=run.seconds,
    )


def iter_auto_tail(run):
    """The ``n_clusters="auto"`` steps after the mask: decide and cut each component.

    See :mod:`napari_spectral_seg.core.auto`; the thresholds are ``run.config``.
    """
    t1 = time.perf_counter()
    index, parameters = run.index, run.parameters
    yield Progress("graph", run.shares.graph, f"shape and intensity cues of {index.n_nodes} pixels")
    intensity = run.data if run.data.ndim == len(run.spatial_shape) else run.data.mean(axis=-1)
    steps = iter_auto_labels(
        intensity,
        index,
        spacing=parameters["spacing"],
        background=parameters["threshold_used"],
        sensitivity=parameters["sensitivity"],
        min_part=default_min_part(run.min_size, len(run.spatial_shape), run.config),
        eigen_solver=parameters["eigen_solver"],
        random_state=parameters["random_state"],
        object_size=run.object_size,
        config=run.config,
    )

    def cut(update):
        nonlocal t1
        if "graph" not in run.seconds:  # the cues are computed before the first cut reports
            run.seconds["graph"] = time.perf_counter() - t1
            t1 = time.perf_counter()
        phase, part, message = update
        return Progress("eigenvectors", run.shares.in_auto_cuts(phase, part), message)

    node_label, ratios = yield from relay(steps, cut)
    run.seconds["eigenvectors"] = time.perf_counter() - t1
    t3 = time.perf_counter()
    yield Progress("labels", run.shares.labels, "assigning labels")
    labels = paint(node_label, index, run.spatial_shape)
    labels, before = yield from _iter_dim_objects(run, intensity, labels)
    labels = yield from _iter_object_edges(run, intensity, labels)
    parameters["split_ratios"] = ratios
    final = relabel_by_first_pixel(labels)
    if run.dim_decided is not None:
        # Which objects are dim, for a blockwise run's count of the pieces a block keeps.
        parameters["dim_labels"] = np.unique(final[labels > before]).tolist()
    return (yield from finish(run, final, t3, []))


def _iter_dim_objects(run, intensity, labels):
    """Auto mode with a threshold: dim objects below it added as objects of their own (see core.dim).

    Returns the labels and the largest label before the dim objects (the
    dim objects are numbered above it).
    """
    parameters = run.parameters
    decided = run.dim_decided
    if decided is not None:  # decided on the whole image this is a part of
        search, min_size = (decided.low, decided.background, decided.deviation), decided.min_size
    else:
        search = (
            None
            if run.explicit_mask is not None
            else dim_search(run.params, parameters, intensity, parameters["spacing"], run.config)
        )
        min_size = _dim_min_size(run)
    before = int(labels.max())
    if search is None:
        parameters["low_threshold_used"] = None
        return labels, before
    yield Progress("labels", run.shares.labels, "looking for dim objects below the threshold")
    low, background, deviation = search
    found = find_dim_objects(
        intensity,
        labels > 0,
        low=low,
        background=background,
        deviation=deviation,
        min_size=min_size,
        level=parameters["edge_level"] or DEFAULT_EDGE_LEVEL,
        config=run.config,
    )
    parameters["low_threshold_used"] = round(found.low_threshold, 6)
    parameters["dim_objects"] = found.count
    if decided is not None:
        # For a blockwise run: a block defers where a basin near its core reaches a cut side.
        parameters["dim_basins"] = [[list(axis) for axis in box] for box in found.basin_boxes]
        parameters["dropped_basins"] = [[list(axis) for axis in box] for box in found.dropped_boxes]
    if not found.count:
        return labels, before
    return np.where(found.labels > 0, found.labels + before, labels), before


def _dim_min_size(run) -> int:
    """Smallest dim object: the given ``min_size``, else only the floor of a split's pieces.

    ``min_size="auto"`` is a tenth of the typical object, against specks of
    noise above the threshold; a dim object stands out of its background and
    of its valleys on its own, so a small one (a field holds nuclei of five
    times the typical size and a fifth of it) is kept.
    """
    given = 0 if run.params.min_size == "auto" else run.min_size
    return default_min_part(given, len(run.spatial_shape), run.config)


def _iter_object_edges(run, intensity, labels):
    """Auto mode with a threshold: each object's edge moved to its own brightness (see core.edges)."""
    parameters = run.parameters
    used = parameters["threshold_used"]
    if used is None:  # no threshold acted (a mask with threshold "auto"): the mask's edges are the user's
        parameters["edge_level"] = None
    if parameters["edge_level"] is None:
        return labels
    background = run.edge_background
    if background is None:
        # The background level is only known when a threshold split the
        # image into signal and no signal.
        dark = intensity[intensity <= used]
        if not dark.size:
            parameters["edge_level"] = None  # nothing below the threshold: no background level
            return labels
        background = float(np.median(dark))
    yield Progress("labels", run.shares.labels, "moving object edges to their own brightness")
    return refine_object_edges(
        intensity,
        labels,
        background=background,
        level=parameters["edge_level"],
        spacing=parameters["spacing"],
        allowed=run.explicit_mask,
        regions=run.regions,
        percentile=run.config.bright_percentile,
        reach=run.config.edge_reach,
    )
