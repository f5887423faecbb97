"""The segmentation pipeline: mask -> pixel graph -> eigenvectors -> labels.

:func:`iter_segment` is a generator that yields :class:`Progress` between
steps (and between connected components, and between the levels of the
multilevel eigen-solver, during the eigen-solve) and returns
a :class:`SegmentationResult`; stopping the iteration cancels the run. It is
what the napari widget's worker drives. :func:`segment` runs it to the end
for scripts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import numpy as np

from ._heap import heap_kept
from ._pages import ordinary_pages
from .adapt import check_foreground
from .auto import AutoConfig
from .auto.config import resolve_config
from .auto_steps import finish, iter_auto_tail, paint
from .graph import PixelIndex, component_block, edge_weights_graph, index_pixels
from .labels import iter_cluster_embedding, relabel_by_first_pixel, split_counts
from .mask import empty_mask_hint, resolve_mask
from .memory import TIME_LIMIT_SECONDS, check_run
from .params import DEFAULT_EDGE_LEVEL, SegmentationParams, check_random_state, check_spacing
from .prepare import estimate_prepare_shares, iter_prepare_image
from .progress import STEPS, Progress, SegmentationCancelled, relay, run_to_end
from .result import EmptyMaskError, SegmentationResult
from .seeds import check_seeds, label_by_seeds, seed_nodes
from .shares import PrepareShares, WorkShares, auto_shares, fixed_count_shares
from .solve import iter_solve_component
from .validation import (
    as_array,
    as_float_image,
    check_mask,
    check_segment_count,
    floor_edge_weights,
    read_masked_arrays,
    scale_for_graph,
    warn_if_constant,
)

__all__ = [
    "STEPS",
    "EmptyMaskError",
    "Progress",
    "SegmentationResult",
    "SegmentationCancelled",
    "iter_segment",
    "segment",
]

# Yield at most this often inside a step, so thousands of tiny components do
# not flood a GUI event loop with progress signals.
_MIN_YIELD_INTERVAL = 0.05  # seconds


@dataclass
class _Run:
    """What the steps of one run share: the checked inputs and what the mask step found."""

    params: SegmentationParams
    data: np.ndarray | None  # the corrected, smoothed image; None once the graph is built
    spatial_shape: tuple
    regions: np.ndarray | None
    explicit_mask: np.ndarray | None
    seed_pixels: np.ndarray | None
    spacing: np.ndarray | None
    random_state: int
    parameters: dict
    t0: float
    seconds: dict = field(default_factory=dict)
    index: PixelIndex | None = None
    k_max: int = 1
    seeds_of_component: list | None = None
    seed_node: np.ndarray | None = None
    min_size: int = 0
    object_size: object = None
    edge_background: float | None = None
    dim_decided: object = None  # core.dim.DimDecided, handed in for a part of a whole image
    shares: WorkShares | None = None  # each step's share of the time, for the progress fraction
    prepare: PrepareShares | None = None  # the same for the steps before the graph, estimated before them
    cpu0: float = 0.0  # process_time() when the run started
    config: AutoConfig = field(default_factory=AutoConfig)  # auto mode's thresholds and the image's choices


def _as_params(params: SegmentationParams | None, keywords: dict) -> SegmentationParams:
    """The run's parameters: ``params``, or the keyword arguments, or ``params`` with them replaced."""
    if params is None:
        return SegmentationParams(**keywords)
    if not isinstance(params, SegmentationParams):
        raise TypeError(f"params={params!r} must be a SegmentationParams; pass keyword arguments instead.")
    return params.replace(**keywords) if keywords else params


