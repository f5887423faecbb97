"""Peak-memory estimate of a segmentation, checked before anything big is allocated."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .costs import solve_seconds
from .labels import kmeans_seconds

__all__ = [
    "TIME_LIMIT_SECONDS",
    "InsufficientMemoryError",
    "RunEstimate",
    "TooMuchWorkError",
    "check_run",
    "estimate_run",
    "label_counts",
    "available_memory",
    "estimate_peak_bytes",
    "preparation_bytes",
    "check_memory",
    "check_image_memory",
]


class InsufficientMemoryError(ValueError, MemoryError):
    """A run refused before allocating because it would not fit in memory.

    Both a ValueError (bad input: the message says what to change) and a
    MemoryError (what it prevents).
    """


class TooMuchWorkError(ValueError):
    """A run refused before it starts because it asks for so many segments that it would take too long."""


# Bytes per image pixel held through the whole run: the float64 working copy
# of the image, the boolean mask, the int32 node numbering, the int64 label
# image and the int32 relabelled output, plus graph-building temporaries.
_BYTES_PER_PIXEL = 40
# Bytes per image pixel, and per pixel and spatial axis, while the automatic
# scales are measured (core.adapt), the image-wide peak before any graph
# exists: the arrays the preparation holds (working copies, the rough mask
# and its labels), and the distance transform's feature transform and
# float64 offsets (int32 and float64 per axis). Measured with
# bench/memory_guard_margin.py: 68 bytes per pixel on a 6000 x 6000 2D image.
_PREPARE_BYTES_PER_PIXEL = 40
_PREPARE_BYTES_PER_PIXEL_AXIS = 20
# Bytes per graph node and per edge, measured with bench/run.py (peak RSS over
# the whole run divided by the node count) on the four circles, rounded up.
# multilevel: float32 blocks [X T P] and L[X T P] of k + 4 columns, the
# incidence matrices of every level (about 1.3x the fine one) and
# graph-building temporaries. arpack/amg/lobpcg: float64 Laplacian and
# blocks; arpack also the sparse LU factor of the 2D/3D Laplacian, whose
# fill-in grows faster than the node count (n log n in 2D, n^(4/3) in 3D).
_BYTES_PER_NODE = {"multilevel": 120, "amg": 700, "lobpcg": 400, "arpack": 1500}
_BYTES_PER_EDGE = {"multilevel": 60, "amg": 100, "lobpcg": 60, "arpack": 100}
_BYTES_PER_NODE_COLUMN = {"multilevel": 4 * 9, "amg": 8 * 8, "lobpcg": 8 * 8, "arpack": 8 * 3}


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation, or None if unknown.

    ``psutil.virtual_memory().available`` when psutil is installed, else
    ``MemAvailable`` from ``/proc/meminfo`` (Linux).
    """
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - psutil absent or unsupported platform
        pass
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def preparation_bytes(n_pixels: int, ndim: int) -> int:
    """Peak bytes of the image-wide preparation (masks, smoothing and the automatic scales), before the graph."""
    return int(n_pixels) * (_PREPARE_BYTES_PER_PIXEL + _PREPARE_BYTES_PER_PIXEL_AXIS * int(ndim))


