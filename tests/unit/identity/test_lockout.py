"""Lockout counters in the login-attempts table: per user, per user+IP, windows that expire."""

from __future__ import annotations

import pytest

from airlock.identity.lockout import DynamoAttemptTracker
from airlock.local.resources import create_platform_resources
from airlock.naming import Names

S, U = "s-1234567890abcdef0", "acme-ops"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def tracker(moto_aws: None, names: Names) -> tuple[DynamoAttemptTracker, Clock]:
    create_platform_resources(names)
    clock = Clock()
    return DynamoAttemptTracker(names, max_per_user=5, max_per_user_ip=3, window_s=600, clock=clock), clock


def test_user_ip_limit(tracker: tuple[DynamoAttemptTracker, Clock]) -> None:
    t, _ = tracker
    for _ in range(2):
        t.record_failure(S, U, "203.0.113.1")
    assert not t.is_locked(S, U, "203.0.113.1")
    t.record_failure(S, U, "203.0.113.1")
    assert t.is_locked(S, U, "203.0.113.1")
    assert not t.is_locked(S, U, "203.0.113.2")


def test_user_limit_across_ips(tracker: tuple[DynamoAttemptTracker, Clock]) -> None:
    t, _ = tracker
    for i in range(5):
        t.record_failure(S, U, f"198.51.100.{i}")
    assert t.is_locked(S, U, "192.0.2.200")  # a spray from many IPs locks the account
    assert not t.is_locked(S, "someone-else", "192.0.2.200")


def test_window_expires_even_before_ttl_reaps(tracker: tuple[DynamoAttemptTracker, Clock]) -> None:
    t, clock = tracker
    for _ in range(3):
        t.record_failure(S, U, "203.0.113.1")
    assert t.is_locked(S, U, "203.0.113.1")
    clock.now += 601
    assert not t.is_locked(S, U, "203.0.113.1")
    t.record_failure(S, U, "203.0.113.1")  # starts a new window at 1
    assert not t.is_locked(S, U, "203.0.113.1")


def test_success_clears(tracker: tuple[DynamoAttemptTracker, Clock]) -> None:
    t, _ = tracker
    for _ in range(2):
        t.record_failure(S, U, "203.0.113.1")
    t.record_success(S, U, "203.0.113.1")
    t.record_failure(S, U, "203.0.113.1")
    t.record_failure(S, U, "203.0.113.1")
    assert not t.is_locked(S, U, "203.0.113.1")
