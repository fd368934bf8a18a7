"""The file ledger: one claim wins, duplicates are no-ops, a dead worker's lease can be taken over."""

from __future__ import annotations

import threading

import pytest

from airlock.local.resources import create_platform_resources
from airlock.naming import Names
from airlock.worker.ledger import ClaimStatus, Ledger, file_id_for
from schemas.ledger import FileState, ObjectRef

REF = ObjectRef(bucket="airlock-t-acme-123456789012-us-east-1", key="inbound/q.csv", version_id="v1", etag='"e"')


@pytest.fixture
def ledger(moto_aws: None, names: Names) -> Ledger:
    create_platform_resources(names)
    return Ledger(names)


def test_file_id_is_stable_per_version_and_differs_across_versions() -> None:
    assert file_id_for(REF) == file_id_for(REF.model_copy())
    assert file_id_for(REF) != file_id_for(REF.model_copy(update={"version_id": "v2"}))
    assert file_id_for(REF) != file_id_for(REF.model_copy(update={"bucket": "airlock-t-other-1-us-east-1"}))


def test_second_claim_is_busy_then_done_after_finish(ledger: Ledger) -> None:
    first = ledger.claim(REF, "acme", "w1")
    assert first.status is ClaimStatus.CLAIMED
    assert first.record.attempts == 1
    assert ledger.claim(REF, "acme", "w2").status is ClaimStatus.BUSY

    ledger.finish(first.record.file_id, "w1", FileState.ACCEPTED, verdict="accepted")
    again = ledger.claim(REF, "acme", "w2")
    assert again.status is ClaimStatus.DONE
    assert again.record.state is FileState.ACCEPTED


def test_expired_lease_is_taken_over_and_attempts_counted(names: Names, ledger: Ledger) -> None:
    short = Ledger(names, lease_s=-1)  # every lease it grants is already expired
    assert short.claim(REF, "acme", "crashed").status is ClaimStatus.CLAIMED
    takeover = ledger.claim(REF, "acme", "w2")
    assert takeover.status is ClaimStatus.CLAIMED
    assert takeover.record.attempts == 2
    assert takeover.record.lease_owner == "w2"


def test_a_worker_that_lost_its_lease_cannot_record_an_outcome(names: Names, ledger: Ledger) -> None:
    from botocore.exceptions import ClientError

    Ledger(names, lease_s=-1).claim(REF, "acme", "slow")
    ledger.claim(REF, "acme", "fast")
    with pytest.raises(ClientError, match="ConditionalCheckFailed"):
        ledger.finish(file_id_for(REF), "slow", FileState.REJECTED)


def test_four_racing_workers_produce_one_claim(ledger: Ledger) -> None:
    results: list[ClaimStatus] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def race(owner: str) -> None:
        barrier.wait()
        try:
            results.append(ledger.claim(REF, "acme", owner).status)
        except BaseException as err:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(err)

    threads = [threading.Thread(target=race, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(s.value for s in results) == ["busy", "busy", "busy", "claimed"]
