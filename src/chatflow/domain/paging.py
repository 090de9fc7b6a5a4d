"""Cursor pagination: opaque cursors that name the last row seen, never an offset."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from chatflow.domain.errors import InvalidCursorError

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100

CursorValue = str | int


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(kind: str, values: Sequence[CursorValue]) -> str:
    raw = json.dumps([kind, *values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str, shape: Sequence[type]) -> list[CursorValue]:
    """Decode a cursor made by `encode_cursor(kind, …)`; anything else is an `InvalidCursorError`.

    A cursor from another list (another `kind`) or of another shape is refused, so a tampered
    cursor can never become a query parameter of the wrong type.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.b64decode(padded.encode(), altchars=b"-_", validate=True)
        decoded = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursorError("The cursor is not one this API issued") from exc
    if (
        not isinstance(decoded, list)
        or len(decoded) != len(shape) + 1
        or decoded[0] != kind
        or not all(
            type(value) is expected for value, expected in zip(decoded[1:], shape, strict=True)
        )
    ):
        raise InvalidCursorError("The cursor is not one this API issued for this list")
    return list(decoded[1:])


def page_of(
    rows: list[T], limit: int, kind: str, key: Callable[[T], Sequence[CursorValue]]
) -> Page[T]:
    """Rows were fetched with `limit + 1`; the extra row only tells that there is a next page."""
    if len(rows) > limit:
        items = rows[:limit]
        return Page(items, encode_cursor(kind, key(items[-1])))
    return Page(rows, None)
