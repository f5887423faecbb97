"""Peak-memory estimate of a segmentation, checked before anything big is allocated."""

from __future__ import annotations

__all__ = [
    "InsufficientMemoryError",
    "available_memory",
    "estimate_peak_bytes",
    "check_memory",
    "check_image_memory",
]


class InsufficientMemoryError(ValueError, MemoryError):
    """A run refused before allocating because it would not fit in memory.

    Both a ValueError (bad input: the message says what to change) and a
    MemoryError (what it prevents).
    """


# Bytes per image pixel held through the whole run: the float64 working copy
# of the image, the boolean mask, the int32 node numbering, the int64 label
# image and the int32 relabelled output, plus graph-building temporaries.
_BYTES_PER_PIXEL = 40
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
    gib = 2.0**30
    fixes = []
    if solver != "multilevel":
        multilevel_peak = estimate_peak_bytes(n_pixels, n_nodes, ndim, k, "multilevel")
        fixes.append(f"use eigen_solver='multilevel' (coarsens the graph; about {multilevel_peak / gib:.1f} GiB)")
    fixes += [
        "crop the image to the region of interest",
        "downsample it (e.g. image[::2, ::2])",
        "or shrink the mask / raise the threshold so fewer pixels are segmented",
    ]
    raise InsufficientMemoryError(
        f"segmenting {n_nodes:,} pixels of a {n_pixels:,}-pixel image with eigen_solver={solver!r} "
        f"needs about {peak / gib:.1f} GiB but only {available / gib:.1f} GiB of memory is available; "
        + "; ".join(fixes)
        + "."
    )


def check_image_memory(n_pixels: int, n_channels: int = 1, available: int | None = None) -> int:
    """Refuse an image whose working copies alone would not fit, before copying it.

    Checked before the mask is known (and before a dask array is computed):
    the float64 copy of every channel plus the per-pixel masks and label
    images. :func:`check_memory` checks the graph once the mask is known.

    Parameters
    ----------
    n_pixels : int
        Pixels (voxels) of the image's spatial axes.
    n_channels : int
        Values per pixel.
    available : int, optional
        Available bytes; read from the system when omitted (no check if unknown).

    Returns
    -------
    int
        The estimated bytes.
    """
    needed = int(n_pixels) * (8 * int(n_channels) + _BYTES_PER_PIXEL)
    if available is None:
        available = available_memory()
    if available is not None and needed > available:
        gib = 2.0**30
        raise InsufficientMemoryError(
            f"image of {n_pixels:,} pixels needs about {needed / gib:.3g} GiB as float64 but only "
            f"{available / gib:.3g} GiB of memory is available; crop or downsample the image "
            "(e.g. image[::2, ::2]) or segment one region of interest."
        )
    return needed
