"""The golden matrix: labels and recorded parameters of fixed runs.

``python tests/golden/cases.py`` records them into ``tests/golden/outputs.npz``
(run once, before a redesign); ``tests/test_golden.py`` recomputes every case
and asserts the labels are ``np.array_equal`` and the recorded parameters equal
to the stored ones. Only public entry points are called (the package, its
``core`` and the command line), so the cases survive moving code around.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUTPUTS = HERE / "outputs.npz"

# Keys that vary from run to run (wall times, temporary paths), left out of the comparison.
VOLATILE = {"seconds", "input", "engine_start_seconds"}


def _normalise(parameters):
    """JSON-normalised parameters without the volatile keys, for comparison."""
    return _drop_volatile(json.loads(json.dumps(parameters, default=str)))


def _drop_volatile(value):
    if isinstance(value, dict):
        return {k: _drop_volatile(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_drop_volatile(v) for v in value]
    return value


def _run(image, mask=None, **kwargs):
    from napari_spectral_seg.core import iter_segment, run_to_end

    result = run_to_end(iter_segment(image, mask, **kwargs))
    return result.labels, result.parameters


def _circles_cases():
    from napari_spectral_seg.data import four_circles

    image, mask, _ = four_circles(size=60, seed=0)
    cases = {}
    for solver in ("auto", "arpack", "lobpcg", "amg", "multilevel"):
        for method in ("kmeans", "cluster_qr"):
            cases[f"circles_{solver}_{method}"] = lambda s=solver, m=method: _run(
                image, mask, n_clusters=4, eigen_solver=s, assign_labels=m, random_state=0
            )
    big, big_mask, _ = four_circles(size=400, seed=0)  # 80k masked pixels: the multilevel path of "auto"
    cases["circles_400_auto"] = lambda: _run(big, big_mask, n_clusters=4, random_state=0)
    return cases


def _volume_and_colour_cases():
    from napari_spectral_seg.data import four_circles

    volume, vmask, _ = four_circles(size=32, seed=1, ndim=3)
    image, mask, _ = four_circles(size=60, seed=2)
    rgb = np.stack([image, 0.5 * image, np.flipud(image)], axis=-1)
    seeds = np.array([[28 * 0.6, 24 * 0.6], [40 * 0.6, 50 * 0.6], [67 * 0.6, 58 * 0.6], [24 * 0.6, 70 * 0.6]])
    regions = np.zeros(mask.shape, np.int32)
    regions[mask] = 1
    regions[:, 30:][mask[:, 30:]] = 2  # two touching regions
    noisy = image + 0.3 * np.random.default_rng(5).standard_normal(image.shape)
    return {
        "volume_spacing": lambda: _run(volume, vmask, n_clusters=4, spacing=(2.0, 1.0, 1.0), random_state=0),
        "rgb_channel_axis": lambda: _run(rgb, mask, n_clusters=4, channel_axis=-1, random_state=0),
        "seed_points": lambda: _run(image, mask, seeds=seeds, random_state=0),
        "touching_labels_mask": lambda: _run(image, regions, n_clusters=4, random_state=0),
        "touching_labels_mask_auto": lambda: _run(image, regions, n_clusters="auto", random_state=0),
        "threshold_sigma_min_size": lambda: _run(
            noisy, threshold=1.5, sigma=1.0, min_size=20, n_clusters=4, random_state=0
        ),
        "threshold_otsu_beta": lambda: _run(noisy, threshold="otsu", beta=3.0, n_clusters=5, random_state=1),
    }


def _auto_cases():
    from napari_spectral_seg.data import touching_blobs

    image2, _ = touching_blobs((96, 96), 10, seed=3)
    image3, _ = touching_blobs((24, 48, 48), 6, seed=4)
    cases = {}
    for level in (0.0, 0.4):
        cases[f"auto2d_edge{level}"] = lambda lv=level: _run(
            image2, threshold="otsu", n_clusters="auto", sigma=1.0, min_size=20, edge_level=lv, random_state=0
        )
        cases[f"auto3d_edge{level}"] = lambda lv=level: _run(
            image3, threshold="otsu", n_clusters="auto", spacing=(2.0, 1.0, 1.0), edge_level=lv, random_state=0
        )
    cases["auto2d_defaults"] = lambda: _run(image2, threshold="otsu", n_clusters="auto", random_state=0)
    cases["auto2d_sensitivity"] = lambda: _run(
        image2, threshold="otsu", n_clusters="auto", sensitivity=0.6, random_state=0
    )
    return cases


def _frames_and_edit_cases():
    from napari_spectral_seg.core import merge_labels, segment_frames, split_label
    from napari_spectral_seg.data import four_circles

    stack = np.stack([four_circles(size=40, seed=s)[0] for s in range(3)])
    image, mask, _ = four_circles(size=60, seed=0)

    def frames():
        labels = segment_frames(stack, threshold="otsu", min_size=20, n_clusters=4, spatial_ndim=2, random_state=0)
        return labels, {}

    def split_and_merge():
        base = _run(image, mask, n_clusters=2, random_state=0)[0]
        target = int(base[int(40 * 0.6), int(50 * 0.6)])
        indices, values = split_label(image, base, target, random_state=0)
        split = base.copy()
        split[indices] = values
        indices, value = merge_labels(split, 1, 2)
        merged = split.copy()
        merged[indices] = value
        return np.stack([base, split, merged]), {}

    return {"frames_stack": frames, "split_and_merge": split_and_merge}


def _batch_cases():
    from napari_spectral_seg.data import four_circles

    def batch():
        import tifffile

        from napari_spectral_seg.cli import main

        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            np.save(tmp / "a.npy", four_circles(size=40, seed=1)[0].astype(np.float32))
            tifffile.imwrite(tmp / "b.tif", np.stack([four_circles(size=40, seed=s)[0] for s in (2, 3)]))
            code = main(
                [
                    "batch",
                    str(tmp / "*.npy"),
                    str(tmp / "*.tif"),
                    "--out",
                    str(tmp / "out"),
                    "--threshold",
                    "otsu",
                    "--min-size",
                    "20",
                    "--seed",
                    "3",
                    "--workers",
                    "1",
                    "--no-progress",
                ]
            )
            assert code == 0
            labels, parameters = [], []
            for name in ("a_labels.tif", "b_labels.tif"):
                with tifffile.TiffFile(tmp / "out" / name) as tif:
                    labels.append(tif.asarray().reshape(-1, 40, 40))
                    parameters.append(json.loads(tif.pages[0].description))
            return np.concatenate(labels), parameters

    def segment_command():
        from napari_spectral_seg.cli import main
        from napari_spectral_seg.io import stored_parameters

        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            np.save(tmp / "in.npy", four_circles(size=40, seed=4)[0])
            code = main(
                [
                    "segment",
                    str(tmp / "in.npy"),
                    "-o",
                    str(tmp / "out.npy"),
                    "--threshold",
                    "otsu",
                    "--min-size",
                    "20",
                    "--seed",
                    "3",
                ]
            )
            assert code == 0
            # The parameters the sidecar records (not what it says of the .npy it describes).
            return np.load(tmp / "out.npy"), stored_parameters(tmp / "out.npy")

    return {"batch_outputs": batch, "cli_segment": segment_command}


def all_cases():
    """Name -> callable returning (labels, recorded parameters)."""
    cases = {}
    for group in (_circles_cases, _volume_and_colour_cases, _auto_cases, _frames_and_edit_cases, _batch_cases):
        cases.update(group())
    return cases


def compute(name):
    labels, parameters = all_cases()[name]()
    return np.asarray(labels), _normalise(parameters)


def record():
    arrays, parameters = {}, {}
    for name in all_cases():
        labels, params = compute(name)
        arrays[name] = labels
        parameters[name] = params
        print(f"{name}: {labels.shape} max {labels.max()}", flush=True)
    np.savez_compressed(OUTPUTS, **arrays, __parameters__=np.array(json.dumps(parameters, sort_keys=True)))


if __name__ == "__main__":
    sys.exit(record())
