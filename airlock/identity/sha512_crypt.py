"""SHA-512 crypt (``$6$``, Drepper's SHA-crypt spec) in pure Python, for verifying legacy hashes.

Python's ``crypt`` module is deprecated and gone in 3.13, and ``crypt-r`` needs a libcrypt at run
time; this is the published algorithm on ``hashlib`` alone. It is used only to verify and migrate
hashes imported from an existing OpenSSH/Linux server: new hashes are argon2id.
"""

from __future__ import annotations

import hashlib

_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ROUNDS_DEFAULT = 5000
ROUNDS_MIN = 1000
ROUNDS_MAX = 999_999_999
# Older hashes can be cheap; refuse absurd round counts so a crafted secret cannot stall a login.
ROUNDS_CAP = 5_000_000
_SALT_MAX = 16

# The spec's byte permutation: each triple becomes four characters, the last byte two.
# fmt: off
_ORDER = (
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26), (6, 27, 48),
    (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32), (12, 33, 54), (34, 55, 13),
    (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38), (18, 39, 60), (40, 61, 19), (62, 20, 41),
)
# fmt: on


def _b64(b2: int, b1: int, b0: int, n: int) -> str:
    w = (b2 << 16) | (b1 << 8) | b0
    out = []
    for _ in range(n):
        out.append(_ALPHABET[w & 0x3F])
        w >>= 6
    return "".join(out)


def _repeat(digest: bytes, length: int) -> bytes:
    return (digest * (length // 64 + 1))[:length]


def _parse_setting(setting: str) -> tuple[bytes, int, bool]:
    if not setting.startswith("$6$"):
        raise ValueError("not a SHA-512 crypt setting")
    rest = setting[3:]
    rounds, custom = ROUNDS_DEFAULT, False
    if rest.startswith("rounds="):
        value, sep, rest = rest[len("rounds=") :].partition("$")
        if not sep or not value.isdigit():
            raise ValueError("bad rounds field")
        rounds, custom = min(max(int(value), ROUNDS_MIN), ROUNDS_MAX), True
    if rounds > ROUNDS_CAP:
        raise ValueError("rounds above the accepted cap")
    salt = rest.split("$", 1)[0][:_SALT_MAX]
    return salt.encode(), rounds, custom


def crypt(password: str, setting: str) -> str:
    """Hash ``password`` with the salt and rounds of ``setting`` (a ``$6$`` hash or setting string)."""
    salt, rounds, custom = _parse_setting(setting)
    p = password.encode()
    b = hashlib.sha512(p + salt + p).digest()
    a = hashlib.sha512(p + salt)
    a.update(_repeat(b, len(p)))
    n = len(p)
    while n:
        a.update(b if n & 1 else p)
        n >>= 1
    c = a.digest()
    p_seq = _repeat(hashlib.sha512(p * len(p)).digest(), len(p))
    s_seq = _repeat(hashlib.sha512(salt * (16 + c[0])).digest(), len(salt))
    for i in range(rounds):
        h = hashlib.sha512(p_seq if i & 1 else c)
        if i % 3:
            h.update(s_seq)
        if i % 7:
            h.update(p_seq)
        h.update(c if i & 1 else p_seq)
        c = h.digest()
    encoded = "".join(_b64(c[x], c[y], c[z], 4) for x, y, z in _ORDER) + _b64(0, 0, c[63], 2)
    prefix = f"$6$rounds={rounds}$" if custom else "$6$"
    return f"{prefix}{salt.decode()}${encoded}"
