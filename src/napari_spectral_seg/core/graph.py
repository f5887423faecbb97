"""Pixel graphs: which pixels are nodes, which pairs are edges, and their weights.

Nodes are the pixels (or voxels) inside a mask; edges join face neighbours
(4-connectivity in 2D, 6 in 3D). An edge's weight falls with the intensity
gradient across it, ``exp(-beta * gradient / std(gradient))``, as in the
scikit-learn "segmentation with spectral clustering" example.

Nodes are numbered component by component (see :func:`index_pixels`), so that
each connected component of the mask is a contiguous diagonal block of the
adjacency matrix and can be cut out without copying the whole graph.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.ndimage as ndi
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

__all__ = [
    "PixelIndex",
    "index_pixels",
    "build_pixel_graph",
    "edge_weights_graph",
    "component_block",
]


class PixelIndex(NamedTuple):
    """Numbering of the masked pixels, grouped by connected component.

    Attributes
    ----------
    node_of_pixel : ndarray of int32 or int64, shape = mask.shape
        Node number of each pixel, ``-1`` outside the kept components.
    offsets : ndarray of int64, shape (n_components + 1,)
        Nodes ``offsets[i]:offsets[i+1]`` form component ``i``.
    pixel_of_node : ndarray of int64, shape (n_nodes,)
        Flat (raster) index into ``mask`` of each node.
    """

    node_of_pixel: np.ndarray
    offsets: np.ndarray
    pixel_of_node: np.ndarray

    @property
    def n_nodes(self) -> int:
        return int(self.offsets[-1])

    @property
    def n_components(self) -> int:
        return len(self.offsets) - 1


def connected_regions(regions: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components of a label image, keeping different labels apart.

    Like ``scipy.ndimage.label`` (face neighbours), except that two
    neighbouring pixels join only if they carry the same nonzero value, so
    touching regions of a Labels layer stay separate.

    Parameters
    ----------
    regions : ndarray of int, shape S
        0 is background.

    Returns
    -------
    components : ndarray of int32, shape S
        0 for background, 1..n numbered by first pixel in raster order.
    n : int
        Number of components.
    """
    regions = np.asarray(regions)
    size = regions.size
    flat_index = np.arange(size, dtype=np.int64).reshape(regions.shape)
    heads, tails = [], []
    for axis in range(regions.ndim):
        if regions.shape[axis] < 2:
            continue
        lo, hi = _neighbour_slices(regions.ndim, axis)
        same = (regions[lo] == regions[hi]) & (regions[lo] != 0)
        heads.append(flat_index[lo][same])
        tails.append(flat_index[hi][same])
    heads = np.concatenate(heads) if heads else np.zeros(0, np.int64)
    tails = np.concatenate(tails) if tails else np.zeros(0, np.int64)
    links = sp.coo_array((np.ones(len(heads), np.int8), (heads, tails)), shape=(size, size))
    _, component = connected_components(links, directed=False)
    inside = regions.ravel() != 0
    # Renumber the components that hold foreground 1..n by first pixel.
    ids, first = np.unique(component[inside], return_index=True)
    order = np.empty(len(ids), dtype=np.int32)
    order[np.argsort(first)] = np.arange(1, len(ids) + 1, dtype=np.int32)
    lookup = np.zeros(component.max() + 1, dtype=np.int32)
    lookup[ids] = order
    out = np.where(inside, lookup[component], 0).astype(np.int32)
    return out.reshape(regions.shape), len(ids)


# Up to this many components, index_pixels picks each one's pixels out in a
# pass of its own instead of sorting all of them by component.
_FEW_COMPONENTS = 8


def _narrowest(values: np.ndarray, largest: int) -> np.ndarray:
    """Non-negative integers ``values`` (at most ``largest``) as uint8 or uint16 where they fit, else as they are."""
    for dtype in (np.uint8, np.uint16):
        if largest <= np.iinfo(dtype).max:
            return values.astype(dtype)
    return values


