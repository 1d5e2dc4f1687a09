"""Audit records: events, rejections, CXone applications, archive cursors and gaps.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _entry_id() -> list[sa.Column[int]]:
    return [
        sa.Column("stream_ms", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("stream_seq", sa.BigInteger(), autoincrement=False, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "audit_events",
        *_entry_id(),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("event_id", sa.String(512), nullable=False),
        sa.Column("event_ms", sa.BigInteger(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=True),
        sa.Column("sender", sa.String(64), nullable=True),
        sa.Column("event", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("stream_ms", "stream_seq", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_number_received_ms", "audit_events", ["number", "received_ms"])
    op.create_index("ix_audit_events_received_ms", "audit_events", ["received_ms"])
    op.create_table(
        "audit_rejections",
        sa.Column("stream", sa.String(16), nullable=False),
        *_entry_id(),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(64), nullable=False),
        sa.Column("number", sa.String(32), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("stream", "stream_ms", "stream_seq", name="pk_audit_rejections"),
    )
    op.create_index(
        "ix_audit_rejections_number_received_ms", "audit_rejections", ["number", "received_ms"]
    )
    op.create_index("ix_audit_rejections_received_ms", "audit_rejections", ["received_ms"])
    op.create_table(
        "audit_applications",
        *_entry_id(),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("event_id", sa.String(512), nullable=False),
        sa.Column("event_ms", sa.BigInteger(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=True),
        sa.Column("requested_ms", sa.BigInteger(), nullable=False),
        sa.Column("settled_ms", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("result", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("record_id", sa.String(256), nullable=True),
        sa.Column("adapter", sa.String(32), nullable=False),
        sa.Column("flow_run_id", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("stream_ms", "stream_seq", name="pk_audit_applications"),
    )
    op.create_index(
        "ix_audit_applications_number_settled_ms", "audit_applications", ["number", "settled_ms"]
    )
    op.create_index("ix_audit_applications_settled_ms", "audit_applications", ["settled_ms"])
    op.create_table(
        "audit_archive_cursors",
        sa.Column("stream", sa.String(16), nullable=False),
        sa.Column("last_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.Column("archived", sa.BigInteger(), nullable=False),
        sa.Column("lost", sa.BigInteger(), nullable=False),
        sa.Column("added", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("stream", name="pk_audit_archive_cursors"),
    )
    op.create_table(
        "audit_archive_gaps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("stream", sa.String(16), nullable=False),
        sa.Column("after_id", sa.String(48), nullable=False),
        sa.Column("through_id", sa.String(48), nullable=False),
        sa.Column("missing", sa.BigInteger(), nullable=True),
        sa.Column("found_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_archive_gaps"),
    )


def downgrade() -> None:
    for table in (
        "audit_archive_gaps",
        "audit_archive_cursors",
        "audit_applications",
        "audit_rejections",
        "audit_events",
    ):
        op.drop_table(table)
