from __future__ import annotations

import numpy as np

from airlock.ingest.keys import SeenKeys


def test_repeats_within_and_across_batches_name_the_first_line() -> None:
    seen = SeenKeys()
    rep, first = seen.check(np.array([5, 7, 5, 9]), np.array([10, 11, 12, 13]))
    assert rep.tolist() == [False, False, True, False] and first[2] == 10
    rep, first = seen.check(np.array([9, 1, 1, 7]), np.array([20, 21, 22, 23]))
    assert rep.tolist() == [True, False, True, True]
    assert (first[0], first[2], first[3]) == (13, 21, 11)


def test_cap_stops_remembering() -> None:
    seen = SeenKeys(cap=3)
    seen.check(np.array([1, 2, 3]), np.array([1, 2, 3]))
    seen.check(np.array([4]), np.array([4]))
    assert seen.capped
    rep, _ = seen.check(np.array([4, 1]), np.array([5, 6]))
    assert rep.tolist() == [False, True]


def test_within_a_big_batch_the_earliest_row_is_the_original() -> None:
    # argsort is not stable past a few dozen elements: the earliest row must still be the original
    rng = np.random.default_rng(3)
    hashes = rng.integers(0, 50, 5000)
    lines = np.arange(1, 5001)
    rep, first = SeenKeys().check(hashes, lines)
    originals: dict[int, int] = {}
    for h, line, r, f in zip(hashes.tolist(), lines.tolist(), rep.tolist(), first.tolist(), strict=True):
        if h in originals:
            assert r and f == originals[h]
        else:
            assert not r
            originals[h] = line