def index_pixels(mask: np.ndarray, min_size: int = 1, regions: np.ndarray | None = None) -> PixelIndex:
    """Number the pixels of ``mask``, one contiguous range per connected component.

    Parameters
    ----------
    mask : ndarray of bool, shape (M, N) or (P, M, N)
        Pixels to segment.
    min_size : int
        Components with fewer pixels than this are left out (their pixels get
        node number -1). Connectivity is face neighbours only, the same as the
        graph's edges, so a component is exactly a connected piece of the graph.
    regions : ndarray of int, shape of mask, optional
        Region label of each pixel (e.g. a Labels layer): pixels of different
        regions never share a component, even where they touch.

    Returns
    -------
    PixelIndex
        Components are ordered by their first pixel in raster order; inside a
        component, nodes follow raster order.
    """
    mask = np.asarray(mask, dtype=bool)
    if regions is None:
        component_of_pixel, n_found = ndi.label(mask)
    else:
        component_of_pixel, n_found = connected_regions(np.where(mask, regions, 0))
    flat = component_of_pixel.ravel()
    inside = np.flatnonzero(flat)
    comp = flat[inside]
    sizes = np.bincount(comp, minlength=n_found + 1)
    keep = sizes >= max(int(min_size), 1)
    keep[0] = False
    if not keep[1:].all():
        kept = keep[comp]
        inside, comp = inside[kept], comp[kept]
    kept_sizes = sizes[keep]
    offsets = np.zeros(len(kept_sizes) + 1, dtype=np.int64)
    np.cumsum(kept_sizes, out=offsets[1:])
    if len(kept_sizes) == 1:
        # One component (the common case): raster order already, no sort.
        pixel_of_node = inside
    elif len(kept_sizes) <= _FEW_COMPONENTS:
        # A few: each one's pixels picked out in raster order, a pass each.
        pixel_of_node = np.empty_like(inside)
        for start, stop, label in zip(offsets[:-1], offsets[1:], np.flatnonzero(keep), strict=True):
            pixel_of_node[start:stop] = inside[comp == label]
    else:
        # ndi.label numbers components by first pixel in raster order, so a
        # stable sort by label keeps raster order inside each component.
        # Labels that fit in 16 bits are sorted as such: numpy's stable sort
        # of 8- and 16-bit integers is a radix sort, O(n) (same order).
        order = np.argsort(_narrowest(comp, n_found), kind="stable")
        pixel_of_node = inside[order]
    index_dtype = np.int32 if len(pixel_of_node) < np.iinfo(np.int32).max else np.int64
    node_of_pixel = np.full(mask.size, -1, dtype=index_dtype)
    node_of_pixel[pixel_of_node] = np.arange(len(pixel_of_node), dtype=index_dtype)
    return PixelIndex(node_of_pixel.reshape(mask.shape), offsets, pixel_of_node)


def _neighbour_slices(ndim: int, axis: int):
    lo = [slice(None)] * ndim
    hi = [slice(None)] * ndim
    lo[axis] = slice(None, -1)
    hi[axis] = slice(1, None)
    return tuple(lo), tuple(hi)


def seed_weight_scale(grad, image, node_of_pixel, multichannel=False) -> float:
    """The normaliser ``std`` of the edge weights ``exp(-beta * gradient / std)``.

    It is the standard deviation of the entries of scikit-learn's
    ``img_to_graph(image, mask)``, which the seed example uses: every edge's
    gradient (once per direction) together with the masked pixels'
    intensities on its diagonal. With ``beta=1`` the weights are therefore
    exactly the seed's. The intensities make the scale grow with the image's
    brightness and contrast, so bright, high-contrast images want a larger
    ``beta`` for the same edge sensitivity.

    Returns 1.0 where the spread is zero (a constant image: all weights 1).
    """
    inside = node_of_pixel >= 0
    values = image[inside]
    if multichannel:
        values = values.mean(axis=-1)
    values = values.astype(np.float64, copy=False)
    grad = grad.astype(np.float64, copy=False)
    n_grad, n_val = 2 * len(grad), len(values)
    total = n_grad + n_val
    mean = (2 * grad.sum() + values.sum()) / total
    # Centred sums keep the variance accurate for large, bright images.
    sq = 2 * np.sum((grad - mean) ** 2) + np.sum((values - mean) ** 2)
    scale = float(np.sqrt(sq / total))
    if not np.isfinite(scale) or scale <= 0:
        return 1.0
    return scale


