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
   taken if that ratio is below ``sensitivity``. The same cuts are also
   scored on the distance ``d`` alone and the lower ratio counts: next to a
   bright object a dim one is a low hill in ``h``, and the bright one's
   light, blurred across the neck, lifts the pass almost to that hill,
   while in ``d`` the neck still shows. The ratio is dimensionless
   and does not depend on the object's size, brightness or elongation: for
   one disc, ellipse or sphere it is close to 1 (any cut crosses the
   middle), for two discs overlapping with centre distance 1.6 R it is about
   0.6, and a dark seam at half brightness brings it to about 0.5.
4. **Recursion.** Accepted parts are split again the same way until no cut
   passes; pieces smaller than ``min_part`` pixels are never split off.
   Each part gets its own distance transform after a cut, so an object in
   the middle of a clump shows its neck once its neighbours are cut away.
5. **Size calibration.** Deep overlaps and clumps can hide a pass (ratio
   0.85-0.99). The pieces of a first pass are mostly single objects, so
   their median size is taken as the typical object size (or
   ``object_size`` is given), but not less than a tenth of the size of
   the piece holding the median pixel, so a swarm of small fragments
   cannot make every object look oversized; a piece larger than 1.5 times
   it is split again with a threshold of at least 0.93 that rises to 1.0 at
   2.5 times (from there on any cut below the lower hill's top is taken: a
   part that big is not one object), while both sides of such a cut must
   hold at least 0.4 times the typical size. Sizes are compared as
   area-equivalents (volume ratios to the power 2/3 in 3D).
   The typical size is then re-estimated from the new pieces and the size
   pass repeated (up to three rounds, until nothing changes): clumps the
   first median counted as objects raise it, and once they are cut smaller
   clumps stand out as oversized too.
6. **Intensity steps.** A small object bulging off a larger one with no
   neck in the mask makes no pass; if the two differ in brightness their
   seam is an intensity step, a terrace rather than a hill. Pieces at least
   1.1 typical sizes get one more candidate cut, from the Fiedler vector of
   a graph whose weights also fall with the intensity difference between
   neighbours (in units of its median, the noise and texture scale). The
   cut is taken when its normalised-cut value (a short seam between large
   sides) divided by the brightness step across it (median cue within 3
   pixels on each side) is below 0.04 (``step_score``), both sides holding 0.4
   typical sizes; the pieces are tried again.
7. **Shape moments (3D).** Two objects overlapping deeply, or two small
   ones the size of one typical object, can leave no pass at all. Their
   union is still not shaped like one ellipsoid: a 2-means clustering of its
   voxel positions leaves less than 0.6 of its second moment, while a single
   ellipsoid (axes up to 1.5:1, whole or clipped by a neighbour) leaves
   0.66-0.80; such pieces (from 0.9 typical sizes) are cut along the 2-means
   split if both halves are ellipsoid-like themselves (each leaves at least
   0.6; a flat fragment left by earlier cuts does not). Conversely two
   touching pieces whose union leaves at least 0.68 and holds at most 2
   typical sizes are one object cut in two and are joined. Slivers cut off
   inside a component (below a quarter of the typical size) rejoin their
   neighbour: they are false cuts, not objects.
8. **Convex rejoin.** A large object (often clipped by the image border)
   of 2-3.5 typical sizes has no pass, yet the oversized rule of step 5
   cuts it. Its pieces meet along a seam as wide as the object, and their
   union is convex; two touching objects meet at a neck or leave a dent.
   Two touching pieces are joined when their union fills at least 0.97 of
   its convex hull (pixel counts) and their seam is at least 1.4 times the
   smaller piece's equivalent diameter (3D: central section), the union
   holding at most 3.5 typical sizes. A border-clipped convex object stays
   convex, so the border needs no special case. In 3D a part that only the
   size rule of step 5 would cut is kept whole beforehand when it is one
   convex, ellipsoid-like body (solidity at least 0.97, 2-means leaving at
   least 0.66): a giant single object, not a clump.
9. **Notches (2D).** In a clump of three or four objects the distance
   transform's ridge runs through the junction and a dim lobe beside a
   bright one is a shoulder, so a lobe can make no pass at all. Its outline
   still shows it: a concave notch on each side of a neck. Pieces of at
   least 1.2 typical sizes are cut along the straight line between two
   notches (each at least 1.5 pixels inside the convex hull) when the
   notches' summed depth is at least 0.3 times the cut's length and the cut
   is at most 1.1 times the smaller side's equivalent diameter (a neck
   narrower than the objects); parts are tried again. Runs after step 6.

After these steps the pipeline moves each object's edge to its own
brightness (:mod:`napari_spectral_seg.core.edges`) when a threshold made
the mask.

The package is numpy/scipy only; it calls the shared eigen-solver
:func:`napari_spectral_seg.core.eigen.laplacian_eigenvectors`.

The numbers above are the defaults of :class:`AutoConfig`
(``napari_spectral_seg.core.auto.config``); every rule reads its thresholds
from the ``config`` passed to :func:`iter_auto_labels`, which can also turn
each rule off on its own (``bench/ablation.py`` measures what each earns).
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
  split of a component (steps 2-4), the intensity-step cut;
- ``rules``: the rules of steps 5-9;
- ``recipe``: :func:`iter_auto_labels`, which runs them in order.
"""

from .bisection import split_component
from .config import DEFAULT_SENSITIVITY, AutoConfig, default_min_part
from .landscape import landscape, pixel_edges
from .recipe import iter_auto_labels, iter_typical_size

__all__ = [
    "DEFAULT_SENSITIVITY",
    "AutoConfig",
    "default_min_part",
    "landscape",
    "pixel_edges",
    "split_component",
    "iter_auto_labels",
    "iter_typical_size",
]
