"""Password hashing: argon2id for new hashes, bcrypt and SHA-512 crypt verified for migration."""

from __future__ import annotations

import warnings

import bcrypt
import pytest

from airlock.identity import passwords, sha512_crypt

PW = "correct horse battery staple"


@pytest.fixture(scope="module")
def argon_hash() -> str:
    return passwords.hash_password(PW)


def test_new_hashes_are_salted_argon2id(argon_hash: str) -> None:
    assert argon_hash.startswith("$argon2id$")
    assert passwords.hash_password(PW) != argon_hash  # fresh salt every time
    assert PW not in argon_hash


def test_argon2id_verifies_and_rejects(argon_hash: str) -> None:
    ok = passwords.verify_password(PW, argon_hash)
    assert ok.ok and not ok.needs_rehash and ok.scheme == "argon2id"
    assert not passwords.verify_password(PW + "x", argon_hash).ok
    assert not passwords.verify_password("", argon_hash).ok


def test_outdated_argon2_parameters_ask_for_rehash() -> None:
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PW)
    result = passwords.verify_password(PW, weak)
    assert result.ok and result.needs_rehash


@pytest.mark.parametrize("ident", [b"2a", b"2b"])
def test_legacy_bcrypt_verifies_and_asks_for_rehash(ident: bytes) -> None:
    legacy = bcrypt.hashpw(PW.encode(), bcrypt.gensalt(rounds=4, prefix=ident)).decode()
    result = passwords.verify_password(PW, legacy)
    assert result.ok and result.needs_rehash and result.scheme == "bcrypt"
    assert not passwords.verify_password("wrong password!", legacy).ok


def test_bcrypt_2y_from_php_and_htpasswd_verifies() -> None:
    legacy = bcrypt.hashpw(PW.encode(), bcrypt.gensalt(rounds=4)).decode().replace("$2b$", "$2y$", 1)
    assert passwords.verify_password(PW, legacy).ok


def test_bcrypt_long_password_is_a_plain_failure() -> None:
    legacy = bcrypt.hashpw(b"short", bcrypt.gensalt(rounds=4)).decode()
    assert not passwords.verify_password("y" * 100, legacy).ok  # bcrypt>=5 raises; we deny


def test_sha512_crypt_spec_vectors() -> None:
    assert (
        sha512_crypt.crypt("Hello world!", "$6$saltstring")
        == "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
    )
    assert sha512_crypt.crypt("Hello world!", "$6$rounds=10000$saltstringsaltstring") == (
        "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."
    )


def test_sha512_crypt_matches_the_system_crypt() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        crypt = pytest.importorskip("crypt")
    stored = crypt.crypt("pässwörd " * 5, crypt.mksalt(crypt.METHOD_SHA512))
    assert sha512_crypt.crypt("pässwörd " * 5, stored) == stored


def test_legacy_sha512_crypt_verifies_and_asks_for_rehash() -> None:
    stored = sha512_crypt.crypt(PW, "$6$abcdefgh12345678")
    result = passwords.verify_password(PW, stored)
    assert result.ok and result.needs_rehash and result.scheme == "sha512-crypt"
    assert not passwords.verify_password("nope nope nope", stored).ok


def test_sha512_crypt_refuses_absurd_rounds() -> None:
    assert not passwords.verify_password(PW, "$6$rounds=999999999$salt$xxxx").ok


@pytest.mark.parametrize("stored", ["", "plaintext", "$1$md5salt$abc", "$argon2i$v=19$bad", "$5$sha256$x"])
def test_unknown_or_weak_schemes_never_verify(stored: str) -> None:
    assert not passwords.verify_password(stored or "x", stored).ok


def test_oversized_password_is_refused_cheaply(argon_hash: str) -> None:
    assert not passwords.verify_password("p" * (passwords.MAX_PASSWORD_BYTES + 1), argon_hash).ok


def test_empty_password_cannot_be_hashed() -> None:
    with pytest.raises(ValueError, match="empty"):
        passwords.hash_password("")
