"""Where the labels step does its work: the k-means fit may wait in a helper thread, the assignment of every node not."""

import threading

import numpy as np

from napari_spectral_seg.core import labels
from napari_spectral_seg.core.graph import edge_weights_graph, index_pixels
from napari_spectral_seg.core.progress import drain
from napari_spectral_seg.data import four_circles


def _embedding_and_graph():
    image, mask, _ = four_circles(100, noise=0.2, seed=0)
    index = index_pixels(mask)
    graph = edge_weights_graph(image, index.node_of_pixel, index.n_nodes)
    rng = np.random.default_rng(0)
    # Four well separated clusters along the raster order, plus noise.
    centres = np.eye(4)[np.arange(index.n_nodes) * 4 // index.n_nodes]
    return centres + 0.05 * rng.standard_normal((index.n_nodes, 4)), graph


def test_a_long_fit_waits_in_a_thread_but_every_node_is_assigned_in_the_callers(monkeypatch):
    # A k-means estimated to take seconds is fitted in a helper thread; the
    # assignment of every node allocates blocks as large as the image, which
    # in a helper thread's malloc arena are fresh mmaps each time.
    monkeypatch.setattr(labels, "kmeans_seconds", lambda rows, n_clusters, **_: 5.0)
    threads = []
    nearest = labels._nearest_two_centres

    def recording(points, centres):
        threads.append(threading.current_thread())
        return nearest(points, centres)

    monkeypatch.setattr(labels, "_nearest_two_centres", recording)
    embedding, graph = _embedding_and_graph()
    steps = labels.iter_cluster_embedding(embedding, 4, random_state=0, graph=graph)
    parts = []
    while True:
        try:
            parts.append(next(steps))
        except StopIteration as stop:
            clusters = stop.value
            break
    assert threads == [threading.main_thread()]
    assert parts == sorted(parts) and all(0.0 <= part <= 1.0 for part in parts)
    assert len(np.unique(clusters)) == 4


def test_the_refinement_generator_gives_the_plain_function_s_clusters():
    embedding, graph = _embedding_and_graph()
    centres = np.array([embedding[np.arange(len(embedding)) * 4 // len(embedding) == c].mean(0) for c in range(4)])
    expected = labels.refine_boundaries(graph, embedding, centres)
    np.testing.assert_array_equal(drain(labels.iter_refine_boundaries(graph, embedding, centres)), expected)
