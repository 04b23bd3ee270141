"""The compact hash tables behave as a dict and a set of fingerprints."""

from __future__ import annotations

import random

from crawlsel.hashtable import HashMap64, HashSet64, fingerprint


def test_map_agrees_with_a_dict_through_growth() -> None:
    rng = random.Random(7)
    table, reference = HashMap64(), {}
    for _ in range(20_000):
        key, value = f"k{rng.randrange(8_000)}", f"v{rng.random()}"
        assert table.setdefault(key, value) == reference.setdefault(fingerprint(key), fingerprint(value))
    assert len(table) == len(reference)


def test_set_add_says_whether_the_value_was_new() -> None:
    seen = HashSet64()
    assert seen.add(("http", "h", 80, "/a")) is True
    assert seen.add(("http", "h", 80, "/a")) is False
    assert seen.add(("http", "h", 80, "/b")) is True
    assert seen.add(0) is True and seen.add(0) is False  # 0 is not the empty marker
    assert len(seen) == 3


def test_fingerprints_are_nonzero_signed_64_bit() -> None:
    for value in (0, 1, -1, "x", ("a", 1), 2**70):
        assert fingerprint(value) != 0
        assert -(2**63) <= fingerprint(value) < 2**63
