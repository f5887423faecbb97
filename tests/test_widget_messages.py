"""The widget's rewording of library messages follows the library's own words."""

import ast
import pathlib

import pytest

import napari_spectral_seg
from napari_spectral_seg._widget.messages import _PHRASES, for_widget


def _library_strings() -> list[str]:
    """Every string literal of the library (f-strings by their literal parts), messages.py left out."""
    texts = []
    for path in pathlib.Path(napari_spectral_seg.__file__).parent.rglob("*.py"):
        if path.name == "messages.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.JoinedStr):
                texts.extend(part.value for part in node.values if isinstance(part, ast.Constant))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                texts.append(node.value)
    return texts


@pytest.mark.parametrize(("phrase", "words"), _PHRASES, ids=[phrase[:30] for phrase, _ in _PHRASES])
def test_every_phrase_the_widget_rewords_is_still_in_a_library_message(phrase, words):
    # A library message reworded without this table would reach the widget in keyword terms.
    assert any(phrase in text for text in _library_strings()), f"no library message says {phrase!r} any more"
    assert phrase not in for_widget(phrase) or phrase in words


def test_a_blockwise_run_that_lost_its_workers_is_told_in_the_widgets_words():
    from napari_spectral_seg.batch.cluster import WorkerWatch

    class NoWorkers:
        def nthreads(self):
            return {}

    watch = WorkerWatch(NoWorkers(), 0.0, local=True)
    stalled = watch.stalled()
    # As the blockwise run stops on it (blockwise/cancel.py), then as the widget shows it.
    text = for_widget(f"{stalled}; the finished blocks are kept.")
    assert "--workers" not in text and "same command" not in text, text
    assert "'workers'" in text and "Run blockwise again" in text, text
    assert text.startswith("the dask cluster has had no worker"), text