def edge_weights_graph(
    image: np.ndarray,
    node_of_pixel: np.ndarray,
    n_nodes: int,
    *,
    beta: float = 1.0,
    spacing=None,
    dtype=np.float32,
    regions: np.ndarray | None = None,
) -> sp.csr_array:
    """Weighted adjacency matrix of the pixel graph for a given node numbering.

    Parameters
    ----------
    image : ndarray of float, shape S or S + (C,)
        Intensities; with a trailing channel axis the gradient is the
        Euclidean norm of the channel-vector difference.
    node_of_pixel : ndarray of int, shape S
        Node number of each pixel, -1 for pixels that are not nodes.
    n_nodes : int
        Number of nodes (``node_of_pixel.max() + 1``).
    beta : float
        Edge sharpness: larger values make edges across a gradient weaker.
    spacing : sequence of float, length len(S), optional
        Physical pixel size along each axis, in any unit (only ratios
        matter). Gradients are divided by ``spacing / min(spacing)`` and
        the edge conductance scaled by ``(min(spacing) / spacing) ** 2`` so the
        graph Laplacian approximates the isotropic continuous one.
    dtype : numpy dtype
        Dtype of the weights (float32 halves the memory of float64).
    regions : ndarray of int, shape S, optional
        Region label per pixel: no edge joins two different regions.

    Returns
    -------
    scipy.sparse.csr_array, shape (n_nodes, n_nodes)
        Symmetric, zero diagonal, weights in (0, 1].
    """
    ndim = node_of_pixel.ndim
    spacing = np.ones(ndim) if spacing is None else np.asarray(spacing, dtype=float)
    # Only the ratios matter: isotropic spacing in any unit gives the seed's graph.
    spacing = spacing / spacing.min()
    conductance = 1.0 / spacing**2
    multichannel = image.ndim == ndim + 1

    heads, tails, grads, axis_of_edge = [], [], [], []
    for axis in range(ndim):
        if node_of_pixel.shape[axis] < 2:
            continue
        lo, hi = _neighbour_slices(ndim, axis)
        a = node_of_pixel[lo]
        b = node_of_pixel[hi]
        both = (a >= 0) & (b >= 0)
        if regions is not None:
            both &= regions[lo] == regions[hi]
        diff = image[lo][both] - image[hi][both]
        if multichannel:
            grad = np.sqrt(np.einsum("ij,ij->i", diff, diff, dtype=np.float64))
        else:
            grad = np.abs(diff)
        heads.append(a[both])
        tails.append(b[both])
        grads.append((grad / spacing[axis]).astype(dtype, copy=False))
        axis_of_edge.append(np.full(len(grad), axis, dtype=np.int8))

    if not heads:
        return sp.csr_array((n_nodes, n_nodes), dtype=dtype)
    bounds = np.concatenate([[0], np.cumsum([len(h) for h in heads])])
    grad = np.concatenate(grads)
    del grads
    axis_of_edge = np.concatenate(axis_of_edge)

    scale = seed_weight_scale(grad, image, node_of_pixel, multichannel)
    # Clipped to the dtype's range: a huge beta would otherwise give -inf,
    # and 0 * -inf = NaN on flat edges, whose weight must stay exp(0) = 1.
    factor = max(-beta / scale, -float(np.finfo(dtype).max))
    weight = np.exp(grad * dtype(factor))
    if not np.all(conductance == 1):
        weight *= conductance.astype(dtype)[axis_of_edge]

    # Each row's entries in the order of the blocks below: first the node's
    # neighbours at lower raster index, the axis with the largest stride
    # first, then those at higher index, the smallest stride first. When
    # nodes follow raster order within each component (as index_pixels
    # numbers them) that leaves every row's columns sorted (others are sorted after).
    # Per axis: the ends of its edges (not concatenated: only the blocks read them) and their weights.
    lower = [(tail, head, weight[bounds[i] : bounds[i + 1]]) for i, (head, tail) in enumerate(zip(heads, tails))]
    blocks = lower + [(head, tail, w) for tail, head, w in lower[::-1]]
    return _csr_from_blocks(blocks, n_nodes, dtype)


