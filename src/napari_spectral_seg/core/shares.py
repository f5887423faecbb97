"""How far a run is: each step's share of the time, estimated from the sizes the mask step found.

A progress fraction that counts steps or pixels runs ahead of the clock
where the work is not spread like that: a fixed split (graph 5-20 %,
eigenvectors 20-90 %) said 90 % at 58 % of a 1600 x 1600 run, and 97 % at
component 34 of 84 in auto mode. Here the time the checks, the smoothing and
the mask took is measured (CPU seconds, so a busy machine does not skew
it), and what follows is estimated from the sizes: a per-node cost for the
graph and the labels, and for each connected component the cost of the
solver it will run, from the cost model the time guard uses
(:mod:`.costs`), so the progress expects what the guard let through. The
constants here are one-thread CPU seconds measured on disks of 400 to
700,000 pixels and on 300 touching blobs (``bench/progress.py`` prints a
run's fractions against its clock).
The fractions are monotone and reach 1 only when the last step ends.

The steps before the mask (polarity, background, the scales behind the
"auto" settings, the smoothing: seconds at 8192 x 8192) report too, from
estimates made before they run (:func:`prepare_shares`: per-pixel costs,
and the rest of the run for the nodes the mask is expected to hold); once
the mask is known, the shares of the steps after it start no earlier than
what was already reported (:meth:`WorkShares.from_floor`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import costs
from .eigen import resolve_solver
from .labels import kmeans_seconds

__all__ = [
    "AUTO_PHASE_SHARES",
    "PrepareShares",
    "WorkShares",
    "auto_shares",
    "component_solve_seconds",
    "fixed_count_shares",
    "prepare_shares",
]

# One-thread CPU seconds per unit of work (the eigen-solves': core/costs.py).
_PER_NODE_GRAPH = 7e-8
# The labels step: a fixed cost, one per component clustered, and the
# guard's k-means cost (the fit, assigning and refining every row).
_LABELS_OVERHEAD, _PER_SPLIT_COMPONENT_LABELS = 0.02, 4e-3
# Auto mode: the shape and intensity cues and the moves of the object edges
# per pixel of the image; the recursive cuts and shape rules per component and node.
_AUTO_PER_PIXEL_CUES, _AUTO_PER_PIXEL_EDGES = 2.2e-7, 2.7e-7
_AUTO_PER_COMPONENT_CUTS, _AUTO_PER_NODE_CUTS = 0.005, 2e-6
# Auto mode's cuts report each phase's own part done (core/auto/recipe.py);
# the first pass takes most of their time.
AUTO_PHASE_SHARES = {"first pass": 0.85, "shape rules": 0.15}
# Before the mask, per pixel of the image: the polarity (block medians, Otsu),
# the uneven-background estimate, the scales of the "auto" settings, a
# Gaussian smoothing (per channel), and the mask step (threshold, pieces).
# (Measured on the three cases of bench/progress.py.)
_PER_PIXEL_PREPARE = {"polarity": 2.8e-8, "background": 2e-7, "scales": 2.2e-7, "smoothing": 2.5e-8}
_PER_PIXEL_MASK = 1.2e-8
# Until the mask is known: where a threshold makes it, this share of the
# image is assumed masked; each segment beyond the first is assumed to cost
# about a small component's exact solve and clustering (the per-node costs
# alone would count many segments as nearly free).
_ASSUMED_MASK_SHARE = 0.25
_ASSUMED_PER_SEGMENT = 8e-3
# Until the components are known the k-means' clusters are not either: a
# per-node cost of the labels step stands for it.
_ASSUMED_PER_NODE_LABELS = 2.1e-7


def component_solve_seconds(n_nodes: int, k: int, eigen_solver: str) -> float:
    """Estimated CPU seconds of one component's eigen-solve (0 when it gets one segment).

    The guard's cost model (:func:`.costs.solve_seconds`) for the solver
    ``eigen_solver`` resolves to at this size.
    """
    if k <= 1:
        return 0.0
    return float(costs.solve_seconds(resolve_solver(eigen_solver, n_nodes, k), n_nodes, k))


@dataclass(frozen=True)
class WorkShares:
    """Where each step of one run starts, as a fraction of the run's estimated time.

    Attributes
    ----------
    graph, eigenvectors, labels : float
        Fraction of the run done when the step starts (the mask step starts at 0).
    component_ends : ndarray
        Fraction done when each component's eigen-solve (auto mode: its cuts) ends.
    """

    graph: float
    eigenvectors: float
    labels: float
    component_ends: np.ndarray

    def in_component(self, comp: int, part: float = 1.0) -> float:
        """Fraction done ``part`` (0-1) of the way through component ``comp``'s solve."""
        start = self.eigenvectors if comp == 0 else float(self.component_ends[comp - 1])
        return start + min(max(part, 0.0), 1.0) * (float(self.component_ends[comp]) - start)

    def in_labels(self, part: float) -> float:
        """Fraction done ``part`` of the way through the labels step (1.0 only at its end)."""
        return self.labels + min(max(part, 0.0), 1.0) * (1.0 - self.labels)

    def in_auto_cuts(self, phase: str, part: float) -> float:
        """Auto mode: the fraction of the run ``part`` (0-1) of the way through the cuts' ``phase``.

        Each phase of ``AUTO_PHASE_SHARES`` gets its share of the cuts' time, in that order.
        """
        before = 0.0
        for name, share in AUTO_PHASE_SHARES.items():
            if name == phase:
                done = before + share * min(max(part, 0.0), 1.0)
                return min(self.eigenvectors + done * (self.labels - self.eigenvectors), self.labels)  # rounding
            before += share
        raise ValueError(f"phase={phase!r} is not one of {list(AUTO_PHASE_SHARES)}")

    def from_floor(self, floor: float) -> WorkShares:
        """These shares, the steps after the mask squeezed into ``[floor, 1]`` if they started below it.

        ``floor`` is the fraction already reported: the fractions stay monotone.
        """
        if self.graph >= floor:
            return self

        def lift(fraction):
            return floor + (1.0 - floor) * (fraction - self.graph) / max(1.0 - self.graph, 1e-12)

        return WorkShares(lift(self.graph), lift(self.eigenvectors), lift(self.labels), lift(self.component_ends))


