"""The auto-mode recipe: the pass/hill split, the typical size, then the shape rules, per component.

:func:`iter_auto_labels` runs the steps in order (numbers as in
:mod:`napari_spectral_seg.core.auto`):

1. :func:`_first_pass` splits every component by the pass/hill rule (steps 1-4);
2. :func:`_typical` takes the typical object size from its pieces (step 5);
3. :func:`refine_component` applies the shape rules to each component's
   pieces (steps 6-9) in a fixed order.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass

import numpy as np

from .bisection import split_component
from .config import DEFAULT_SENSITIVITY, AutoConfig, default_min_part, resolve_config
from .landscape import landscape, pixel_edges
from .pieces import piece_sizes, typical_size
from .rules import merge_slivers, split_moments, split_notches

__all__ = ["iter_auto_labels", "iter_piece_sizes", "refine_component"]

# Least time between two progress reports, in seconds (not a tuning value:
# it only keeps the reports from flooding the caller).
_MIN_YIELD_INTERVAL = 0.05


@dataclass(frozen=True)
class _Run:
    """The settings of one run, shared by every step."""

    spacing: object
    sensitivity: float
    min_part: int
    eigen_solver: str
    random_state: int
    config: AutoConfig


@dataclass(frozen=True)
class _Component:
    """One connected component: its slice of the node arrays, edges in its local numbering."""

    start: int
    stop: int
    h: np.ndarray
    coords: np.ndarray
    a: np.ndarray
    b: np.ndarray


class _Graph:
    """Landscape, cue, pixel coordinates and edges of every node, cut into components on demand."""

    def __init__(self, intensity, index, spacing, background, config):
        self.h, _ = landscape(
            intensity,
            index.node_of_pixel,
            index.offsets,
            index.pixel_of_node,
            spacing=spacing,
            background=background,
            config=config,
        )
        self.heads, self.tails, _ = pixel_edges(index.node_of_pixel, index.offsets)
        self.coords = np.stack(np.unravel_index(index.pixel_of_node, index.node_of_pixel.shape), axis=1)
        self.edge_start = np.searchsorted(self.heads, index.offsets)
        self.offsets = index.offsets
        self.n_nodes = index.n_nodes
        self.n_components = index.n_components

    def component(self, comp):
        """Component ``comp``: its node range and its edges renumbered from 0."""
        start, stop = int(self.offsets[comp]), int(self.offsets[comp + 1])
        e0, e1 = self.edge_start[comp], self.edge_start[comp + 1]
        return _Component(
            start=start,
            stop=stop,
            h=self.h[start:stop],
            coords=self.coords[start:stop],
            a=self.heads[e0:e1] - start,
            b=self.tails[e0:e1] - start,
        )


class _Ticker:
    """Says when the next progress report is due (at most one per ``_MIN_YIELD_INTERVAL``)."""

    def __init__(self):
        self.last = time.perf_counter()

    def due(self):
        now = time.perf_counter()
        if now - self.last > _MIN_YIELD_INTERVAL:
            self.last = now
            return True
        return False


def _first_pass(graph, run, ticker, components=None):
    """Split components by the pass/hill rule alone; yields ``("first pass", part done, message)``.

    ``components``: the component numbers to split (default: all). Returns
    the pieces (per component, labels ``0..K-1``) and the pass/hill ratios
    tried (per component, a list).
    """
    pieces, all_ratios = [], []
    chosen = range(graph.n_components) if components is None else [int(c) for c in components]
    n_comp = len(chosen)
    for i, comp in enumerate(chosen):
        part = graph.component(comp)
        labels, ratios = split_component(
            part.h,
            part.a,
            part.b,
            coords=part.coords,
            sensitivity=run.sensitivity,
            min_part=run.min_part,
            eigen_solver=run.eigen_solver,
            rng=np.random.default_rng([run.random_state, comp]),
            config=run.config,
        )
        pieces.append(labels)
        all_ratios.append(ratios)
        if ticker.due():
            done = part.stop / graph.n_nodes if components is None else (i + 1) / n_comp
            yield "first pass", done, f"component {i + 1} of {n_comp}"
    return pieces, all_ratios


def _typical(pieces, object_size, run) -> float:
    """The typical object size: ``object_size`` (the last of a sequence), else the median of ``pieces``.

    The first pass's pieces are mostly single objects, so their median size
    (pieces of at least ``min_part`` pixels) stands for the typical object.
    A blockwise run measures it on its whole image (the first pass's pieces
    gathered from its blocks, :func:`iter_piece_sizes`) and hands it in.
    """
    if object_size is None:
        return typical_size(pieces, run.min_part)
    return float(np.atleast_1d(np.asarray(object_size, dtype=float))[-1])


def refine_component(part, labels: np.ndarray, typical: float, run) -> np.ndarray:
    """The shape rules on one component's pieces, in order; returns labels ``0..K-1``.

    Notches (2D) or two-cluster splits (3D) first, then slivers rejoin a neighbour. Nothing happens
    without a typical size (``typical`` 0).
    """
    config = run.config
    ndim = part.coords.shape[1]
    if typical > 0 and ndim == 2 and config.notch_ratio > 0:
        labels = split_notches(
            labels, part.a, part.b, part.coords, typical, spacing=run.spacing, min_part=run.min_part, config=config
        )
    if typical > 0 and ndim == 3 and config.moment_ratio > 0:
        labels = split_moments(
            labels, part.a, part.b, part.coords, typical, spacing=run.spacing, min_part=run.min_part, config=config
        )
    if typical > 0 and labels.max() > 0 and config.use_sliver_merge:
        labels = merge_slivers(labels, part.a, part.b, typical, ndim, run.min_part, config)
    return labels


def iter_auto_labels(
    intensity: np.ndarray,
    index,
    *,
    spacing=None,
    background: float | None = None,
    sensitivity: float = DEFAULT_SENSITIVITY,
    min_part: int | None = None,
    eigen_solver: str = "auto",
    random_state: int = 0,
    object_size: float | Sequence[float] | None = None,
    config: AutoConfig | None = None,
) -> Generator[tuple[str, float, str], None, tuple[np.ndarray, list]]:
    """Decide and cut every connected component; yields ``(phase, part, message)``.

    Parameters
    ----------
    intensity : ndarray of float, spatial shape
        Single-channel (channel-mean) intensity, smoothed if asked for.
    index : PixelIndex
        From :func:`napari_spectral_seg.core.graph.index_pixels`.
    spacing, background
        See :func:`landscape`.
    sensitivity, min_part, eigen_solver
        See :func:`split_component`; ``min_part`` defaults to the config's
        floor for 2D or 3D (:func:`default_min_part`).
    object_size : float or sequence of float, optional
        Typical object size in pixels, which the shape rules compare pieces
        with; default: the median size of the pieces of the pass/hill split
        (see the module docstring). A sequence: the last counts.
    random_state : int
        Seed; component ``c`` uses ``default_rng([random_state, c])``, so
        results do not depend on the order components are processed.
    config : AutoConfig, optional
        The thresholds of every rule; default ``AutoConfig()``.

    Yields
    ------
    (str, float, str)
        The phase (``"first pass"``, then ``"shape rules"``), the share of
        its nodes done in [0, 1] and a message; how long each phase takes
        is weighed in one place, ``core.shares.AUTO_PHASE_SHARES``.

    Returns
    -------
    node_label : ndarray of int64, shape (n_nodes,)
        ``1..M``, unique over the whole image.
    ratios : list of list of float
        Per component, the pass/hill ratios of the bisections tried.
    """
    config = resolve_config(config)
    min_part = default_min_part(0, intensity.ndim, config) if min_part is None else min_part
    run = _Run(spacing, sensitivity, min_part, eigen_solver, random_state, config)
    graph = _Graph(intensity, index, spacing, background, config)
    ticker = _Ticker()
    pieces, all_ratios = yield from _first_pass(graph, run, ticker)
    typical = _typical(pieces, object_size, run)
    node_label = np.zeros(index.n_nodes, dtype=np.int64)
    next_label = 1
    n_comp = graph.n_components
    for comp in range(n_comp):
        part = graph.component(comp)
        labels = refine_component(part, pieces[comp], typical, run)
        node_label[part.start : part.stop] = next_label + labels
        next_label += int(labels.max()) + 1
        if ticker.due():
            yield "shape rules", part.stop / graph.n_nodes, f"shape rules, component {comp + 1} of {n_comp}"
    yield "shape rules", 1.0, "shape rules done"
    return node_label, all_ratios


def iter_piece_sizes(
    intensity: np.ndarray,
    index,
    components=None,
    *,
    spacing=None,
    background: float | None = None,
    sensitivity: float = DEFAULT_SENSITIVITY,
    min_part: int | None = None,
    eigen_solver: str = "auto",
    random_state: int = 0,
    config: AutoConfig | None = None,
) -> Generator[tuple[str, float, str], None, np.ndarray]:
    """The sizes of the pieces :func:`iter_auto_labels`'s first pass cuts components into, without the shape rules.

    For a blockwise segmentation: each block splits the components it sees
    whole and owns, the client takes the median of all the sizes
    (:func:`~.pieces.median_piece_size`), the typical size
    :func:`iter_auto_labels` would take on the whole image. Parameters as
    in :func:`iter_auto_labels`; ``components`` are component numbers of
    ``index`` (default: all), each split as there (component ``c`` seeded
    with ``[random_state, c]``). Yields ``(phase, part, message)``.

    Returns
    -------
    ndarray of int64
        Pixels of each piece, component by component.
    """
    config = resolve_config(config)
    min_part = default_min_part(0, intensity.ndim, config) if min_part is None else min_part
    run = _Run(spacing, sensitivity, min_part, eigen_solver, random_state, config)
    graph = _Graph(intensity, index, spacing, background, config)
    pieces, _ = yield from _first_pass(graph, run, _Ticker(), components)
    return piece_sizes(pieces)
