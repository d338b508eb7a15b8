"""Read TensorFlow checkpoints (``model.ckpt.index`` + ``model.ckpt.data-*``) without
TensorFlow.

A checkpoint written by ``tf.compat.v1.train.Saver`` (or ``tf.train.Checkpoint``) is a
*tensor bundle*:

* ``<prefix>.index`` is a LevelDB-style sorted table (an SSTable): data blocks of
  prefix-compressed ``key -> value`` entries, an index block pointing at them, and a 48-byte
  footer ending in the magic number ``0xdb4775248b80fb57``. Each block is followed by a
  compression byte (0: none, 1: snappy) and a masked CRC-32C. The entry with the empty key is
  a ``BundleHeaderProto`` (``num_shards``, endianness); every other key is a tensor name whose
  value is a ``BundleEntryProto``: ``dtype`` (field 1), ``shape`` (2), ``shard_id`` (3),
  ``offset`` (4), ``size`` (5), ``crc32c`` (6, masked), ``slices`` (7).
* ``<prefix>.data-<shard>-of-<num_shards>`` holds each tensor's raw little-endian bytes at
  ``offset``.

This module parses those few protobuf fields by hand (lstmviz's ``io`` layer never imports
TensorFlow), checks every offset and size against the files and the memory budget before it
reads, and verifies the CRC-32C of each block and tensor (with ``google-crc32c`` when it is
installed, else in Python for tensors up to :data:`PY_CRC_LIMIT` bytes).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .. import budget
from ..errors import ModelFileError

MAGIC = 0xDB4775248B80FB57
FOOTER_BYTES = 48
MAX_INDEX_BYTES = 256 * 2**20  # an index larger than this is not a checkpoint lstmviz reads
#: Tensors larger than this are not CRC-checked without google-crc32c (Python is slow).
PY_CRC_LIMIT = 4 * 2**20

#: TensorFlow DataType enum -> NumPy dtype (little-endian) for the types a model holds.
DTYPES: dict[int, str] = {
    1: "<f4",  # DT_FLOAT
    2: "<f8",  # DT_DOUBLE
    3: "<i4",  # DT_INT32
    4: "u1",  # DT_UINT8
    5: "<i2",  # DT_INT16
    6: "i1",  # DT_INT8
    9: "<i8",  # DT_INT64
    10: "?",  # DT_BOOL
    14: "<u2",  # DT_BFLOAT16 (widened to float32 on read)
    17: "<u2",  # DT_UINT16
    19: "<f2",  # DT_HALF
    22: "<u4",  # DT_UINT32
    23: "<u8",  # DT_UINT64
}
DT_STRING = 7


@dataclass(frozen=True)
class Entry:
    """One tensor of the bundle: where its bytes are and what they are."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None
    sliced: bool


