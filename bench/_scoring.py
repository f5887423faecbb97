"""Scores of an instance segmentation against its truth: matches at IoU > 0.5 and the kinds of error.

The definitions are in the docstring of ``bench/quality.py``. Numpy only, so that the tests check
them without the baselines installed.
"""

from __future__ import annotations

import numpy as np


def consecutive(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """``labels`` as 0 (background) and 1..n, and n."""
    ids, inverse = np.unique(labels, return_inverse=True)
    inverse = inverse.reshape(-1)
    if ids.size and ids[0] == 0:
        return inverse, int(ids.size - 1)
    return inverse + 1, int(ids.size)


def score(truth: np.ndarray, pred: np.ndarray) -> dict:
    """Matches and error kinds of one image (defined in the docstring of bench/quality.py)."""
    t, nt = consecutive(truth)
    p, npred = consecutive(pred)
    full = np.bincount(t * (npred + 1) + p, minlength=(nt + 1) * (npred + 1)).reshape(nt + 1, npred + 1)
    inter = full[1:, 1:]
    area_t = full[1:, :].sum(axis=1)
    area_p = full[:, 1:].sum(axis=0)
    iou = inter / np.maximum(area_t[:, None] + area_p[None, :] - inter, 1)
    matched = iou > 0.5
    t_matched, p_matched = matched.any(axis=1), matched.any(axis=0)
    covers = 2 * inter >= area_t[:, None]  # P covers at least half of T
    merge = covers.sum(axis=0) >= 2
    lost_to_merge = ~t_matched & (covers & merge[None, :]).any(axis=1)
    inside = 2 * inter > area_p[None, :]  # P lies mostly inside T: a fragment of T
    fragment_cover = (inter * inside).sum(axis=1)
    split = ~t_matched & ~lost_to_merge & (inside.sum(axis=1) >= 2) & (2 * fragment_cover >= area_t)
    missed = ~t_matched & ~lost_to_merge & ~split
    fragment = (inside & split[:, None]).any(axis=0)
    false_pos = ~p_matched & ~merge & ~fragment
    return {
        "tp": int(matched.sum()),
        "n_true": nt,
        "n_pred": npred,
        "splits": int(split.sum()),
        "merges": int(merge.sum()),
        "lost_to_merges": int(lost_to_merge.sum()),
        "misses": int(missed.sum()),
        "false_pos": int(false_pos.sum()),
        "fp_background": int((false_pos & (2 * full[0, 1:] > area_p)).sum()),
        "fp_sizes": sorted(int(s) for s in area_p[false_pos]),
    }


def pooled(scores: list, seconds: list) -> dict:
    """The scores of a set's images summed, with F1 and the median time per image."""
    total = {key: sum(s[key] for s in scores) for key in scores[0] if key != "fp_sizes"}
    denominator = total["n_true"] + total["n_pred"]
    total["f1"] = round(2 * total["tp"] / denominator, 4) if denominator else 1.0
    total["fp_sizes"] = sorted(size for s in scores for size in s["fp_sizes"])
    total["fp_median_size"] = float(np.median(total["fp_sizes"])) if total["fp_sizes"] else None
    total["median_s"] = round(float(np.median(seconds)), 3)
    return total