def _iter_start(image, mask, params: SegmentationParams, config: AutoConfig):
    """Check the image, mask, seeds and image-dependent parameters; correct and smooth the image.

    Yields mask-step progress as each step before the mask ends (see
    :class:`~.shares.PrepareShares`); returns the :class:`_Run`.
    """
    image, mask = read_masked_arrays(image, mask, params.channel_axis)
    data, spatial_shape = as_float_image(image, params.channel_axis, mask=mask)
    regions = None
    if mask is not None:
        raw_mask = as_array(mask, "mask")
        # An integer mask with several labels (a Labels layer): each label is
        # segmented on its own and touching labels are kept apart.
        if raw_mask.dtype.kind in "iu" and raw_mask.size and raw_mask.max() > 1:
            regions = raw_mask
    explicit_mask = check_mask(mask, spatial_shape)
    seed_pixels = None if params.seeds is None else check_seeds(params.seeds, spatial_shape)
    spacing = check_spacing(params.spacing, len(spatial_shape))
    random_state = check_random_state(params.random_state)
    prepare = estimate_prepare_shares(data, spatial_shape, explicit_mask, params, seed_pixels)
    steps = iter_prepare_image(data, explicit_mask, params, spatial_shape, spacing, config)
    data, min_size, chosen = yield from relay(
        steps, lambda update: Progress("mask", prepare.ends[update[0]], update[1])
    )
    parameters = {**params.record(random_state=random_state, seeds=seed_pixels), **chosen}
    run = _Run(
        params,
        data,
        spatial_shape,
        regions,
        explicit_mask,
        seed_pixels,
        spacing,
        random_state,
        parameters,
        time.perf_counter(),
    )
    run.min_size, run.prepare, run.config = min_size, prepare, config
    return run


def _iter_mask(run: _Run):
    """The mask step: threshold, pieces, the memory check and the seeds' pieces."""
    params = run.params
    yield Progress("mask", run.prepare.ends["smoothed"], "building the mask")
    mask, used_threshold = resolve_mask(run.data, run.explicit_mask, params.threshold, run.spatial_shape)
    if params.n_clusters == "auto" and run.explicit_mask is None and isinstance(params.threshold, str):
        mask, used_threshold = check_foreground(
            run.data, mask, used_threshold, run.parameters, run.spacing, run.min_size, run.config
        )
    run.parameters["threshold_used"] = used_threshold
    n_masked = int(mask.sum())
    # A part of a whole image whose dim-object search was decided there: dim
    # objects may lie in it with no pixel, or no piece, above the threshold.
    dim_only = run.dim_decided is not None and params.n_clusters == "auto" and run.seed_pixels is None
    if n_masked == 0 and not dim_only:
        raise EmptyMaskError(
            "mask is empty: no pixel to segment; "
            f"{empty_mask_hint(run.data, params.threshold, used_threshold, run.explicit_mask)}."
        )
    if run.seed_pixels is None and params.n_clusters != "auto":
        check_segment_count(params.n_clusters, n_masked)
    warn_if_constant(run.data, mask)
    index = index_pixels(mask, min_size=max(run.min_size, 1), regions=run.regions)
    if index.n_nodes == 0 and not dim_only:
        raise EmptyMaskError(
            f"every connected piece of the mask is smaller than min_size={run.min_size} pixels; lower min_size."
        )
    run.index = index
    if run.seed_pixels is not None:
        nodes = seed_nodes(run.seed_pixels, index)
        component_of_seed = np.searchsorted(index.offsets, nodes, side="right") - 1
        run.seeds_of_component = [np.flatnonzero(component_of_seed == c) for c in range(index.n_components)]
        run.seed_node = nodes
    _check_fits(run)
    run.shares = _work_shares(run)
    run.seconds["mask"] = time.perf_counter() - run.t0


def _work_shares(run: _Run) -> WorkShares:
    """Each step's and each component's share of the run's time (core/shares.py)."""
    sizes, done = np.diff(run.index.offsets), time.process_time() - run.cpu0
    if run.seeds_of_component is not None:
        shares = fixed_count_shares(done, sizes, [len(s) for s in run.seeds_of_component], run.params.eigen_solver)
    elif run.params.n_clusters == "auto":
        shares = auto_shares(done, int(np.prod(run.spatial_shape)), sizes)
    else:
        extra = run.params.n_clusters - len(sizes)
        shares = fixed_count_shares(done, sizes, np.minimum(run.k_max, sizes), run.params.eigen_solver, extra)
    # Measured now, estimated before: never below what the steps before the mask reported.
    return shares.from_floor(run.prepare.ends["smoothed"])