# ------------------------------------------------------------------------------ CRC-32C
def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE: list[int] | None = None


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``."""
    try:
        import google_crc32c

        return int(google_crc32c.value(bytes(data)))
    except ImportError:
        pass
    global _TABLE
    if _TABLE is None:
        _TABLE = _crc_table()
    t = _TABLE
    c = 0xFFFFFFFF
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _fast_crc() -> bool:
    try:
        import google_crc32c  # noqa: F401

        return True
    except ImportError:
        return False


def unmask(masked: int) -> int:
    """LevelDB's masked CRC back to the CRC."""
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# ------------------------------------------------------------------------------ varints
def _varint(buf: bytes, pos: int, where: str) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ModelFileError(f"{where}: truncated or malformed varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes, where: str) -> list[tuple[int, int, int | bytes]]:
    """A protobuf message's ``(field number, wire type, value)`` in order."""
    out: list[tuple[int, int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos, where)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, pos = _varint(buf, pos, where)
            out.append((field, wire, v))
        elif wire == 1:
            if pos + 8 > len(buf):
                raise ModelFileError(f"{where}: truncated fixed64 field {field}")
            out.append((field, wire, struct.unpack_from("<Q", buf, pos)[0]))
            pos += 8
        elif wire == 2:
            n, pos = _varint(buf, pos, where)
            if pos + n > len(buf):
                raise ModelFileError(f"{where}: field {field} runs past the end of its message")
            out.append((field, wire, buf[pos : pos + n]))
            pos += n
        elif wire == 5:
            if pos + 4 > len(buf):
                raise ModelFileError(f"{where}: truncated fixed32 field {field}")
            out.append((field, wire, struct.unpack_from("<I", buf, pos)[0]))
            pos += 4
        else:
            raise ModelFileError(f"{where}: unsupported protobuf wire type {wire}")
    return out


# ------------------------------------------------------------------------------ snappy
def _unsnappy(buf: bytes, where: str) -> bytes:
    """Snappy's raw format (what LevelDB tables use for compressed blocks)."""
    n, pos = _varint(buf, 0, where)
    if n > MAX_INDEX_BYTES:
        raise ModelFileError(f"{where}: a compressed block claims {n} bytes")
    out = bytearray()
    while pos < len(buf):
        tag = buf[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            length = (tag >> 2) + 1
            if length > 60:
                extra = length - 60
                length = int.from_bytes(buf[pos : pos + extra], "little") + 1
                pos += extra
            if pos + length > len(buf):
                raise ModelFileError(f"{where}: truncated snappy literal")
            out += buf[pos : pos + length]
            pos += length
            continue
        if kind == 1:
            length = ((tag >> 2) & 7) + 4
            if pos >= len(buf):
                raise ModelFileError(f"{where}: truncated snappy copy")
            offset = ((tag >> 5) << 8) | buf[pos]
            pos += 1
        else:
            length = (tag >> 2) + 1
            k = 2 if kind == 2 else 4
            if pos + k > len(buf):
                raise ModelFileError(f"{where}: truncated snappy copy")
            offset = int.from_bytes(buf[pos : pos + k], "little")
            pos += k
        if offset == 0 or offset > len(out) or len(out) + length > n:
            raise ModelFileError(f"{where}: malformed snappy copy")
        for _ in range(length):  # copies may overlap their own output
            out.append(out[-offset])
    if len(out) != n:
        raise ModelFileError(f"{where}: snappy block is {len(out)} bytes, not {n}")
    return bytes(out)


# ------------------------------------------------------------------------------ the table
def _block(data: bytes, offset: int, size: int, where: str) -> bytes:
    """A block's contents (trailer checked and removed, decompressed)."""
    if offset < 0 or size < 0 or offset + size + 5 > len(data):
        raise ModelFileError(
            f"{where}: a block at offset {offset} of {size} bytes runs past the end of the "
            f"{len(data)}-byte index"
        )
    raw = data[offset : offset + size]
    kind = data[offset + size]
    masked = struct.unpack_from("<I", data, offset + size + 1)[0]
    if crc32c(raw + bytes([kind])) != unmask(masked):
        raise ModelFileError(f"{where}: checksum mismatch in the block at offset {offset}")
    if kind == 0:
        return raw
    if kind == 1:
        return _unsnappy(raw, where)
    raise ModelFileError(f"{where}: unknown block compression {kind}")


def _entries(block: bytes, where: str) -> list[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise ModelFileError(f"{where}: a block is shorter than its restart count")
    n_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * n_restarts
    if end < 0:
        raise ModelFileError(f"{where}: a block's restart array is larger than the block")
    out = []
    pos = 0
    key = b""
    while pos < end:
        shared, pos = _varint(block, pos, where)
        non_shared, pos = _varint(block, pos, where)
        vlen, pos = _varint(block, pos, where)
        if shared > len(key) or pos + non_shared + vlen > end:
            raise ModelFileError(f"{where}: malformed table entry")
        key = key[:shared] + block[pos : pos + non_shared]
        pos += non_shared
        out.append((key, block[pos : pos + vlen]))
        pos += vlen
    return out


def _handle(buf: bytes, pos: int, where: str) -> tuple[int, int, int]:
    off, pos = _varint(buf, pos, where)
    size, pos = _varint(buf, pos, where)
    return off, size, pos


def _parse_entry(name: str, value: bytes, where: str) -> Entry:
    dtype = shard = offset = size = 0
    crc: int | None = None
    shape: list[int] = []
    sliced = False
    for field, wire, v in _fields(value, f"{where}: entry {name!r}"):
        if field == 1 and wire == 0:
            dtype = int(v)
        elif field == 2 and isinstance(v, bytes):
            for f2, w2, dim in _fields(v, f"{where}: shape of {name!r}"):
                if f2 == 2 and isinstance(dim, bytes):
                    size_ = 0
                    for f3, w3, d in _fields(dim, f"{where}: shape of {name!r}"):
                        if f3 == 1 and w3 == 0:
                            size_ = int(d)
                            if size_ >= 2**63:
                                size_ -= 2**64  # int64: -1 is an unknown dimension
                    shape.append(size_)
                elif f2 == 3 and w2 == 0 and v:
                    raise ModelFileError(f"{where}: tensor {name!r} has an unknown rank")
        elif field == 3 and wire == 0:
            shard = int(v)
        elif field == 4 and wire == 0:
            offset = int(v)
        elif field == 5 and wire == 0:
            size = int(v)
        elif field == 6 and wire == 5:
            crc = int(v)
        elif field == 7:
            sliced = True
    if any(d < 0 for d in shape):
        raise ModelFileError(f"{where}: tensor {name!r} has shape {shape} with a negative size")
    return Entry(name, dtype, tuple(shape), shard, offset, size, crc, sliced)


def read_index(prefix: str | os.PathLike[str]) -> tuple[list[Entry], int]:
    """Every entry of ``<prefix>.index`` and the bundle's number of shards."""
    index = Path(str(prefix) + ".index")
    where = str(index)
    try:
        size = index.stat().st_size
    except OSError as e:
        raise ModelFileError(f"{where}: cannot read ({e.strerror})") from None
    if size < FOOTER_BYTES:
        raise ModelFileError(f"{where}: not a TensorFlow checkpoint index (only {size} bytes)")
    if size > MAX_INDEX_BYTES:
        raise ModelFileError(f"{where}: a {size}-byte index is not a checkpoint lstmviz reads")
    data = index.read_bytes()
    footer = data[-FOOTER_BYTES:]
    if struct.unpack_from("<Q", footer, 40)[0] != MAGIC:
        raise ModelFileError(
            f"{where}: not a TensorFlow checkpoint index (no table magic number at its end)"
        )
    _meta_off, _meta_size, pos = _handle(footer, 0, where)
    idx_off, idx_size, _ = _handle(footer, pos, where)
    entries: list[Entry] = []
    num_shards = 1
    for _last_key, handle in _entries(_block(data, idx_off, idx_size, where), where):
        off, bsize, _ = _handle(handle, 0, where)
        for key, value in _entries(_block(data, off, bsize, where), where):
            name = key.decode("utf-8", "replace")
            if not key:  # the BundleHeaderProto
                for field, wire, v in _fields(value, f"{where}: header"):
                    if field == 1 and wire == 0:
                        num_shards = int(v)
                    elif field == 2 and wire == 0 and v != 0:
                        raise ModelFileError(
                            f"{where}: the checkpoint is big-endian; lstmviz reads little-endian"
                        )
                continue
            entries.append(_parse_entry(name, value, where))
    if not 1 <= num_shards <= 100_000:
        raise ModelFileError(f"{where}: header says {num_shards} shards")
    return entries, num_shards


def read_checkpoint_raw(prefix: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every numeric tensor of a TensorFlow checkpoint as a NumPy array (bfloat16 widened to
    float32); string tensors are skipped. No TensorFlow needed.

    Raises
    ------
    ModelFileError
        A missing data shard, an offset or size that does not fit the files or the shape, a
        checksum mismatch, a partitioned (sliced) variable.
    MemoryBudgetError
        A tensor over the memory budget.
    """
    p = Path(prefix)
    entries, num_shards = read_index(p)
    shards: dict[int, Path] = {}
    out: dict[str, np.ndarray] = {}
    fast = _fast_crc()
    handles: dict[int, BinaryIO] = {}
    try:
        for e in entries:
            where = f"{p}: tensor {e.name!r}"
            if e.sliced:
                raise ModelFileError(
                    f"{where} is a partitioned variable (saved in slices); lstmviz reads "
                    "whole tensors only"
                )
            if e.dtype == DT_STRING or e.dtype not in DTYPES:
                continue
            dt = np.dtype(DTYPES[e.dtype])
            count = 1
            for d in e.shape:
                count *= d
            if e.size != count * dt.itemsize:
                raise ModelFileError(
                    f"{where}: shape {list(e.shape)} of {dt} needs {count * dt.itemsize} "
                    f"bytes; the index says {e.size}"
                )
            budget.check(e.size * (2 if e.dtype == 14 else 1), what=where)
            if not 0 <= e.shard_id < num_shards:
                raise ModelFileError(f"{where}: shard {e.shard_id} of {num_shards}")
            if e.shard_id not in shards:
                path = p.with_name(f"{p.name}.data-{e.shard_id:05d}-of-{num_shards:05d}")
                if not path.is_file():
                    raise ModelFileError(f"{p}: the checkpoint's data file {path.name} is missing")
                shards[e.shard_id] = path
                handles[e.shard_id] = open(path, "rb")  # noqa: SIM115 - closed below
            path = shards[e.shard_id]
            fsize = path.stat().st_size
            if e.offset < 0 or e.offset + e.size > fsize:
                raise ModelFileError(
                    f"{where}: bytes {e.offset}..{e.offset + e.size} are past the end of "
                    f"{path.name} ({fsize} bytes)"
                )
            fh = handles[e.shard_id]
            fh.seek(e.offset)
            raw = fh.read(e.size)
            checked = e.crc32c is not None and (fast or e.size <= PY_CRC_LIMIT)
            if checked and crc32c(raw) != unmask(e.crc32c or 0):
                raise ModelFileError(f"{where}: checksum mismatch (the data file is damaged)")
            a = np.frombuffer(raw, dtype=dt).reshape(e.shape)
            if e.dtype == 14:
                a = (a.astype(np.uint32) << 16).view(np.float32)
            out[e.name] = np.array(a, copy=True)
    finally:
        for fh in handles.values():
            fh.close()
    return out
