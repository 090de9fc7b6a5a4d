"""The hot lookups that a partial index serves state its predicate in their SQL, so that a plan
made once can use the index: R2's open-chatroom lookup runs for every customer message."""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from chatflow.storage import chatrooms


def test_the_open_chatroom_lookup_binds_only_its_keys_r2() -> None:
    # Bound, the status made SQLite prepare the statement again on every execution (the partial
    # index's use depended on the value), and kept PostgreSQL's generic plan off the index.
    statement = cast(sa.Select[Any], chatrooms._OPEN_OF.statement)
    for dialect in (sqlite.dialect(), postgresql.dialect()):  # type: ignore[no-untyped-call]
        compiled = statement.compile(dialect=dialect)
        assert set(compiled.params) == {"contact_id", "channel_id"}
        assert "status = 'open'" in str(compiled)