@dataclass(frozen=True)
class PrepareShares:
    """Where each step before the graph ends, as a fraction of the run, estimated before the image is read.

    Attributes
    ----------
    ends : dict of str to float
        The fraction done when each of ``PREPARE_STEPS`` (core/prepare.py)
        and ``"mask"`` ends.
    """

    ends: dict


def prepare_shares(
    n_pixels: int, n_channels: int, steps: dict, masked: tuple[int, bool], auto: bool, k: int, eigen_solver: str
) -> PrepareShares:
    """The shares of the steps before the graph, from the image's size alone.

    Parameters
    ----------
    n_pixels, n_channels : int
        The image's pixels (spatial) and channels.
    steps : dict of str to sequence of str
        Each of ``PREPARE_STEPS`` (core/prepare.py), in order, and the
        costly parts that run in it (keys of :func:`.prepare.prepare_work`:
        ``polarity``, ``background``, ``scales``, ``smoothing``).
    masked : (int, bool)
        Pixels a given mask holds (the image's, without one), and whether
        a threshold acts too: it is assumed to keep ``_ASSUMED_MASK_SHARE`` of them.
    auto : bool
        Auto mode (``n_clusters="auto"``).
    k : int
        Segments asked for (fixed count or seed points).
    eigen_solver : str
    """
    per_channel = {"smoothing": n_channels}  # the other parts work on one intensity image
    seconds = {
        step: sum(_PER_PIXEL_PREPARE[part] * per_channel.get(part, 1) for part in parts)
        for step, parts in steps.items()
    }
    seconds["mask"] = _PER_PIXEL_MASK
    seconds = {name: per_pixel * n_pixels for name, per_pixel in seconds.items()}
    n_masked, thresholded = masked
    nodes = int(n_masked * (_ASSUMED_MASK_SHARE if thresholded else 1.0))
    if auto:
        rest = (_AUTO_PER_PIXEL_CUES + _AUTO_PER_PIXEL_EDGES) * n_pixels + _AUTO_PER_COMPONENT_CUTS
        rest += _AUTO_PER_NODE_CUTS * nodes + _LABELS_OVERHEAD
    else:
        rest = (
            _PER_NODE_GRAPH * nodes + component_solve_seconds(nodes, k, eigen_solver) + _ASSUMED_PER_SEGMENT * (k - 1)
        )
        rest += _LABELS_OVERHEAD + _ASSUMED_PER_NODE_LABELS * nodes + _PER_SPLIT_COMPONENT_LABELS
    total = max(sum(seconds.values()) + rest, 1e-12)
    ends = dict(zip(seconds, np.cumsum(list(seconds.values())) / total))
    return PrepareShares({name: float(end) for name, end in ends.items()})


