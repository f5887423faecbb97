"""SegmentationParams: the one declaration of the segmentation parameters."""

import inspect
import pickle

import numpy as np
import pytest

from napari_spectral_seg import segment
from napari_spectral_seg.core.params import SegmentationParams
from napari_spectral_seg.core.pipeline import iter_segment
from napari_spectral_seg.core.progress import run_to_end
from napari_spectral_seg.data import four_circles


def test_segment_signature_is_the_dataclass_fields_with_their_defaults():
    signature = inspect.signature(segment).parameters
    keywords = [name for name, p in signature.items() if p.kind is p.KEYWORD_ONLY and name != "progress"]
    assert keywords == list(SegmentationParams.names())
    for spec in SegmentationParams.specs():
        assert signature[spec.name].default == spec.default, spec.name


def test_segment_docstring_documents_every_parameter():
    doc = inspect.cleandoc(segment.__doc__)  # Python 3.13 strips the indentation itself
    for name in SegmentationParams.names():
        assert f"\n{name} :" in doc, name


def test_every_parameter_has_help_and_a_check():
    for spec in SegmentationParams.specs():
        assert spec.help and callable(spec.check) and callable(spec.applies), spec.name


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(n_clusters="many"), "n_clusters='many' is not understood"),
        (dict(n_clusters=0), "n_clusters=0 must be at least 1"),
        (dict(beta=-1), "beta=-1 must be a positive finite number"),
        (dict(eigen_solver="magic"), "eigen_solver='magic' is unknown"),
        (dict(assign_labels="nearest"), "assign_labels='nearest' is unknown"),
        (dict(threshold="mean"), "threshold='mean' is not understood"),
        (dict(min_size=-3), "min_size=-3 must be a whole number"),
        (dict(sensitivity=0.5), "only applies with n_clusters='auto'"),
        (dict(n_clusters="auto", sensitivity=2.0), "sensitivity=2.0 must be a number in"),
        (dict(edge_level=1.5), "edge_level=1.5 must be a number in"),
        (dict(random_state=-1), "random_state=-1 must be a non-negative"),
    ],
)
def test_a_bad_value_is_refused_with_a_message_naming_it(changes, message):
    with pytest.raises((ValueError, TypeError), match=message.replace("(", r"\(")):
        SegmentationParams(**changes)


def test_a_params_object_and_keyword_arguments_give_the_same_run():
    image, mask, _ = four_circles(size=40)
    params = SegmentationParams(n_clusters=4, random_state=0)
    by_object = run_to_end(iter_segment(image, mask, params))
    by_keywords = run_to_end(iter_segment(image, mask, n_clusters=4, random_state=0))
    assert np.array_equal(by_object.labels, by_keywords.labels)
    assert by_object.parameters == by_keywords.parameters


def test_params_pickle_and_compare_by_value():
    params = SegmentationParams(n_clusters="auto", spacing=[2, 1], seeds=np.array([[1.0, 2.0]]))
    copy = pickle.loads(pickle.dumps(params))
    assert copy == params and copy.spacing == (2.0, 1.0)
    assert params.replace(spacing=(1.0, 1.0)) != params


def test_recorded_parameters_say_what_was_used():
    recorded = SegmentationParams(n_clusters="auto", threshold=None).record(random_state=3)
    assert recorded["sensitivity"] == 0.85 and recorded["edge_level"] is None  # no threshold: edges stay
    assert SegmentationParams(n_clusters="auto", threshold="otsu").record(random_state=3)["edge_level"] == 0.4
    assert set(recorded) == set(SegmentationParams.names()) - {"time_limit"}  # it decides whether a run starts


def test_unknown_parameter_file_keys_name_the_parameter_meant():
    with pytest.raises(ValueError, match="did you mean 'random_state'"):
        SegmentationParams.from_mapping({"seed": 1})
    with pytest.raises(ValueError, match="did you mean 'n_clusters'"):
        SegmentationParams.from_mapping({"n_cluster": 1})
    assert SegmentationParams.from_mapping({"image": "x", "beta": 2.0}, ignore={"image"}).beta == 2.0


def test_one_set_of_defaults_chooses_from_the_image():
    defaults = SegmentationParams()
    assert (defaults.threshold, defaults.min_size, defaults.sigma, defaults.random_state) == ("auto", "auto", "auto", 0)
    assert not hasattr(SegmentationParams, "tool_defaults")


def test_text_where_a_value_or_numbers_belong_says_how_to_write_them():
    # issue 17 rerun: a parameter file's "none" was refused without naming null, and "1,1" as
    # spacing was taken as three characters ("must be 3 positive numbers").
    from napari_spectral_seg.core.params import check_spacing

    with pytest.raises(ValueError, match=r"or no threshold: None \(null in a parameter file, none on the command"):
        SegmentationParams(threshold="none")
    with pytest.raises(
        ValueError,
        match=r"spacing='1,1' is text, but must be 2 positive numbers.*\[1.0, 1.0\] in a parameter file, --spacing 1,1 on",
    ):
        check_spacing("1,1", 2)
