"""claim order indexes: due webhook deliveries and outbound sends by (due time, id)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 02:05:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at", "id"],
        unique=False,
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    )
    op.drop_index("ix_outbound_sends_next_attempt_at", table_name="outbound_sends")
    op.create_index(
        "ix_outbound_sends_next_attempt_at_message_id",
        "outbound_sends",
        ["next_attempt_at", "message_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_outbound_sends_next_attempt_at_message_id", table_name="outbound_sends")
    op.create_index(
        "ix_outbound_sends_next_attempt_at", "outbound_sends", ["next_attempt_at"], unique=False
    )
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        unique=False,
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    )
