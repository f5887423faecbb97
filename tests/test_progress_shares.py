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
from napari_spectral_seg.core.prepare import PREPARE_STEPS
from napari_spectral_seg.core.shares import (
    AUTO_PHASE_SHARES,
    auto_shares,
    component_solve_seconds,
    fixed_count_shares,
    prepare_shares,
)
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
    # From the first update on: the steps before the mask report their estimated shares too.
    worst = max(abs(fraction - t / total) for t, fraction in trace)
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
    assert big / small == pytest.approx(
        component_solve_seconds(600_000, 4, "auto") / (50 * component_solve_seconds(500, 4, "auto"))
    )
    assert np.all(np.diff(shares.component_ends) >= 0)
    assert (
        shares.in_component(0, 0.0) == shares.eigenvectors and shares.in_component(0, 2.0) == shares.component_ends[0]
    )
    assert fixed_count_shares(0.1, [100, 200], [1, 1], "auto").component_ends[-1] == pytest.approx(
        fixed_count_shares(0.1, [100, 200], [1, 1], "auto").eigenvectors
    )  # one segment each: nothing to solve
    auto = auto_shares(0.2, 1_000_000, [500] * 100)
    cuts = [
        auto.in_auto_cuts("first pass", 0.5),
        auto.in_auto_cuts("first pass", 1.0),
        auto.in_auto_cuts("shape rules", 0.5),
    ]
    assert auto.eigenvectors < cuts[0] < cuts[1] < cuts[2] < auto.labels
    # Each phase of the cuts gets its own share of their time, weighed in one place.
    first = AUTO_PHASE_SHARES["first pass"]
    assert cuts[1] == pytest.approx(auto.eigenvectors + first * (auto.labels - auto.eigenvectors))
    assert auto.in_auto_cuts("shape rules", 1.0) <= auto.labels  # never past the next step's start, even by rounding
    with pytest.raises(ValueError, match="phase"):
        auto.in_auto_cuts("pass", 0.5)


def test_the_steps_before_the_mask_have_shares_and_later_steps_start_after_them():
    every = dict(corrected=["polarity", "background"], settings=["scales"], smoothed=["smoothing"])
    assert list(every) == list(PREPARE_STEPS)
    prepare = prepare_shares(4_000_000, 1, every, (4_000_000, True), True, 2, "auto")
    ends = [prepare.ends[name] for name in (*PREPARE_STEPS, "mask")]
    assert 0 < ends[0] < ends[1] < ends[2] < ends[3] < 1
    nothing = prepare_shares(4_000_000, 1, dict.fromkeys(every, []), (1000, False), False, 4, "auto")
    assert nothing.ends["corrected"] == nothing.ends["smoothed"] == 0.0
    # Shares measured after the mask never start below what was already reported.
    shares = fixed_count_shares(0.1, [600_000], [4], "auto")
    lifted = shares.from_floor(0.5)
    assert lifted.graph == 0.5 and lifted.eigenvectors > 0.5 and lifted.labels < 1.0
    assert np.all(np.diff([lifted.graph, lifted.eigenvectors, *lifted.component_ends, lifted.labels]) >= 0)
    assert shares.from_floor(0.0) is shares


def test_a_run_reports_before_its_mask_while_it_corrects_and_smooths():
    image, _ = touching_blobs((256, 256), n_objects=20, seed=0)
    updates = list(_updates(iter_segment(image, n_clusters="auto", random_state=0)))
    before_mask = [u for u in updates if u.step == "mask"]
    assert before_mask[0].fraction == 0.0 and before_mask[0].message == "checking the image"
    assert [u.message for u in before_mask[1:4]] == [
        "polarity and background",
        "smoothing width and smallest piece",
        "smoothed the image",
    ]
    assert 0 < before_mask[1].fraction < before_mask[3].fraction < 1


def _updates(steps):
    while True:
        try:
            yield next(steps)
        except StopIteration:
            return


@pytest.mark.parametrize(
    "given",
    [
        dict(n_clusters="auto"),
        dict(n_clusters=4, threshold="otsu", sigma=1.0, min_size="auto"),
        dict(n_clusters=4, threshold=None, sigma=0, min_size=10, background="flat"),
        dict(n_clusters=4, threshold="otsu", sigma=(0.0, 0.0), background="auto", polarity="bright"),
    ],
)
def test_prepare_work_forecasts_what_the_steps_before_the_mask_do(given):
    # prepare_work and the steps decide by the same predicates: what it forecasts is what they do.
    from napari_spectral_seg.core.params import SegmentationParams
    from napari_spectral_seg.core.prepare import iter_prepare_image, prepare_work
    from napari_spectral_seg.core.progress import drain

    image, _ = touching_blobs((96, 96), n_objects=12, seed=0)
    image = image + np.linspace(0.0, 0.6, 96)[None, :]  # an uneven background to estimate
    params = SegmentationParams(**given)
    work = prepare_work(params, has_mask=False, colour=False)
    _, _, chosen = drain(iter_prepare_image(image, None, params, image.shape, None))
    assert work["scales"] == ("noise" in chosen)
    assert work["background"] == (chosen["background_range"] > 0)
    sigma = chosen["sigma_used"]
    assert work["smoothing"] == (sigma is not None and bool(np.any(np.asarray(sigma) > 0)))  # (0, 0) smooths nothing


def test_the_progress_expects_the_solve_time_the_guard_let_through():
    # One cost model (core/costs.py): the shares' solves are the guard's estimate, piece by piece.
    from napari_spectral_seg.core import memory

    sizes, ks = [300, 5_000, 40_000, 120_000, 1], [3, 4, 20, 6, 1]
    run = memory.estimate_run(500**2, sizes, 2, ks, "auto", n_segments=sum(ks))
    solves = sum(component_solve_seconds(n, k, "auto") for n, k in zip(sizes, ks, strict=True))
    assert solves == pytest.approx(run.solve_seconds)
    for solver in ("lobpcg", "amg"):  # the progress costed these as the multilevel solver before
        lobpcg = memory.estimate_run(150**2, [22_500], 2, [20], solver, n_segments=20)
        assert component_solve_seconds(22_500, 20, solver) == pytest.approx(lobpcg.solve_seconds)
