"""Errors of onboarding steps. On AWS the exception's class name is the Step Functions error name.

The ASL files match these names in ``Retry``/``Catch``: renaming a class here is renaming an error
there (``tests/unit/onboarding/test_asl_files.py`` holds the two together).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError


class OnboardingError(ValueError):
    """A failure a person can act on; ``str(err)`` says what to do."""


class RequestInvalid(OnboardingError):
    """The execution input is not a valid request (the CLI validates first; this is the backstop)."""


class TenantNotFound(OnboardingError):
    """Offboarding (or a later step) names a tenant the registry does not know."""


class TenantOffboarded(OnboardingError):
    """An offboarded tenant's id cannot be onboarded again: its key is (being) deleted."""


class KeyPendingDeletion(OnboardingError):
    """The tenant's key is scheduled for deletion; onboarding will not silently revive it."""


class IamPropagationError(Exception):
    """A just-created IAM principal is not visible yet. The state's Retry absorbs it; never code."""


# Error codes AWS returns while a new role is not yet visible to the service validating a policy.
_PROPAGATION_CODES = frozenset({"MalformedPolicyDocumentException", "MalformedPolicyDocument", "MalformedPolicy"})
_PROPAGATION_HINTS = ("principal", "invalid arn", "does not exist")


def is_propagation_error(err: ClientError) -> bool:
    error = err.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", "")).lower()
    if code == "MalformedPolicyDocumentException":  # KMS says only this while the role propagates
        return True
    return code in _PROPAGATION_CODES and any(h in message for h in _PROPAGATION_HINTS)


@contextmanager
def propagation_guard(what: str) -> Iterator[None]:
    """Re-raise IAM eventual-consistency failures as :class:`IamPropagationError` (retried by the ASL)."""
    try:
        yield
    except ClientError as err:
        if is_propagation_error(err):
            raise IamPropagationError(f"{what}: {err.response['Error'].get('Message', err)}") from err
        raise
