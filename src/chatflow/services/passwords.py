"""Password hashing with Argon2id (argon2-cffi), the OWASP-recommended algorithm.

Hashing takes tens of milliseconds by design: call these off the event loop and never inside a
write transaction (the SQLite writer thread serves every request).
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# OWASP's recommended Argon2id configuration (19 MiB, 2 iterations, 1 lane): tens of
# milliseconds per hash, where the library's defaults take about 200 ms on a small server.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verifying against this keeps an unknown email as slow as a wrong password.
_DUMMY_HASH = _hasher.hash("chatflow-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False
