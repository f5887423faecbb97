"""Blockwise segmentation of a slide-like synthetic OME-Zarr: a gigapixel, nuclei in a tissue disc.

    .venv/bin/python bench/slide.py                       # 32768^2 (1.07 GP), tissue 0.5%, block 2048
    .venv/bin/python bench/slide.py --size 8192 --tissue-fraction 0.02   # a few minutes

The image is written blockwise to an OME-Zarr (ome-zarr-py ``write_image`` of a dask array whose
chunks are computed one at a time, never the whole image): a disc of tissue in the centre
covering ``--tissue-fraction`` of the area, filled with the 512^2 tiles of touching nuclei of
``bench/blockwise.py`` (the same generator), and empty glass (exactly 0, chunks zarr does not
even store) elsewhere. A dense gigapixel would take about a day on 2 cores (the 3072^2 field
runs at ~0.01 MP/s for 2 workers); a slide is mostly glass, which blockwise skips.

The threshold is fixed (``--threshold``, default 0.40: Otsu's value on the dense 3072^2 field
of the same generator): Otsu on an image that is 99% glass would split glass from tissue, not
nuclei from tissue. The other settings are the README's call (``n_clusters="auto"``, sigma and
min size "auto", seed 0), measured on a central sample of ``--sample-pixels`` (default one
block, inside the tissue). Reported: wall time, phases, throughput (per megapixel of the image
and per megapixel of tissue), objects, skipped blocks, peak resident memory of the client and
of every worker against the README's bound. Results: ``bench/results/slide-<size>.json``.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _bench_support import error_text, exit_missing, save_results
from blockwise import BLOCKWISE, PARAMS, PER_TILE, TILE, _run, blockwise_row

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CHUNK = 1024


@functools.lru_cache(maxsize=64)
def _tile(i: int, j: int) -> np.ndarray:
    """Tile ``(i, j)`` of touching nuclei (cached: a tile straddles up to four chunks)."""
    from napari_spectral_seg import touching_blobs

    image, _ = touching_blobs((TILE, TILE), PER_TILE, radius_range=(5.0, 9.0), seed=1000 + i * 1000 + j)
    return image.astype("f4")


def _in_disc(ys: np.ndarray, xs: np.ndarray, size: int, radius: float) -> np.ndarray:
    return (ys - size / 2.0) ** 2 + (xs - size / 2.0) ** 2 <= radius**2


def slide_chunk(block_info=None, *, size: int, radius: float) -> np.ndarray:
    """One chunk of the slide: the nuclei tiles inside the tissue disc, 0 outside."""
    (y0, y1), (x0, x1) = block_info[None]["array-location"]
    out = np.zeros((y1 - y0, x1 - x0), "f4")
    yy, xx = np.mgrid[y0:y1, x0:x1]
    inside = _in_disc(yy + 0.5, xx + 0.5, size, radius)
    if not inside.any():
        return out
    # Tiles start half a tile before the origin, as in bench/blockwise.py.
    for ty in range((y0 + TILE // 2) // TILE, (y1 - 1 + TILE // 2) // TILE + 1):
        for tx in range((x0 + TILE // 2) // TILE, (x1 - 1 + TILE // 2) // TILE + 1):
            sy, sx = ty * TILE - TILE // 2, tx * TILE - TILE // 2
            ys, xs = slice(max(sy, y0), min(sy + TILE, y1)), slice(max(sx, x0), min(sx + TILE, x1))
            part = _tile(ty, tx)[ys.start - sy : ys.stop - sy, xs.start - sx : xs.stop - sx]
            out[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0] = part
    out[~inside] = 0.0
    return out


def make_slide(path: Path, size: int, fraction: float) -> dict:
    """Write the slide as an OME-Zarr image (levels by ome-zarr-py); its tissue disc's radius and pixels."""
    import dask
    import dask.array as da
    import zarr
    from ome_zarr.writer import write_image

    radius = float(np.sqrt(fraction * size * size / np.pi))
    lazy = da.map_blocks(
        slide_chunk,
        dtype="f4",
        chunks=((CHUNK,) * (size // CHUNK),) * 2,
        size=size,
        radius=radius,
        meta=np.array((), "f4"),
    )
    group = zarr.open_group(str(path), mode="w")
    with dask.config.set(scheduler="threads", num_workers=2):
        write_image(lazy, group, axes="yx", storage_options=dict(chunks=(CHUNK, CHUNK)))
    tissue = int(round(np.pi * radius**2))
    group.attrs["slide"] = dict(size=size, tissue_fraction=fraction, radius=radius, tissue_pixels=tissue)
    return dict(radius=round(radius, 1), tissue_pixels=tissue)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32768, help="image side, a multiple of 1024")
    parser.add_argument("--tissue-fraction", type=float, default=0.005, help="area of the tissue disc")
    parser.add_argument("--block-size", type=int, default=2048)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threshold", type=float, default=0.40)
    parser.add_argument("--sample-pixels", type=int, default=None, help="default: one block")
    parser.add_argument("--workdir", default=None, help="keep the slide and the labels here")
    parser.add_argument("--reuse", action="store_true", help="reuse a slide of the same size and fraction")
    parser.add_argument("--out", default=None, help="results JSON (default: bench/results/slide-<size>.json)")
    args = parser.parse_args(argv)
    try:
        import dask  # noqa: F401
        import distributed  # noqa: F401
        import ome_zarr  # noqa: F401
        import zarr  # noqa: F401

        import napari_spectral_seg  # noqa: F401
    except ImportError as err:
        exit_missing(err, "bench/slide.py")
    out = Path(args.out) if args.out else RESULTS / f"slide-{args.size}.json"
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(args.workdir or temporary)
        work.mkdir(parents=True, exist_ok=True)
        try:
            row, failures = run_case(work, args), []
        except Exception as exc:
            row, failures = dict(size=args.size, error=error_text(exc)), [error_text(exc)]
    print(json.dumps(row, indent=1))
    payload = dict(command=" ".join(["bench/slide.py", *(argv if argv is not None else sys.argv[1:])]), **row)
    return save_results([out], payload, failures, indent=1)


def run_case(work: Path, args) -> dict:
    import shutil

    import zarr

    image = work / f"slide-{args.size}.ome.zarr"
    started = time.perf_counter()
    made = None
    if args.reuse and image.exists():
        made = dict(zarr.open_group(str(image), mode="r").attrs.get("slide", {}))
        made = made if made.get("tissue_fraction") == args.tissue_fraction else None
    made = made or make_slide(image, args.size, args.tissue_fraction)
    seconds_to_make = time.perf_counter() - started
    print(f"slide {args.size}^2, tissue {args.tissue_fraction:.2%}: {seconds_to_make:.0f} s", flush=True)
    output = work / "slide-labels.zarr"
    if output.exists():
        shutil.rmtree(output)
    # Bright nuclei on glass, as earlier blockwise code assumed: no whole-image polarity or
    # background passes, and glass blocks are found on a coarse level (blockwise/glass.py).
    params = dict(PARAMS, threshold=args.threshold, polarity="bright", background="flat")
    sample = args.sample_pixels or args.block_size**2
    blockwise = _run(BLOCKWISE, image, output, json.dumps(params), args.block_size, args.workers, json.dumps(sample))
    print(f"blockwise: {blockwise['seconds']:.1f} s", flush=True)
    row = blockwise_row(blockwise, args.size, args.block_size, args.workers)
    tissue_mp = made["tissue_pixels"] / 1e6
    return dict(
        size=args.size,
        gigapixels=round(args.size**2 / 1e9, 3),
        tissue_fraction=args.tissue_fraction,
        tissue_megapixels=round(tissue_mp, 2),
        threshold=args.threshold,
        seconds_to_make=round(seconds_to_make, 1),
        **row,
        tissue_megapixels_per_second=round(tissue_mp / blockwise["seconds"], 4),
    )


if __name__ == "__main__":
    sys.exit(main())
