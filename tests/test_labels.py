"""The shipped ImageNet class names."""

import pytest

from classifier import labels


def test_there_are_1000_labels_in_model_order():
    names = labels.labels()
    assert len(names) == 1000
    assert names[0] == "tench"
    assert names[281] == "tabby"
    assert names[967] == "espresso"
    assert names[999] == "toilet tissue"
    assert labels.full_names()[0] == "tench, Tinca tinca"


@pytest.mark.parametrize("index", [-1, 1000])
def test_label_of_rejects_out_of_range_indices(index):
    with pytest.raises(ValueError, match="Expected a class index"):
        labels.label_of(index)
