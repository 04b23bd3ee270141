"""Compact tables of 64-bit fingerprints: a million URLs in about 40 MB, not 250 MB.

A run remembers one or two values per URL (the requests already admitted, and which
URL owns each file name).  Python's ``set`` and ``dict`` of ints spend about 100
bytes an entry; these open-addressing tables over ``array('q')`` spend 8 to 16
bytes a slot, filled up to 70% (linear probing stays short below that).  A lookup
probes in Python, about 2 microseconds, once or twice per URL.
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


class HashSet64:
    """A set of fingerprints: ``add`` says whether the value was new."""

    __slots__ = ("_keys", "_mask", "_used")

    def __init__(self) -> None:
        self._keys = array("q", bytes(8 * _MIN_SLOTS))
        self._mask = _MIN_SLOTS - 1
        self._used = 0

    def __len__(self) -> int:
        return self._used

    def _find(self, k: int) -> int:
        """The slot holding ``k``, or the empty slot where it would go."""
        keys, mask = self._keys, self._mask
        i = k & mask
        while True:
            slot = keys[i]
            if slot == k or slot == _EMPTY:
                return i
            i = (i + 1) & mask

    def __contains__(self, value: object) -> bool:
        k = fingerprint(value)
        return self._keys[self._find(k)] == k

    def add(self, value: object) -> bool:
        k = fingerprint(value)
        i = self._find(k)
        if self._keys[i] == k:
            return False
        self._store(i, k)
        return True

    def _store(self, i: int, k: int) -> None:
        self._keys[i] = k
        self._used += 1
        if self._used * 10 > (self._mask + 1) * 7:
            self._grow()

    def _grow(self) -> None:
        old = self._keys
        self._allocate((self._mask + 1) * 2)
        keys, mask = self._keys, self._mask
        for k in old:  # iterate the arrays: no list of a million tuples on the way
            if k != _EMPTY:
                i = k & mask
                while keys[i] != _EMPTY:
                    i = (i + 1) & mask
                keys[i] = k

    def _allocate(self, size: int) -> None:
        self._keys = array("q", bytes(8 * size))
        self._mask = size - 1


class HashMap64(HashSet64):
    """Maps fingerprints to fingerprints; ``setdefault`` is the only write a run needs."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values = array("q", bytes(8 * _MIN_SLOTS))
        super().__init__()

    def setdefault(self, key: object, value: object) -> int:
        """The fingerprint stored for ``key``, storing ``value``'s first if there is none."""
        k = fingerprint(key)
        i = self._find(k)
        if self._keys[i] == k:
            return self._values[i]
        v = fingerprint(value)
        self._values[i] = v
        self._store(i, k)
        return v

    def _grow(self) -> None:
        old_keys, old_values = self._keys, self._values
        self._allocate((self._mask + 1) * 2)
        keys, values, mask = self._keys, self._values, self._mask
        for k, v in zip(old_keys, old_values, strict=True):
            if k != _EMPTY:
                i = k & mask
                while keys[i] != _EMPTY:
                    i = (i + 1) & mask
                keys[i] = k
                values[i] = v

    def _allocate(self, size: int) -> None:
        super()._allocate(size)
        self._values = array("q", bytes(8 * size))
