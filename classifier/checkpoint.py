"""Read a legacy (pre-zip) PyTorch checkpoint of plain tensors, without torch.

A checkpoint is a pickle, and a general pickle load runs arbitrary code. This
reader accepts only what a state dict of tensors needs (OrderedDict, tensor
rebuilds and typed storages) and refuses every other global, so a tampered file
fails with CheckpointError instead of executing anything.

Legacy layout: pickles of the magic number, the protocol version and system info;
the main pickle (storages referenced by persistent id); a pickle listing the
storage keys; then for each storage an int64 element count and its raw bytes.
"""

from __future__ import annotations

import collections
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_PROTOCOL_VERSION = 1001

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class CheckpointError(ValueError):
    """A weights file that is not a legacy checkpoint of plain tensors."""


@dataclass
class _Storage:
    dtype: type
    numel: int
    data: np.ndarray | None = None


@dataclass
class _LazyTensor:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def materialize(self) -> np.ndarray:
        """Copy the tensor out of its storage, refusing views that reach outside it."""
        if self.storage.data is None:
            raise CheckpointError("A tensor refers to a storage the checkpoint does not hold.")
        last = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride, strict=True))
        if (
            self.offset < 0
            or min(self.stride, default=0) < 0
            or (all(self.shape) and last >= self.storage.numel)
        ):
            raise CheckpointError("A tensor reaches outside its storage.")
        base = self.storage.data[self.offset :]
        itemsize = base.dtype.itemsize
        strides = tuple(s * itemsize for s in self.stride)
        return np.lib.stride_tricks.as_strided(base, self.shape, strides).copy()


def _rebuild_tensor(storage, storage_offset, size, stride, *_unused) -> _LazyTensor:
    return _LazyTensor(storage, storage_offset, tuple(size), tuple(stride))


@dataclass
class _StorageType:
    dtype: type


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, storages: dict[str, _Storage]):
        super().__init__(file)
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise CheckpointError(f"Refusing to load {module}.{name} from a checkpoint.")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise CheckpointError(f"Unexpected persistent id in checkpoint: {pid!r}")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError("Unexpected storage type in checkpoint.")
        return self._storages.setdefault(key, _Storage(storage_type.dtype, int(numel)))


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Load a legacy PyTorch state dict as numpy arrays, refusing anything but tensors."""
    storages: dict[str, _Storage] = {}
    try:
        with open(path, "rb") as f:
            if _RestrictedUnpickler(f, storages).load() != _MAGIC_NUMBER:
                raise CheckpointError(f"{path} is not a legacy PyTorch checkpoint.")
            if _RestrictedUnpickler(f, storages).load() != _PROTOCOL_VERSION:
                raise CheckpointError(f"{path} uses an unsupported checkpoint protocol.")
            _RestrictedUnpickler(f, storages).load()  # system info, unused
            state = _RestrictedUnpickler(f, storages).load()
            keys = _RestrictedUnpickler(f, storages).load()
            for key in keys:
                storage = storages[key]
                header = f.read(8)
                if len(header) != 8:
                    raise CheckpointError(f"{path} is truncated.")
                count = int.from_bytes(header, "little", signed=True)
                itemsize = np.dtype(storage.dtype).itemsize
                raw = f.read(count * itemsize) if 0 <= count == storage.numel else b""
                if count != storage.numel or len(raw) != count * itemsize:
                    raise CheckpointError(f"{path} is truncated.")
                storage.data = np.frombuffer(raw, dtype=storage.dtype)
    except (pickle.UnpicklingError, EOFError, KeyError, IndexError, TypeError) as exc:
        raise CheckpointError(f"{path} is not a readable checkpoint: {exc}") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a state dict.")
    return {name: tensor.materialize() for name, tensor in state.items()}