def _csr_from_blocks(blocks, n_nodes: int, dtype) -> sp.csr_array:
    """The CSR matrix of ``(rows, columns, values)`` blocks, each row's entries in block order.

    The same matrix as COO -> CSR of the concatenated blocks (a stable
    counting sort by row), without the concatenated copies and the
    conversion's passes over them. A row appears at most once in each block
    (a pixel has one neighbour per direction), so the blocks fill a table of
    one column per block, and the table's filled cells, read row by row,
    are the entries in CSR order.
    """
    nnz = sum(len(rows) for rows, _, _ in blocks)
    index_dtype = np.int32 if max(n_nodes, nnz) < 2**31 - 1 else np.int64
    columns_of = np.full((n_nodes, len(blocks)), -1, dtype=index_dtype)
    values_of = np.empty((n_nodes, len(blocks)), dtype=dtype)
    for block, (rows, columns, values) in enumerate(blocks):
        # A column of the table is a strided view: a plain one-index scatter.
        columns_of[:, block][rows] = columns
        values_of[:, block][rows] = values
    filled = columns_of >= 0
    counts = np.zeros(n_nodes, dtype=index_dtype)
    for block in range(len(blocks)):
        counts += filled[:, block]
    indptr = np.zeros(n_nodes + 1, dtype=index_dtype)
    np.cumsum(counts, out=indptr[1:])
    del counts
    indices = columns_of[filled]
    del columns_of
    data = values_of[filled]
    graph = sp.csr_array((data, indices, indptr), shape=(n_nodes, n_nodes))
    graph.sort_indices()  # one check pass where nodes follow raster order; sorts any other numbering
    return graph


def build_pixel_graph(
    image: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    beta: float = 1.0,
    spacing=None,
    channel_axis: int | None = None,
    dtype=np.float32,
) -> sp.csr_array:
    """Weighted pixel graph of ``image`` restricted to ``mask``.

    Parameters
    ----------
    image : array_like, shape (M, N) or (P, M, N), optionally with a channel axis
        Intensities.
    mask : array_like of bool, shape of the spatial axes, optional
        Pixels to use as nodes; all pixels if omitted.
    beta, spacing, dtype
        See :func:`edge_weights_graph`.
    channel_axis : int, optional
        Axis of ``image`` that holds channels.

    Returns
    -------
    scipy.sparse.csr_array, shape (n, n)
        ``n`` is the number of pixels in ``mask``; node ``i`` is the ``i``-th
        masked pixel in raster order (the order of ``image[mask]``).
    """
    image = np.asarray(image, dtype=np.float64)
    if channel_axis is not None:
        image = np.moveaxis(image, channel_axis, -1)
        spatial_shape = image.shape[:-1]
    else:
        spatial_shape = image.shape
    mask = np.ones(spatial_shape, bool) if mask is None else np.asarray(mask, bool)
    node_of_pixel = np.full(spatial_shape, -1, dtype=np.int64)
    n = int(mask.sum())
    node_of_pixel[mask] = np.arange(n)
    return edge_weights_graph(image, node_of_pixel, n, beta=beta, spacing=spacing, dtype=dtype)


def component_block(graph: sp.csr_array, start: int, stop: int) -> sp.csr_array:
    """Diagonal block ``graph[start:stop, start:stop]`` of a block-diagonal CSR matrix.

    Works in O(block size) because no edge leaves the block (nodes are
    numbered by component, see :func:`index_pixels`).
    """
    if start == 0 and stop == graph.shape[0]:
        return graph  # one component: the whole graph, no copy
    indptr = graph.indptr[start : stop + 1]
    first, last = indptr[0], indptr[-1]
    return sp.csr_array(
        (graph.data[first:last], graph.indices[first:last] - start, indptr - first),
        shape=(stop - start, stop - start),
    )
