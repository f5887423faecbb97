import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from napari_spectral_seg.data import four_circles


def ari_against_truth(labels, truth):
    """Adjusted Rand index on the pixels that belong to exactly one true segment."""
    inside = truth > 0
    return adjusted_rand_score(truth[inside], labels[inside])


@pytest.fixture
def circles():
    """The seed example: (image, mask, truth), noise seed 0."""
    return four_circles(size=100, noise=0.2, seed=0)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


PLUGIN = "napari-spectral-seg"


@pytest.fixture
def viewer_and_widget(make_napari_viewer, qtbot):
    """A real viewer with the four-circles sample and the widget docked through the manifest."""
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "four_circles")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Spectral segmentation")
    yield viewer, widget
    if widget.running:  # never leave a thread behind a closed viewer
        widget.stop()
        qtbot.waitUntil(lambda: not widget.running, timeout=30_000)


@pytest.fixture
def dock(make_napari_viewer):
    """``dock(image, **layer_kwargs)``: a viewer with that image and the widget docked on it."""
    viewer = make_napari_viewer()

    def add(image, **kwargs):
        layer = viewer.add_image(image, **kwargs)
        _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Spectral segmentation")
        widget.image.value = layer
        return viewer, widget

    return add


def run_and_wait(widget, qtbot, timeout=120_000):
    """Click Run and wait for the segmentation to end."""
    widget.run.native.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=timeout)


def f1(truth, labels):
    """F1 at IoU 0.5 between a true and a predicted label image."""
    matched = 0
    for t in range(1, truth.max() + 1):
        inside = labels[truth == t]
        values, counts = np.unique(inside[inside > 0], return_counts=True)
        for v, c in zip(values, counts):
            union = (truth == t).sum() + (labels == v).sum() - c
            matched += c / union > 0.5
    return 2 * matched / (truth.max() + len(np.unique(labels[labels > 0])))


def dock_big_circles(make_napari_viewer, size=400):
    """A viewer with the ``size`` x ``size`` four circles ("big") and their mask, the widget docked on them."""
    from napari_spectral_seg.data import four_circles

    viewer = make_napari_viewer()
    image, mask, _ = four_circles(size=size, seed=0)
    viewer.add_image(image, name="big")
    viewer.add_labels(mask.astype(np.uint8), name="big mask")
    _, widget = viewer.window.add_plugin_dock_widget("napari-spectral-seg", "Spectral segmentation")
    widget.image.value = viewer.layers["big"]
    widget.mask.value = viewer.layers["big mask"]
    return viewer, widget


@pytest.fixture(scope="module")
def client():
    """One in-process dask worker of two threads, shared by a blockwise test module."""
    from distributed import Client

    with Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as dask_client:
        yield dask_client


def write_zarr(path, image, chunks=32):
    """``image`` as a zarr array at ``path`` in square chunks; the path."""
    import zarr

    array = zarr.create_array(str(path), shape=image.shape, chunks=(chunks,) * image.ndim, dtype=image.dtype)
    array[...] = image
    return path


def read_labels(output, name="spectral"):
    """The full-resolution labels a blockwise run wrote into ``output``."""
    import zarr

    return np.asarray(zarr.open_group(str(output), mode="r")[f"labels/{name}/s0"])


def same_objects(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal partitions up to the label numbers: each object of one is exactly one object of the other."""
    if ((a > 0) != (b > 0)).any():
        return False
    pairs = np.unique(np.stack([a[a > 0], b[b > 0]]), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


def wait_engine_working(widget, qtbot, timeout=60_000):
    """Wait until the engine has taken the widget's run (the status line shows a step only every half second)."""
    engine = widget._engine
    qtbot.waitUntil(
        lambda: widget.running and engine.state == "running" and engine.started_job_at is not None, timeout=timeout
    )


def interrupted_state(source, output, client, **options):
    """Start ``segment_blockwise`` and interrupt it before any block; the resume state's path and content."""
    import json

    from napari_spectral_seg.blockwise import segment_blockwise

    def stop_at_once(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        segment_blockwise(source, output, client=client, progress=stop_at_once, **options)
    state_path = output.with_name(f".{output.name}.partial") / "_blockwise" / "state.json"
    return state_path, json.loads(state_path.read_text())
