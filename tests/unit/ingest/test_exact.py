"""The exact-duplicate store on its own: fingerprints only nominate, the record text decides."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from airlock.ingest.exact import ExactDuplicates
from airlock.ingest.recordtext import RecordText


def texts(tmp_path: Path, records: list[bytes], *, spooled: bool = False) -> tuple[RecordText, np.ndarray]:
    """A RecordText over ``records`` (LF-separated) and each record's (start, end)."""
    data = b"\n".join(records) + b"\n"
    src = tmp_path / "src.csv"
    src.write_bytes(data)
    rt = RecordText(src, lambda: tmp_path / "copy.text")
    half = data.index(b"\n", len(data) // 2) + 1  # two chunks: records on both sides of the seam
    rt.add(data[:half], None if spooled else 0)
    rt.add(data[half:], None if spooled else half)
    starts = np.cumsum([0] + [len(r) + 1 for r in records[:-1]])
    spans = np.stack([starts, starts + [len(r) for r in records]], axis=1).astype(np.int64)
    return rt, spans


def test_same_fingerprint_different_text_is_kept_and_its_own_copies_found(tmp_path: Path) -> None:
    records = [b"a,1", b"b,1", b"a,1", b"c,1", b"b,1", b"c,2"]
    rt, spans = texts(tmp_path, records, spooled=True)
    store = ExactDuplicates(rt)
    one_fingerprint = np.zeros(len(records), dtype=np.uint64)
    lines = np.arange(2, 2 + len(records))
    first, second = slice(0, 3), slice(3, None)  # two batches
    rep1, orig1 = store.check(one_fingerprint[first], lines[first], spans[first])
    rep2, orig2 = store.check(one_fingerprint[second], lines[second], spans[second])
    assert rep1.tolist() == [False, False, True] and orig1[2] == 2
    assert rep2.tolist() == [False, True, False] and orig2[1] == 3
    assert store.compared == 5 and not store.capped
    rt.close()


def test_distinct_fingerprints_never_read_text(tmp_path: Path) -> None:
    records = [b"x,%d" % i for i in range(1000)]
    rt, spans = texts(tmp_path, records)
    store = ExactDuplicates(rt)
    rep, _ = store.check(np.arange(1, 1001, dtype=np.uint64) << np.uint64(40), np.arange(1000), spans)
    assert not rep.any() and store.compared == 0
    rt.close()


def test_the_group_cap_stops_remembering_and_says_so(tmp_path: Path) -> None:
    records = [b"r,%d" % i for i in range(10)] + [b"r,1", b"r,8"]
    rt, spans = texts(tmp_path, records)
    store = ExactDuplicates(rt, group_cap=5)
    rep, orig = store.check(np.zeros(len(records), dtype=np.uint64), np.arange(1, 13), spans)
    assert store.capped
    assert rep.tolist() == [False] * 10 + [True, False]  # r,8 came after the cap: its copy goes unseen
    assert orig[10] == 2
    rt.close()
