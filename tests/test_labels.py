"""The shipped ImageNet class names."""

import pytest

from classifier import labels


def test_there_are_1000_labels_in_model_order():
    names = labels.labels()
    assert len(names) == 1000
    assert names[0] == "tench"
    assert names[281] == "tabby cat"
    assert names[967] == "espresso"
    assert names[999] == "toilet paper"
    assert labels.full_names()[0] == "tench, Tinca tinca"


@pytest.mark.parametrize("index", [-1, 1000])
def test_label_of_rejects_out_of_range_indices(index):
    with pytest.raises(ValueError, match="Expected a class index"):
        labels.label_of(index)


def test_names_are_unique_and_unambiguous():
    names = labels.labels()
    assert len(set(names)) == 1000
    assert (names[21], names[134], names[517]) == (
        "kite (bird of prey)",
        "crane bird",
        "construction crane",
    )
    assert (names[638], names[639]) == ("leotard", "one-piece bathing suit")