def _shares(before_graph: float, graph: float, components: Sequence[float], labels: float) -> WorkShares:
    """Cumulative shares of the steps' estimated seconds."""
    seconds = np.cumsum([before_graph, graph, *components, labels])
    total = max(float(seconds[-1]), 1e-12)
    fractions = seconds / total
    return WorkShares(
        graph=float(fractions[0]),
        eigenvectors=float(fractions[1]),
        labels=float(fractions[-2]),
        component_ends=fractions[2:-1] if len(components) else np.array([fractions[1]]),
    )


def fixed_count_shares(
    done_seconds: float, sizes: Sequence[int], ks: Sequence[int], eigen_solver: str, extra_segments: int | None = None
) -> WorkShares:
    """The shares of a run with a given segment count (or seed points).

    Parameters
    ----------
    done_seconds : float
        CPU seconds the run has taken so far (the checks and the mask).
    sizes, ks : sequence of int
        Each component's nodes, and the eigenvectors it is solved for.
    eigen_solver : str
        The run's ``eigen_solver``.
    extra_segments : int, optional
        Segments beyond one per component (``n_clusters`` minus the
        components): at most this many components are clustered. Default:
        every component solved for more than one eigenvector (seed points).
    """
    n_nodes = int(np.sum(sizes))
    solves = [component_solve_seconds(int(n), int(k), eigen_solver) for n, k in zip(sizes, ks, strict=True)]
    split = sum(int(k) > 1 for k in ks)
    split = split if extra_segments is None else min(split, max(extra_segments, 0))
    labels = _LABELS_OVERHEAD + _PER_SPLIT_COMPONENT_LABELS * split
    # The segments beyond one per component are expected to spread by size.
    if extra_segments is None:
        clusters = np.asarray(ks)
    else:
        spread = max(extra_segments, 0) * np.asarray(sizes, dtype=np.float64) / max(n_nodes, 1)
        clusters = np.minimum(ks, 1 + np.round(spread).astype(np.int64))
    labels += float(np.sum(kmeans_seconds(sizes, clusters, seeded=extra_segments is None)))
    return _shares(done_seconds, _PER_NODE_GRAPH * n_nodes, solves, labels)


def auto_shares(done_seconds: float, n_pixels: int, sizes: Sequence[int]) -> WorkShares:
    """The shares of an auto-mode run (``n_clusters="auto"``): cues, cuts, then the object edges.

    ``done_seconds`` as for :func:`fixed_count_shares`; ``n_pixels`` the image's pixels.
    """
    cuts = _AUTO_PER_COMPONENT_CUTS * len(sizes) + _AUTO_PER_NODE_CUTS * int(np.sum(sizes))
    edges = _LABELS_OVERHEAD + _AUTO_PER_PIXEL_EDGES * n_pixels
    return _shares(done_seconds, _AUTO_PER_PIXEL_CUES * n_pixels, [cuts], edges)
