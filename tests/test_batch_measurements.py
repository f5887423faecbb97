"""``batch`` writes one measurement table per input next to its labels, and re-runs know it."""

import numpy as np
import pytest
import tifffile
from test_batch import FLAGS, PARAMS, local_cluster

from napari_spectral_seg import segment
from napari_spectral_seg.batch import BatchError
from napari_spectral_seg.batch.plan import check_outputs_differ
from napari_spectral_seg.cli import main
from napari_spectral_seg.core.measure import measure_labels
from napari_spectral_seg.data import four_circles
from napari_spectral_seg.io import stored_parameters, stored_table_record
from napari_spectral_seg.tables import read_table

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def scheduler():
    with local_cluster(2) as cluster:
        yield cluster.scheduler_address


def test_each_input_gets_its_table_and_a_series_a_frame_column(tmp_path, scheduler):
    image = four_circles(size=40, seed=0)[0].astype(np.float32)
    tifffile.imwrite(tmp_path / "cells.tif", image)
    movie = np.stack([four_circles(size=40, seed=s)[0] for s in (1, 2)]).astype(np.float32)
    np.save(tmp_path / "movie.npy", movie)
    out = tmp_path / "out"
    argv = ["batch", str(tmp_path / "cells.tif"), str(tmp_path / "movie.npy"), "--out", str(out)]
    assert main([*argv, "--scheduler", scheduler, *FLAGS, "--spacing", "2,0.5"]) == 0
    table = read_table(out / "cells_labels.csv")
    labels = tifffile.imread(out / "cells_labels.tif")
    expected = measure_labels(labels, image, spacing=(2.0, 0.5))
    assert list(table) == list(expected) and table["label"].tolist() == [1, 2, 3, 4]
    for name in expected:
        np.testing.assert_allclose(table[name], expected[name])
    assert stored_table_record(out / "cells_labels.tif")["file"] == "cells_labels.csv"
    assert "measurements" not in stored_parameters(out / "cells_labels.tif")  # the parameters stay segment()'s
    series = read_table(out / "movie_labels.csv")
    assert series["frame"].tolist() == [0] * 4 + [1] * 4
    frame_1 = segment(movie[1], **PARAMS, spacing=(2.0, 0.5))
    np.testing.assert_allclose(
        series["integrated_intensity"][4:], measure_labels(frame_1, movie[1])["integrated_intensity"]
    )


def test_a_rerun_redoes_an_input_whose_table_is_missing_or_changed(tmp_path, scheduler, capsys):
    for seed in (0, 1):
        tifffile.imwrite(tmp_path / f"img{seed}.tif", four_circles(size=40, seed=seed)[0].astype(np.float32))
    out = tmp_path / "out"
    argv = ["batch", str(tmp_path / "img*.tif"), "--out", str(out), "--scheduler", scheduler, *FLAGS]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 0
    assert "0 written, 2 skipped" in capsys.readouterr().out
    (out / "img0_labels.csv").unlink()
    with open(out / "img1_labels.csv", "a") as fh:
        fh.write("99,1.0\n")
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "2 written, 0 skipped" in captured.out
    assert "img0_labels.csv, its measurement table, is missing or was changed; redoing it" in captured.err
    assert read_table(out / "img1_labels.csv")["label"].tolist() == [1, 2, 3, 4]
    assert (out / "img0_labels.csv").exists()


def test_inputs_whose_tables_would_clash_are_refused(tmp_path):
    with pytest.raises(BatchError, match="would all be written to .*a_labels.csv"):
        check_outputs_differ([tmp_path / "a.tif", tmp_path / "a.zarr"], tmp_path / "out")