def estimate_peak_bytes(n_pixels: int, n_nodes: int, ndim: int, k: int, solver: str) -> int:
    """Rough peak memory of one segmentation run, in bytes.

    Parameters
    ----------
    n_pixels : int
        Pixels (voxels) in the whole image.
    n_nodes : int
        Pixels in the mask (graph nodes) of the largest connected component
        dominate the eigen-solve, but the graph holds all of them.
    ndim : int
        Spatial dimensions (2 or 3): the graph has about ``ndim`` edges per node.
    k : int
        Eigenvectors per component.
    solver : str
        Eigen-solver that will run on the large components
        ("multilevel", "amg", "lobpcg" or "arpack").

    Returns
    -------
    int
        Estimated peak bytes (rounded up; meant as a guard, not a forecast).
    """
    solver = solver if solver in _BYTES_PER_NODE else "multilevel"
    per_node = _BYTES_PER_NODE[solver] + k * _BYTES_PER_NODE_COLUMN[solver]
    per_node += ndim * _BYTES_PER_EDGE[solver]
    if solver == "arpack":
        # Fill-in of the LU factor of a grid Laplacian grows like n^(1/ndim)
        # per node (nested-dissection bound), relative to a 100k-node graph.
        per_node = int(per_node * max(1.0, (n_nodes / 1e5) ** (1.0 / (2 * ndim))))
    return int(n_pixels * _BYTES_PER_PIXEL + n_nodes * per_node)


def check_memory(n_pixels: int, n_nodes: int, ndim: int, k: int, solver: str, available: int | None = None) -> int:
    """Raise ValueError when a run would not fit in the available memory.

    Parameters
    ----------
    n_pixels, n_nodes, ndim, k, solver
        See :func:`estimate_peak_bytes`.
    available : int, optional
        Available bytes; read from the system when omitted. If it cannot be
        determined, nothing is checked.

    Returns
    -------
    int
        The estimated peak bytes.

    Raises
    ------
    InsufficientMemoryError
        Naming the size, the estimate, the available memory and the fixes.
    """
    peak = estimate_peak_bytes(n_pixels, n_nodes, ndim, k, solver)
    if available is None:
        available = available_memory()
    if available is None or peak <= available:
        return peak
    multilevel_peak = None if solver == "multilevel" else estimate_peak_bytes(n_pixels, n_nodes, ndim, k, "multilevel")
    raise _image_too_big(n_pixels, n_nodes, solver, peak, available, multilevel_peak)


def _image_too_big(n_pixels, n_nodes, solver, peak, available, multilevel_peak) -> InsufficientMemoryError:
    """The refusal of an image too large for memory, with the fixes (the multilevel solver's estimate if given)."""
    gib = 2.0**30
    fixes = []
    if multilevel_peak is not None:
        fixes.append(f"use eigen_solver='multilevel' (coarsens the graph; about {multilevel_peak / gib:.1f} GiB)")
    fixes += [
        "crop the image to the region of interest",
        "downsample it (e.g. image[::2, ::2])",
        "or shrink the mask / raise the threshold so fewer pixels are segmented",
    ]
    return InsufficientMemoryError(
        f"segmenting {n_nodes:,} pixels of a {n_pixels:,}-pixel image with eigen_solver={solver!r} "
        f"needs about {peak / gib:.1f} GiB but only {available / gib:.1f} GiB of memory is available; "
        + "; ".join(fixes)
        + "."
    )


def check_image_memory(n_pixels: int, n_channels: int = 1, available: int | None = None, ndim: int = 2) -> int:
    """Refuse an image whose working copies alone would not fit, before copying it.

    Checked before the mask is known (and before a dask array is computed):
    the float64 copy of every channel plus the per-pixel masks and label
    images, or the preparation's peak (:func:`preparation_bytes`) if larger.
    :func:`check_memory` checks the graph once the mask is known.

    Parameters
    ----------
    n_pixels : int
        Pixels (voxels) of the image's spatial axes.
    n_channels : int
        Values per pixel.
    available : int, optional
        Available bytes; read from the system when omitted (no check if unknown).
    ndim : int
        Spatial axes.

    Returns
    -------
    int
        The estimated bytes.
    """
    needed = max(int(n_pixels) * (8 * int(n_channels) + _BYTES_PER_PIXEL), preparation_bytes(n_pixels, ndim))
    if available is None:
        available = available_memory()
    if available is not None and needed > available:
        gib = 2.0**30
        raise InsufficientMemoryError(
            f"image of {n_pixels:,} pixels needs about {needed / gib:.3g} GiB for its working copies but only "
            f"{available / gib:.3g} GiB of memory is available; crop or downsample the image "
            "(e.g. image[::2, ::2]) or segment one region of interest."
        )
    return needed


