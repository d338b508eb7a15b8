"""The global-heap check finds a collection header wherever it sits in the file, including
across the boundary of two of its reads (it reads 1 MiB at a time into one buffer)."""

from __future__ import annotations

import io

import pytest

from lstmviz.errors import ModelFileError
from lstmviz.io.checks import check_global_heaps

MIB = 1 << 20


@pytest.mark.parametrize("pos", [0, MIB - 3, MIB - 2, MIB - 1, MIB, 2 * MIB - 2, 3 * MIB - 16])
def test_a_damaged_collection_is_found_anywhere(pos):
    data = bytearray(3 * MIB)
    # a version-1 collection declaring a billion bytes: more than the file holds
    data[pos : pos + 16] = b"GCOL" + bytes([1, 0, 0, 0]) + (10**9).to_bytes(8, "little")
    with pytest.raises(ModelFileError, match=f"global heap at byte {pos} declares"):
        check_global_heaps(io.BytesIO(bytes(data)), len(data), "m.h5")


def test_bytes_that_spell_gcol_are_not_a_collection():
    data = bytearray(2 * MIB)
    data[MIB - 2 : MIB + 2] = b"GCOL"  # no version-1 header after it: ordinary data
    check_global_heaps(io.BytesIO(bytes(data)), len(data), "m.h5")
