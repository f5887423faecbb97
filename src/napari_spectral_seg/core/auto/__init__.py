"""Automatic number of segments: split each connected component where it holds touching objects.

Each connected component of the mask is decided on its own, by a recursive
spectral bisection with a shape-and-intensity stopping rule:

1. **Landscape.** Every pixel gets a height ``h = d * t``: ``d`` is its
   distance to the mask boundary (``scipy.ndimage.distance_transform_edt``,
   in physical units when ``spacing`` is given) and ``t`` its intensity
   scaled to [0, 1] between the background level and the component's bright
   level. An object is one hill of ``h``; two touching objects are two hills
   joined by a pass, low where the union has a neck (small ``d``) or where a
   dark seam runs between them (small ``t``). Texture inside an object does
   not make a pass, because any line across the object still crosses its
   bright, deep middle.
2. **Candidate cut.** The Fiedler vector of the normalised Laplacian of the
   component's pixel graph, with edge weights ``(min(h_a, h_b) / max h)^2``,
   orders the pixels from one end of the component to the other across its
   cheapest (lowest, narrowest) pass. Every level set of that vector is a
   candidate cut (a "sweep cut").
3. **Decision.** For each candidate, the pass height is the largest ``h``
   among the edges it cuts, and the hill heights are the largest ``h`` on
   each side. The cut with the smallest ratio ``pass / min(hills)`` is
   taken if that ratio is below ``sensitivity``. The ratio is dimensionless
   and does not depend on the object's size, brightness or elongation: for
   one disc, ellipse or sphere it is close to 1 (any cut crosses the
   middle), for two discs overlapping with centre distance 1.6 R it is about
   0.6, and a dark seam at half brightness brings it to about 0.5.
4. **Recursion.** Accepted parts are split again the same way, on the same
   landscape, until no cut passes; pieces smaller than ``min_part`` pixels
   are never split off.
5. **Typical size.** The pieces of steps 1-4 are mostly single objects, so
   their median size (pieces of at least ``min_part`` pixels) is the
   typical object size (or ``object_size`` is given). The rules below
   compare pieces with it, as area-equivalents (volume ratios to the power
   2/3 in 3D).
6. **Notches (2D).** In a clump of three or four objects the distance
   transform's ridge runs through the junction and a dim lobe beside a
   bright one is a shoulder, so a lobe can make no pass at all. Its outline
   still shows it: a concave notch on each side of a neck. Pieces of at
   least 1.2 typical sizes are cut along the straight line between two
   notches (each at least 1.5 pixels inside the convex hull) when the
   notches' summed depth is at least 0.3 times the cut's length and the cut
   is at most 1.1 times the smaller side's equivalent diameter (a neck
   narrower than the objects); parts are tried again.
7. **Shape moments (3D).** Two objects overlapping deeply, or two small
   ones the size of one typical object, can leave no pass at all. Their
   union is still not shaped like one ellipsoid: a 2-means clustering of its
   voxel positions (physical units) leaves less than 0.6 of its second
   moment, while a single ellipsoid (axes up to 1.5:1, whole or clipped by a
   neighbour) leaves 0.66-0.80; such pieces (from 0.9 typical sizes) are
   cut along the 2-means split if both halves hold 0.4 typical sizes and
   are ellipsoid-like themselves (each leaves at least 0.6; a flat fragment
   left by earlier cuts does not); parts are tried again.
8. **Slivers.** Pieces cut off inside a component below a quarter of the
   typical size rejoin the neighbour they share the longest border with:
   they are false cuts, not objects.

After these steps the pipeline adds the dim objects that lie below the
threshold as objects of their own (:mod:`napari_spectral_seg.core.dim`) and
moves each object's edge to its own brightness
(:mod:`napari_spectral_seg.core.edges`) when a threshold made the mask.

Steps 6-8, the dim objects and the edge move are the rules kept after an ablation on data
they were not tuned on; ten more (a second landscape of the distance
alone, per-part distance transforms, a thin-part guard, the re-split of
oversized parts with its size rounds and floor, intensity-step cuts, the 3D
ellipsoid join, a one-convex-body keep, the convex rejoin of a large object cut
in two) earned nothing there and were
removed (``docs/auto_tuning.md``, README *Which auto-mode rules earn their
place*).

The package is numpy/scipy only; it calls the shared eigen-solver
:func:`napari_spectral_seg.core.eigen.laplacian_eigenvectors`.

The numbers above are the defaults of :class:`AutoConfig`
(``napari_spectral_seg.core.auto.config``); every rule reads its thresholds
from the ``config`` passed to :func:`iter_auto_labels`, which can also turn
each of steps 6-9 off on its own (``bench/ablation.py`` measures what each
earns).
How they were chosen is recorded in ``docs/auto_tuning.md``.

The package, from the bottom up (each module imports only those above it):

- ``config``: :class:`AutoConfig`, ``DEFAULT_SENSITIVITY`` and the checks of
  the auto-mode parameters;
- ``geometry``: local boxes, pixel sizes and size ratios;
- ``landscape``: the pixel graph's edges and the landscape ``h`` (step 1);
- ``pieces``: cutting a component into connected pieces, merging small
  ones, the typical size;
- ``shape``: shape cues (2-means, convex hull and solidity, seams, notches);
- ``bisection``: sweep cuts along the Fiedler vector and the recursive
  split of a component (steps 2-4);
- ``rules``: the rules of steps 6-9;
- ``recipe``: :func:`iter_auto_labels`, which runs them in order.
"""

from .bisection import split_component
from .config import DEFAULT_SENSITIVITY, AutoConfig, default_min_part
from .landscape import landscape, pixel_edges
from .pieces import median_piece_size
from .recipe import iter_auto_labels, iter_piece_sizes

__all__ = [
    "DEFAULT_SENSITIVITY",
    "AutoConfig",
    "default_min_part",
    "landscape",
    "pixel_edges",
    "split_component",
    "iter_auto_labels",
    "iter_piece_sizes",
    "median_piece_size",
]
