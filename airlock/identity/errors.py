"""Errors a user of ``airlock users`` (or onboarding) can act on: ``str(err)`` is the message to show."""

from __future__ import annotations


class IdentityInputError(ValueError):
    """Bad input from an operator: a weak key, a bad username, a bad CIDR. Print it, no traceback."""
