"""The progress fraction follows the work (core/shares.py): real runs, their fractions against their clock.

Loose bounds on CPU time (which a busy machine inflates much less than wall
time), not a timing test: a fraction that counts steps or pixels was 0.2-0.3
ahead of the clock here.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from napari_spectral_seg.core.pipeline import iter_segment
from napari_spectral_seg.core.shares import auto_shares, fixed_count_shares, solve_seconds
from napari_spectral_seg.data import four_circles, touching_blobs


def _trace(steps):
    """(CPU seconds since the start, fraction) of each update, and the run's CPU seconds."""
    started, trace = time.process_time(), []
    while True:
        try:
            update = next(steps)
        except StopIteration:
            return trace, time.process_time() - started
        trace.append((time.process_time() - started, update.fraction))


def _check_follows_the_clock(trace, total, tolerance):
    fractions = [fraction for _, fraction in trace]
    assert fractions == sorted(fractions)  # monotone
    assert fractions[-1] == 1.0 and all(f < 1.0 for f in fractions[:-1])  # 100 % only at the end
    # From the first update past the checks before the mask (which report 0, their length unknown until done).
    started = next(i for i, f in enumerate(fractions) if f > 0)
    worst = max(abs(fraction - t / total) for t, fraction in trace[started:])
    assert worst <= tolerance, f"fraction {worst:.2f} away from the share of the CPU time"


@pytest.mark.parametrize("size", [800])
def test_a_multilevel_run_reports_fractions_that_follow_its_time(size):
    image, mask, _ = four_circles(size, noise=0.2, seed=0)  # 173k pixels: the multilevel solver
    trace, total = _trace(iter_segment(image, mask, n_clusters=4, random_state=0))
    assert len(trace) >= 10
    _check_follows_the_clock(trace, total, 0.3)


def test_many_components_and_auto_mode_report_fractions_that_follow_their_time():
    image, _ = touching_blobs((384, 384), n_objects=60, seed=0)
    trace, total = _trace(iter_segment(image, threshold="otsu", n_clusters=90, random_state=0))
    _check_follows_the_clock(trace, total, 0.35)
    trace, total = _trace(iter_segment(image, n_clusters="auto", random_state=0))
    _check_follows_the_clock(trace, total, 0.35)


def test_shares_weigh_components_by_their_solver_cost():
    # One big component (multilevel) and many small ones (exact): the big one's share is by its cost, not by count.
    shares = fixed_count_shares(0.1, [600_000] + [500] * 50, [4] * 51, "auto")
    assert 0 < shares.graph < shares.eigenvectors < shares.component_ends[0] < shares.labels < 1
    big = shares.component_ends[0] - shares.eigenvectors
    small = shares.component_ends[-1] - shares.component_ends[0]
    assert big / small == pytest.approx(solve_seconds(600_000, 4, "auto") / (50 * solve_seconds(500, 4, "auto")))
    assert np.all(np.diff(shares.component_ends) >= 0)
    assert (
        shares.in_component(0, 0.0) == shares.eigenvectors and shares.in_component(0, 2.0) == shares.component_ends[0]
    )
    assert fixed_count_shares(0.1, [100, 200], [1, 1], "auto").component_ends[-1] == pytest.approx(
        fixed_count_shares(0.1, [100, 200], [1, 1], "auto").eigenvectors
    )  # one segment each: nothing to solve
    auto = auto_shares(0.2, 1_000_000, [500] * 100)
    assert auto.eigenvectors < auto.in_auto_cuts(0.4) < auto.in_auto_cuts(0.8) < auto.in_auto_cuts(0.9) < auto.labels
    # Auto mode's first pass (0-0.8 of its own fraction) is most of the cuts' time, the shape rules the rest.
    assert auto.in_auto_cuts(0.8) == pytest.approx(auto.eigenvectors + 0.85 * (auto.labels - auto.eigenvectors))
    assert auto.in_auto_cuts(1.0) <= auto.labels  # never past the next step's start, even by rounding
