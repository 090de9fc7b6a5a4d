"""Prefixed, time-ordered identifiers (`ct_…`, `cr_…`, `msg_…`).

Each id is a prefix and 26 Crockford base32 characters: 48 bits of milliseconds since the epoch
followed by 80 random bits. Within one process ids are strictly increasing even when many are made
in the same millisecond (the random part is incremented), so sorting by id sorts by creation.

Ids name things; they are not secrets (tokens and keys come from `secrets`), so the random bits
come from a generator seeded once from the system's randomness rather than a system call per id,
which also let other threads take the interpreter from the request that asked for it. A forked
process seeds its own, so two processes never share a sequence.
"""

from __future__ import annotations

import os
import random
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_RANDOM_BITS = 80


_PAIRS = [first + second for first in _ALPHABET for second in _ALPHABET]
"""Every 10-bit value as two characters: half the steps of encoding 5 bits at a time (an id is
made for every row and event written, several a request)."""
_PAIR_SHIFTS = tuple(range(120, -1, -10))


def _encode(value: int) -> str:
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _PAIR_SHIFTS])


class IdGenerator:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0
        self._random = random.Random()  # seeded from os.urandom
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        # A child starts afresh: its own seed, and no last id to count on from, which the
        # parent would count on from too.
        self._random.seed()
        self._last = 0

    def new(self, prefix: str) -> str:
        millis = time.time_ns() // 1_000_000
        with self._lock:
            candidate = (millis << _RANDOM_BITS) | self._random.getrandbits(_RANDOM_BITS)
            if candidate <= self._last:
                candidate = self._last + 1
            self._last = candidate
        return f"{prefix}_{_encode(candidate)}"


_default = IdGenerator()


def new_id(prefix: str) -> str:
    return _default.new(prefix)


def is_valid_id(value: str, prefix: str) -> bool:
    head, sep, body = value.partition("_")
    return sep == "_" and head == prefix and len(body) == 26 and all(c in _ALPHABET for c in body)
