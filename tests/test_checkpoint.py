"""The restricted checkpoint reader: real tensors in, nothing else executed."""

import pickle

import numpy as np
import pytest

from classifier.checkpoint import CheckpointError, load_state_dict
from classifier.models.builtin import lite0_weights_path


def test_reads_the_shipped_lite0_checkpoint():
    state = load_state_dict(lite0_weights_path())
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert state["_fc.weight"].dtype == np.float32
    assert np.isfinite(state["_fc.weight"]).all()
    # Trained batch-norm statistics are not the initial zeros and ones.
    assert not np.allclose(state["_bn0.running_var"], 1.0)


def _legacy_file(path, main_object) -> None:
    with open(path, "wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(header, f, protocol=2)
        pickle.dump(main_object, f, protocol=2)
        pickle.dump([], f, protocol=2)


class _RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_refuses_a_checkpoint_that_would_run_code(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "evil.pth"
    _legacy_file(path, {"weight": _RunsACommand(marker)})
    with pytest.raises(CheckpointError, match=r"Refusing to load (_?io|builtins)\.open"):
        load_state_dict(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content",
    [b"", b"not a pickle at all", pickle.dumps(12345, protocol=2)],
    ids=["empty", "garbage", "wrong-magic"],
)
def test_rejects_files_that_are_not_legacy_checkpoints(tmp_path, content):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError):
        load_state_dict(path)


def test_rejects_a_truncated_checkpoint(tmp_path):
    path = tmp_path / "cut.pth"
    path.write_bytes(lite0_weights_path().read_bytes()[:1_000_000])
    with pytest.raises(CheckpointError, match=r"truncated|not a readable"):
        load_state_dict(path)


def test_refuses_a_tensor_that_reaches_outside_its_storage():
    from classifier.checkpoint import _LazyTensor, _Storage

    storage = _Storage(np.float32, 4, np.arange(4, dtype=np.float32))
    assert _LazyTensor(storage, 0, (2, 2), (2, 1)).materialize().tolist() == [[0, 1], [2, 3]]
    for offset, shape, stride in [(3, (2,), (1,)), (0, (3, 2), (2, 1)), (-1, (1,), (1,))]:
        with pytest.raises(CheckpointError, match="outside its storage"):
            _LazyTensor(storage, offset, shape, stride).materialize()
