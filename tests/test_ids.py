"""Ids: a prefix and 26 Crockford base32 characters, 48 bits of milliseconds then 80 random bits,
strictly increasing within the process."""

from __future__ import annotations

import os
import random
import time
import warnings

from chatflow.ids import IdGenerator, is_valid_id

CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def _decode(body: str) -> int:
    value = 0
    for char in body:
        value = value * 32 + CROCKFORD.index(char)
    return value


def test_an_id_is_its_creation_millisecond_and_80_bits_in_crockford_base32() -> None:
    before = time.time_ns() // 1_000_000
    made = IdGenerator().new("msg")
    after = time.time_ns() // 1_000_000
    assert is_valid_id(made, "msg")
    assert before <= _decode(made.removeprefix("msg_")) >> 80 <= after


def test_ids_made_in_one_millisecond_still_increase_and_encode_exactly() -> None:
    generator = IdGenerator()
    made = [generator.new("ct") for _ in range(2_000)]
    values = [_decode(m.removeprefix("ct_")) for m in made]
    assert values == sorted(set(values))
    assert made == sorted(made)  # string order is creation order


def test_the_encoding_round_trips_the_whole_range() -> None:
    from chatflow.ids import _encode

    edges = [0, 1, 31, 32, 1023, 1024, (1 << 128) - 1, 1 << 127]
    for value in edges + [random.getrandbits(128) for _ in range(1_000)]:
        encoded = _encode(value)
        assert len(encoded) == 26 and _decode(encoded) == value
    assert _encode(0) == "0" * 26
    assert _encode((1 << 128) - 1) == "7" + "z" * 25


def test_a_forked_process_draws_other_random_bits_than_its_parent() -> None:
    """`chatflow serve --workers N` forks: two processes must never make the same ids."""
    generator = IdGenerator()
    generator.new("msg")
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # forking with threads (3.12+)
        child = os.fork()
    if child == 0:
        os.write(write_end, "".join(generator.new("msg") for _ in range(3)).encode())
        os._exit(0)
    os.close(write_end)
    mine = [generator.new("msg") for _ in range(3)]
    os.waitpid(child, 0)
    theirs = os.read(read_end, 1000).decode()
    os.close(read_end)
    random_bits = {_decode(m.removeprefix("msg_")) & ((1 << 80) - 1) for m in mine}
    their_bits = {_decode(m) & ((1 << 80) - 1) for m in theirs.split("msg_")[1:]}
    assert len(their_bits) == 3 and not random_bits & their_bits