# ---------------------------------------------------------------- a whole run, piece by piece
# Bytes per graph node and spatial axis shared by every piece: the float32
# weights and int32 indices of the pixel graph kept through the run, and the
# edge arrays of its construction (heads, tails, gradients, the COO triplets
# and their CSR conversion), measured on the nuclei and circle benchmarks.
_GRAPH_BYTES_PER_NODE_AXIS = 80
# One piece's eigen-solve, bytes per node (Laplacian copies, solver
# workspace); the n x k blocks are counted apart (see _solve_bytes).
_SOLVE_BYTES_PER_NODE = {"dense": 0, "multilevel": 120, "amg": 700, "lobpcg": 400, "arpack": 1500}
# The default of the time_limit parameter: runs whose segment-count-dependent
# work (core/costs.py, one-thread CPU seconds) is estimated above it are
# refused at once, below the 30 s wait issue 17 allows, since a shared machine
# runs such work several times slower than its CPU time (docs/issue17_tests.md).
TIME_LIMIT_SECONDS = 20.0


@dataclass(frozen=True)
class RunEstimate:
    """What :func:`estimate_run` expects of a run.

    Attributes
    ----------
    peak_bytes : int
        Arrays shared by all pieces plus the largest piece's solve and
        labelling, or the image-wide preparation's peak if larger.
    seconds : float
        The work that grows with the number of segments (eigenvectors and
        k-means), all pieces together.
    piece_size, piece_k, piece_solver
        The piece whose solve and labelling dominate the peak: its pixels,
        eigenvectors and solver.
    solve_seconds, labels_seconds : float
        The two parts of ``seconds``: the eigen-solves and the k-means.
    """

    peak_bytes: int
    seconds: float
    piece_size: int
    piece_k: int
    piece_solver: str
    solve_seconds: float = 0.0
    labels_seconds: float = 0.0


def label_counts(sizes: np.ndarray, ks: np.ndarray, n_segments: int) -> np.ndarray:
    """An upper bound of the clusters each piece is labelled with: ``n_segments`` spent on the largest first.

    Every piece gets one; the rest go to the largest pieces, each up to its
    number of eigenvectors (``ks``), the costliest way the pipeline's
    split (by eigenvalue) could spend them.
    """
    counts = np.ones(len(sizes), dtype=np.int64)
    extra = max(int(n_segments) - len(sizes), 0)
    for piece in np.argsort(-sizes, kind="stable"):
        if extra <= 0:
            break
        more = min(int(ks[piece]) - 1, extra)
        counts[piece] += max(more, 0)
        extra -= max(more, 0)
    return counts


def _solve_bytes(n: np.ndarray, k: np.ndarray, solver: str, ndim: int) -> np.ndarray:
    """Peak bytes of one piece's eigen-solve (without the graph and the kept embedding)."""
    n, k = n.astype(np.float64), k.astype(np.float64)
    base = n * _SOLVE_BYTES_PER_NODE[solver]
    if solver == "dense":
        return 3 * 8 * n * n  # the dense Laplacian, LAPACK's copy and workspace
    if solver == "arpack":
        # LU fill-in grows like n^(1/ndim) per node (see estimate_peak_bytes); 2k + 1 Lanczos vectors.
        base = base * np.maximum(1.0, (n / 1e5) ** (1.0 / (2 * ndim))) + 8 * n * (2 * k + 1) + 8 * (2 * k + 1) ** 2
    elif solver == "multilevel":
        base = base + 36 * n * k
    else:  # lobpcg, amg: X, AX, P, AP, R, AR of k (+4 guard) columns, and their Gram matrices
        base = base + 8 * 6 * n * (k + 4) + 8 * (3 * k + 12) ** 2
    return base


