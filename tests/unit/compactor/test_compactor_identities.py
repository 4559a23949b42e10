import numpy as np

from runstream.compactor.identities import SeenIndex


def test_claim_returns_only_new_ranges_and_merges():
    seen = SeenIndex()
    assert seen.claim("p", 0, 10) == [(0, 10)]
    assert seen.claim("p", 5, 15) == [(10, 15)]
    assert seen.claim("p", 0, 15) == []
    assert seen.claim("p", 20, 25) == [(20, 25)]
    assert seen.claim("p", 12, 30) == [(15, 20), (25, 30)]
    assert len(seen) == 30
    assert seen.claim("q", 0, 3) == [(0, 3)]
    assert seen.contains("p", 29) and not seen.contains("p", 30) and not seen.contains("r", 0)


def test_add_array_makes_the_same_intervals_as_claims():
    seen = SeenIndex()
    seen.add_array("p", np.array([7, 3, 4, 5, 9, 3], np.int64))
    assert [seen.contains("p", s) for s in range(11)] == [s in {3, 4, 5, 7, 9} for s in range(11)]
    assert seen.claim("p", 0, 11) == [(0, 3), (6, 7), (8, 9), (10, 11)]