def _check_fits(run: _Run) -> None:
    """Refuse runs that cannot fit before the graph is allocated."""
    index, params = run.index, run.params
    if run.seed_pixels is not None:
        run.k_max = len(run.seed_pixels)
    elif params.n_clusters == "auto":
        run.k_max = 2  # recursive two-way cuts
    else:
        run.k_max = max(params.n_clusters - index.n_components + 1, 1)
    seeds = None if run.seeds_of_component is None else [len(s) for s in run.seeds_of_component]
    check_run(
        int(np.prod(run.spatial_shape)),
        np.diff(index.offsets),
        len(run.spatial_shape),
        params.eigen_solver,
        n_segments=run.k_max if params.n_clusters == "auto" or seeds is not None else params.n_clusters,
        seeds_per_piece=seeds,
        auto=params.n_clusters == "auto" and seeds is None,
        time_limit=params.time_limit,
    )


def iter_segment(
    image,
    mask=None,
    params: SegmentationParams | None = None,
    *,
    auto_config=None,
    object_size=None,
    edge_background: float | None = None,
    dim_decided=None,
    **parameters,
) -> Generator[Progress, None, SegmentationResult]:
    """Segment an image step by step; see :func:`segment` for the parameters.

    Parameters
    ----------
    image, mask
        As in :func:`segment`.
    params : SegmentationParams, optional
        The parameters; keyword ``parameters`` (any of its fields) replace
        its values, or give them all when ``params`` is None.
    auto_config : AutoConfig, optional
        The thresholds of ``n_clusters="auto"`` and of the settings chosen
        from the image (``sigma``, ``min_size``, ``polarity``, ``background``,
        ``low_threshold`` "auto"; default: ``AutoConfig()``).
    object_size, edge_background : optional
        Auto mode: the typical object size in pixels (a float, as
        :func:`~napari_spectral_seg.core.auto.median_piece_size` returns it)
        and the object edges' background level, decided on the whole image
        of which ``image`` is one block; default: measured on ``image``.
    dim_decided : DimDecided, optional
        Auto mode: the dim-object search's decisions on that whole image
        (:class:`~napari_spectral_seg.core.dim.DimDecided`, over the
        pixels of ``image``); the search then runs with them whatever
        ``low_threshold`` says, and nothing above the threshold (or only
        pieces below ``min_size``) is no :class:`EmptyMaskError`: dim
        objects may lie there. Default: decided on ``image``.

    Yields
    ------
    Progress
        Between steps and during the eigen-solve. Closing the generator
        (or simply not iterating further) cancels the run.

    Returns
    -------
    SegmentationResult
        As the ``StopIteration.value`` of the generator.
    """
    params = _as_params(params, parameters)
    # Ordinary pages while a step runs, and freed temporaries kept in the heap
    # until the run ends (why: core/_pages.py, core/_heap.py).
    with heap_kept(_pixel_count(image)):
        return (
            yield from relay(
                _iter_run(image, mask, params, auto_config, (object_size, edge_background, dim_decided)),
                within=ordinary_pages,
            )
        )


def _pixel_count(image) -> int:
    """Pixels of an array-like from its shape, without reading it (a dask array, a list: 0 if unknown)."""
    shape = getattr(image, "shape", None)
    try:
        return math.prod(int(n) for n in shape) if shape is not None else 0
    except (TypeError, ValueError):  # unknown (NaN) chunk sizes
        return 0


def _iter_run(image, mask, params: SegmentationParams, auto_config, decided):
    """The steps of :func:`iter_segment`.

    ``decided``: the whole-image decisions handed in (object size, edge
    background, dim search; each None to decide on ``image``).
    """
    cpu0 = time.process_time()
    yield Progress("mask", 0.0, "checking the image")
    config = resolve_config(auto_config)
    run = yield from _iter_start(image, mask, params, config)
    run.cpu0 = cpu0
    run.object_size, run.edge_background, run.dim_decided = decided
    yield from _iter_mask(run)
    if params.n_clusters == "auto" and run.seeds_of_component is None:  # seed points decide the count
        return (yield from iter_auto_tail(run))
    graph = yield from _iter_graph(run)
    eigenvalues, embeddings = yield from _iter_eigenvectors(run, graph)
    return (yield from _iter_labels(run, graph, eigenvalues, embeddings))