def _labels_bytes(n: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Peak bytes of labelling one piece with ``c`` clusters.

    The float64 points and the centre scores (n x c each), the cluster
    indicators and weights into each cluster (float32, n x c each), and the
    pairwise centre differences of the boundary refinement (c x c x c).
    """
    n, c = n.astype(np.float64), c.astype(np.float64)
    return np.where(c > 1, 24 * n * c + 8 * c**3 + 64 * n, 0.0)


def estimate_run(
    n_pixels: int, sizes, ndim: int, ks, eigen_solver: str, *, n_segments: int, seeded: bool = False
) -> RunEstimate:
    """Peak memory and segment-dependent time of a run, piece by piece.

    Parameters
    ----------
    n_pixels : int
        Pixels (voxels) of the image.
    sizes : array of int
        Pixels of each connected piece of the mask that is segmented.
    ndim : int
        Spatial axes (about ``ndim`` edges per node).
    ks : array of int
        Eigenvectors each piece asks for (a piece with ``k <= 1`` is not solved).
    eigen_solver : str
        The requested solver; each piece gets the one ``resolve_solver``
        chooses for its size.
    n_segments : int
        Segments of the whole run (seed points: their number).
    seeded : bool
        Seed points: each piece is labelled with its own points (one k-means fit).

    Returns
    -------
    RunEstimate
    """
    from .eigen import resolve_solver

    sizes = np.asarray(sizes, dtype=np.int64)
    ks = np.minimum(np.asarray(ks, dtype=np.int64), sizes)
    counts = ks.copy() if seeded else label_counts(sizes, ks, n_segments)
    solved = ks > 1
    shared = n_pixels * _BYTES_PER_PIXEL + int(sizes.sum()) * _GRAPH_BYTES_PER_NODE_AXIS * ndim
    piece_bytes = _labels_bytes(sizes, counts)
    solvers = np.array([resolve_solver(eigen_solver, int(n), int(k)) if k > 1 else "none" for n, k in zip(sizes, ks)])
    solving, kept = 0.0, 0.0
    for solver in set(solvers.tolist()) - {"none"}:
        chosen = solvers == solver
        n, k = sizes[chosen], ks[chosen]
        piece_bytes[chosen] = np.maximum(piece_bytes[chosen], _solve_bytes(n, k, solver, ndim))
        solving += float(np.sum(solve_seconds(solver, n, k)))
        kept += (4 if solver == "multilevel" else 8) * float((n * k.astype(np.float64)).sum())  # embeddings
    labelling = float(np.sum(kmeans_seconds(sizes, counts, seeded=seeded)))
    seconds = solving + labelling
    prepared = preparation_bytes(n_pixels, ndim)
    if not solved.any():
        peak = max(int(shared), prepared)
        return RunEstimate(peak, seconds, int(sizes.max(initial=0)), 1, "none", solving, labelling)
    worst = int(np.argmax(piece_bytes))
    peak = max(int(shared + kept + piece_bytes[worst]), prepared)
    return RunEstimate(peak, seconds, int(sizes[worst]), int(ks[worst]), str(solvers[worst]), solving, labelling)


def _piece_ks(sizes: np.ndarray, n_segments: int, seeds_per_piece) -> np.ndarray:
    """Eigenvectors per piece, as the pipeline asks for them."""
    if seeds_per_piece is not None:
        return np.asarray(seeds_per_piece, dtype=np.int64)
    # Every piece gets one segment; any piece may get all the others (labels.split_counts).
    return np.minimum(max(int(n_segments) - len(sizes) + 1, 1), sizes)


def _most_segments(fits, n_segments: int) -> int:
    """The largest count in ``1 .. n_segments - 1`` for which ``fits(count)`` holds (1 if none)."""
    lo, hi = 1, int(n_segments) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} minutes" if seconds >= 120 else f"{seconds:.0f} s"


def check_run(
    n_pixels: int,
    sizes,
    ndim: int,
    eigen_solver: str,
    *,
    n_segments: int,
    seeds_per_piece=None,
    auto: bool = False,
    available: int | None = None,
    time_limit: float | None = TIME_LIMIT_SECONDS,
) -> RunEstimate:
    """Refuse a run that would not fit in memory, or whose segments would take too long.

    Parameters
    ----------
    n_pixels, sizes, ndim, eigen_solver
        See :func:`estimate_run`.
    n_segments : int
        ``n_clusters``, or the number of seed points.
    seeds_per_piece : array of int, optional
        Seed points in each piece (a seeded run).
    auto : bool
        ``n_clusters="auto"``: two-way cuts of every piece (``n_segments`` unused).
    available : int, optional
        Available bytes; read from the system when omitted (no memory check if unknown).
    time_limit : float or None
        Seconds of segment-dependent work above which the run is refused
        (the ``time_limit`` parameter); None: no limit, only memory is checked.

    Returns
    -------
    RunEstimate

    Raises
    ------
    InsufficientMemoryError
        The run would not fit; the message names n_clusters (or the seed
        points) when they are what does not fit, with the count that fits.
    TooMuchWorkError
        The segments would take longer than ``time_limit``.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    seeded = seeds_per_piece is not None
    if auto or time_limit is None:  # auto: two segments per cut whatever the image; only memory can refuse it
        time_limit = float("inf")

    def estimate(count, scale=1.0):
        if auto:  # two-way cuts, no k-means
            return estimate_run(n_pixels, sizes, ndim, np.minimum(2, sizes), eigen_solver, n_segments=len(sizes))
        per_piece = None if not seeded else np.ceil(np.asarray(seeds_per_piece) * scale).astype(np.int64)
        ks = _piece_ks(sizes, count, per_piece)
        return estimate_run(n_pixels, sizes, ndim, ks, eigen_solver, n_segments=count, seeded=seeded)

    run = estimate(n_segments)
    run_ks = np.minimum(2, sizes) if auto else _piece_ks(sizes, n_segments, seeds_per_piece)
    if available is None:
        available = available_memory()
    too_big = available is not None and run.peak_bytes > available
    if not too_big and run.seconds <= time_limit:
        return run
    what = f"{n_segments} seed points" if seeded else f"n_clusters={n_segments}"

    def fits(count):
        other = estimate(count, count / n_segments)
        return other.seconds <= time_limit and (available is None or other.peak_bytes <= available)

    if too_big and (auto or n_segments <= 2 or not fits(1)):  # the image is too big, not the segments
        multilevel = None
        if eigen_solver != "multilevel":
            multilevel = estimate_run(n_pixels, sizes, ndim, run_ks, "multilevel", n_segments=n_segments).peak_bytes
        raise _image_too_big(n_pixels, int(sizes.sum()), eigen_solver, run.peak_bytes, available, multilevel)
    most = _most_segments(fits, n_segments)
    fix = (
        f"use at most about {most} {'seed points' if seeded else 'segments'} for this mask, or segment "
        "fewer pixels per piece (a mask or threshold that splits the image into smaller pieces, or a crop)"
    )
    gib = 2.0**30
    if too_big:
        raise InsufficientMemoryError(
            f"{what} needs about {run.peak_bytes / gib:.1f} GiB of memory (eigenvectors and k-means of up to "
            f"{run.piece_k} segments in a piece of {run.piece_size:,} pixels) but only {available / gib:.1f} GiB "
            f"is available; {fix}."
        )
    raise TooMuchWorkError(
        f"{what} would take about {_duration(run.seconds)} of CPU (eigenvectors and k-means of up to "
        f"{run.piece_k} segments in a piece of {run.piece_size:,} pixels), over time_limit={time_limit:g} s; "
        f"to run it anyway pass time_limit=None (or a larger number of seconds), or {fix}."
    )
