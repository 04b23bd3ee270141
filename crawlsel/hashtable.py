"""Compact tables of 64-bit hashes: a million URLs in about 32 MB instead of 150 MB.

A run remembers one or two hashes per URL (the requests already admitted, and which
URL owns each file name).  Python's ``set`` and ``dict`` of ints spend about 100
bytes an entry; these open-addressing tables over ``array('q')`` spend 16 to 32.
A lookup probes in Python, about a microsecond, once or twice per URL.
"""

from __future__ import annotations

from array import array

_EMPTY = 0
_ZERO = -0x61C8864680B583EB  # stands for a hash of 0 (2**64 / golden ratio, as signed)
_MIN_SLOTS = 1024


def fingerprint(value: object) -> int:
    """Any hashable value as a nonzero signed 64-bit key (0 marks an empty slot)."""
    key = hash(value) & 0xFFFFFFFFFFFFFFFF
    if key >= 1 << 63:
        key -= 1 << 64
    return key or _ZERO


class HashMap64:
    """Maps hashes to hashes; ``setdefault`` is the only write a run needs."""

    __slots__ = ("_keys", "_values", "_mask", "_used")

    def __init__(self) -> None:
        self._keys = array("q", bytes(8 * _MIN_SLOTS))
        self._values = array("q", bytes(8 * _MIN_SLOTS))
        self._mask = _MIN_SLOTS - 1
        self._used = 0

    def __len__(self) -> int:
        return self._used

    def setdefault(self, key: object, value: object) -> int:
        """The fingerprint stored for ``key``, storing ``value``'s first if there is none."""
        k = fingerprint(key)
        keys, mask = self._keys, self._mask
        i = k & mask
        while True:
            slot = keys[i]
            if slot == k:
                return self._values[i]
            if slot == _EMPTY:
                break
            i = (i + 1) & mask
        v = fingerprint(value)
        keys[i] = k
        self._values[i] = v
        self._used += 1
        if self._used * 2 > mask:
            self._grow()
        return v

    def _grow(self) -> None:
        old_keys, old_values = self._keys, self._values
        size = (self._mask + 1) * 2
        self._keys = keys = array("q", bytes(8 * size))
        self._values = values = array("q", bytes(8 * size))
        self._mask = mask = size - 1
        for k, v in zip(old_keys, old_values, strict=True):
            if k != _EMPTY:
                i = k & mask
                while keys[i] != _EMPTY:
                    i = (i + 1) & mask
                keys[i] = k
                values[i] = v


class HashSet64:
    """A set of hashes: ``add`` says whether the value was new."""

    __slots__ = ("_map",)

    def __init__(self) -> None:
        self._map = HashMap64()

    def __len__(self) -> int:
        return len(self._map)

    def add(self, value: object) -> bool:
        before = len(self._map)
        self._map.setdefault(value, 1)
        return len(self._map) != before