def _iter_graph(run: _Run):
    t1 = time.perf_counter()
    index = run.index
    yield Progress("graph", run.shares.graph, f"pixel graph of {index.n_nodes} pixels")
    graph = edge_weights_graph(
        scale_for_graph(run.data),
        index.node_of_pixel,
        index.n_nodes,
        beta=run.params.beta,
        spacing=run.spacing,
        regions=run.regions,
    )
    graph = floor_edge_weights(graph)
    # The float image is not read after the graph: freed, the eigen-solve's
    # blocks reuse its memory instead of growing the process (core/_heap.py).
    run.data = None
    run.seconds["graph"] = time.perf_counter() - t1
    return graph


def _iter_eigenvectors(run: _Run, graph):
    """Each component's eigenvectors: at most ``k_max``, one per segment it could receive (see _split_counts)."""
    t2 = time.perf_counter()
    index, n_comp = run.index, run.index.n_components
    yield Progress("eigenvectors", run.shares.eigenvectors, f"{n_comp} connected component(s)")
    eigenvalues, embeddings = [], []
    last_yield = time.perf_counter()
    for comp in range(n_comp):
        start, stop = index.offsets[comp], index.offsets[comp + 1]
        # With seeds: one segment per seed in this component (none: left out).
        k = len(run.seeds_of_component[comp]) if run.seeds_of_component is not None else min(run.k_max, stop - start)
        if k <= 1:
            eigenvalues.append(np.zeros(1))
            embeddings.append(None)
        else:
            solve = iter_solve_component(
                component_block(graph, start, stop),
                k,
                eigen_solver=run.params.eigen_solver,
                rng_factory=lambda comp=comp: np.random.default_rng([run.random_state, comp]),
            )

            def level(update, comp=comp):
                # The multilevel solver reports each level of a big component
                # (seconds each at 4096^2): passed on unthrottled, and stopping
                # here between levels cancels the solve.
                nonlocal last_yield
                part, detail = update
                last_yield = time.perf_counter()
                done = run.shares.in_component(comp, part)
                return Progress("eigenvectors", done, f"component {comp + 1} of {n_comp}: {detail}")

            values, embedding = yield from relay(solve, level)
            eigenvalues.append(values)
            embeddings.append(embedding)
        now = time.perf_counter()
        if now - last_yield > _MIN_YIELD_INTERVAL or comp == n_comp - 1:
            last_yield = now
            yield Progress("eigenvectors", run.shares.in_component(comp), f"component {comp + 1} of {n_comp}")
    run.seconds["eigenvectors"] = time.perf_counter() - t2
    return eigenvalues, embeddings


def _iter_labels(run: _Run, graph, eigenvalues, embeddings):
    t3 = time.perf_counter()
    index, params = run.index, run.params
    yield Progress("labels", run.shares.labels, "assigning labels")
    node_label = np.empty(index.n_nodes, dtype=np.int64)
    seeded = run.seeds_of_component is not None
    if seeded:
        label_by_seeds(node_label, index, run.seeds_of_component, run.seed_node, embeddings, run.random_state)
    counts = [] if seeded else split_counts(eigenvalues, params.n_clusters)
    next_label = 1
    for comp in range(len(counts)):
        start, stop = index.offsets[comp], index.offsets[comp + 1]
        if counts[comp] == 1:
            node_label[start:stop] = next_label
        else:
            clustering = iter_cluster_embedding(
                embeddings[comp][:, : counts[comp]],
                int(counts[comp]),
                method=params.assign_labels,
                random_state=(run.random_state + comp) % (2**31),
                graph=component_block(graph, start, stop),
            )

            def in_labels(part, comp=comp):  # a long k-means of hundreds of clusters
                done = run.shares.in_labels((comp + part) / len(counts))
                return Progress("labels", done, f"k-means of {counts[comp]} clusters")

            node_label[start:stop] = next_label + (yield from relay(clustering, in_labels))
        next_label += int(counts[comp])
    labels = paint(node_label, index, run.spatial_shape)
    # With seeds, label i is the segment of point i.
    labels = labels.astype(np.int32) if seeded else relabel_by_first_pixel(labels)
    return (yield from finish(run, labels, t3, eigenvalues))


def segment(
    image,
    mask=None,
    *,
    threshold="auto",
    n_clusters: int | str = 4,
    beta: float = 1.0,
    eigen_solver: str = "auto",
    random_state: int | None = 0,
    spacing=None,
    channel_axis: int | None = None,
    min_size: int | str = "auto",
    assign_labels: str = "kmeans",
    seeds=None,
    sigma="auto",
    sensitivity: float | None = None,
    edge_level: float | None = DEFAULT_EDGE_LEVEL,
    low_threshold: float | str | None = "auto",
    polarity: str = "auto",
    background: str = "auto",
    time_limit: float | None = TIME_LIMIT_SECONDS,
    progress: Callable[[Progress], object] | None = None,
) -> np.ndarray:
    """Segment an image by spectral clustering of its pixel graph.

    Parameters
    ----------
    image : array_like, shape (M, N) or (P, M, N), plus a channel axis if ``channel_axis``
        Any real dtype (bool, integer, float); numpy or dask. Never modified.
    mask : array_like of bool or int, spatial shape of ``image``, optional
        Pixels to segment (nonzero). Combined with ``threshold`` if both are
        given. An integer label image (e.g. a napari Labels layer) segments
        each label region on its own: touching regions are never merged.
    threshold : float, "otsu", "auto" or None
        Segment only pixels brighter than this (strictly greater). "otsu":
        Otsu's threshold, of the pixels inside ``mask`` when one is given (a
        region of interest). "auto" (default): Otsu's threshold without a
        mask, none with one. None without a mask: the whole image.
    n_clusters : int or "auto"
        Number of segments. Each connected component of the mask gets at
        least one segment, so a mask of C > n_clusters separate pieces gives
        C segments; otherwise the extra segments go where the spectral cut is
        cheapest (smallest Laplacian eigenvalue), as in a spectral clustering
        of the whole graph. ``"auto"``: each connected component is split
        into as many objects as it holds (touching nuclei, cells), judged
        from its shape (necks) and intensity (dark seams); see
        :mod:`napari_spectral_seg.core.auto`. ``beta`` and
        ``assign_labels`` are not used then. It is meant for objects on a
        background (the default threshold finds one); ``sigma`` and
        ``min_size`` then follow the image's noise and object size.
    beta : float
        Edge weights are ``exp(-beta * |gradient| / std(gradient))``;
        ``beta=1`` is the scikit-learn example. Larger values cut more
        readily along weak edges.
    eigen_solver : {"auto", "arpack", "lobpcg", "amg", "multilevel"}
        Eigen-solver for the normalised Laplacian of each component.
        "multilevel" coarsens the pixel graph (aggregating pixels across
        strong edges), solves the coarsest graph exactly and refines the
        eigenvectors level by level: O(n) time and memory, the choice for
        megapixel images. "auto" uses exact ARPACK on small components and
        "multilevel" above ``AUTO_ARPACK_LIMIT`` nodes.
    random_state : int or None
        Seed of the random start vectors and of k-means (default 0: a re-run
        gives the same labels). ``None`` draws one; the seed used is in
        :attr:`SegmentationResult.parameters`.
    spacing : sequence of float, optional
        Physical pixel size per spatial axis (e.g. ``(4.0, 1.0, 1.0)`` for a
        z step four times the xy pixel size).
    channel_axis : int, optional
        Axis holding channels (RGB or fluorescence channels); edge weights
        then use the distance between channel vectors.
    min_size : int or "auto"
        Connected components of the mask with fewer pixels are left out
        (label 0). With ``n_clusters="auto"`` it is also the smallest piece a
        split may cut off (at least 10 pixels in 2D, 30 voxels in 3D).
        "auto" (default): a tenth of the typical object's area (volume) where
        a threshold makes the mask, 0 inside a given mask; the value used is
        recorded as ``min_size_used``.
    assign_labels : {"kmeans", "cluster_qr"}
        How the spectral embedding is turned into labels. "kmeans" then
        moves each boundary between two neighbouring segments to the best
        normalised cut near it (see
        :func:`napari_spectral_seg.core.labels.refine_boundaries`).
    seeds : array_like, shape (n_points, ndim), optional
        Points in pixel coordinates, one per wanted segment. Each connected
        piece of the mask gets one segment per point inside it (pieces without
        a point are left out), ``n_clusters`` is ignored, and the segment
        holding point ``i`` is labelled ``i + 1``. A point outside the mask
        raises ValueError.
    sigma : float, sequence of float, "auto" or None
        Gaussian pre-smoothing before the mask and the graph are computed.
        A number is the width in pixels along the finest axis, scaled by
        ``spacing`` on the others (same physical width); a sequence gives
        pixels per spatial axis. Never across channels. ``None`` or 0: none.
        "auto" (default): with ``n_clusters="auto"``, the width the image's
        noise, texture and typical object size call for (see
        :mod:`napari_spectral_seg.core.adapt`); none with a fixed number of
        segments (the scikit-learn example). Recorded as ``sigma_used``.
    sensitivity : float, optional
        ``n_clusters="auto"`` only: a component is cut where the pass between
        two parts is lower than ``sensitivity`` times the lower of their
        peaks (see :mod:`napari_spectral_seg.core.auto`); larger values split
        more. Default 0.85.
    edge_level : float, optional
        ``n_clusters="auto"`` with a ``threshold`` only: each object's edge
        is moved to where its intensity has fallen to this fraction of the
        way from the background (the median below the threshold) to its own
        bright level (95th percentile): its pixels below that within 3
        pixels of its edge are dropped, background pixels above it up to 3
        pixels out are added (never outside ``mask``), holes are filled. A
        global threshold cuts dim objects too small and bright ones too
        large; see :mod:`napari_spectral_seg.core.edges`. Default 0.4; 0 or
        None keeps the threshold's edges.
    low_threshold : float, "auto" or None
        ``n_clusters="auto"`` with a ``threshold`` only (not with a mask):
        dim objects that lie wholly or mostly below the threshold (a dim
        nucleus beside bright ones) are looked for down to this level and
        added as objects of their own, each standing out of the noise by
        itself and cut at its own edge level; the threshold's objects are
        cut as before. "auto" (default; with an automatic threshold only):
        the local background plus 5 standard deviations of the noise left
        after the smoothing, recorded as ``low_threshold_used`` (its median)
        with the number found as ``dim_objects``. None: none. See
        :mod:`napari_spectral_seg.core.dim`.
    polarity : {"auto", "bright", "dark"}
        Whether the objects are brighter ("bright": fluorescence) or darker
        ("dark": brightfield, H&E, phase contrast) than their background;
        dark objects are segmented on the inverted image. "auto" (default):
        "dark" only where Otsu's bright class holds most of the image and of
        its border; recorded as ``polarity_used``. See
        :mod:`napari_spectral_seg.core.background`.
    background : {"auto", "flat"}
        "auto" (default), where a threshold makes the mask: a background
        that varies across the field (uneven illumination) by more than a
        fifth of the contrast is estimated and subtracted first, so dim
        objects on its dark side are found; recorded as ``background_used``.
        "flat": never.
    time_limit : float or None
        A run whose eigenvectors and k-means (the work that grows with the
        number of segments or seed points) are estimated to take more than
        this many seconds of one CPU core is refused at once with
        :class:`~napari_spectral_seg.core.memory.TooMuchWorkError` (default
        20; a busy machine takes longer than the estimate). None: no limit,
        for long runs asked for on purpose; runs that would not fit in
        memory are refused anyway. Auto mode has no time limit. Not recorded
        with the result: it decides whether a run starts, not its labels.
    progress : callable, optional
        Called with a :class:`Progress` between steps, between connected
        components and, for a component solved by the multilevel solver,
        after each of its levels; raise :class:`SegmentationCancelled` from
        it to stop (within a level of the solve).

    Returns
    -------
    ndarray of int32, spatial shape of ``image``
        0 outside the mask, ``1..M`` inside, numbered in raster order of
        each segment's first pixel.

    Raises
    ------
    ValueError, TypeError
        For invalid input, with a message naming the parameter and the fix;
        ValueError also when the estimated peak memory exceeds the available
        memory (the message says how much and how to shrink the problem).
    """
    # The keyword arguments are the dataclass's fields (a test keeps them equal).
    arguments = locals()
    params = SegmentationParams(**{name: arguments[name] for name in SegmentationParams.names()})
    return run_to_end(iter_segment(image, mask, params), progress).labels
