"""The audit store's tables (SQLAlchemy Core). Alembic migrations (``migrations/versions``)
create and change them; this module is what the code reads and writes, and a test checks that
the migrated schema matches it.

Times are UTC epoch milliseconds (BIGINT), as everywhere in the product. Each archived stream
entry is one row keyed by its Redis stream entry id (``stream_ms``, ``stream_seq``: the two
parts of ``<ms>-<seq>``), so copying an entry twice writes it once. Numbers are full E.164:
this is the proof (logs stay masked).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

events = Table(
    "audit_events",
    metadata,
    Column("stream_ms", BigInteger, primary_key=True, autoincrement=False),
    Column("stream_seq", BigInteger, primary_key=True, autoincrement=False),
    Column("status", String(16), nullable=False),  # queued, superseded, duplicate
    Column("number", String(32), nullable=False),  # E.164
    Column("action", String(8), nullable=False),  # optIn, optOut
    Column("event_id", String(512), nullable=False),
    Column("event_ms", BigInteger, nullable=False),
    Column("received_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger),
    Column("sender", String(64)),  # who sent it: bearer-<n>, hmac-<n>, unknown, import
    Column("event", Text, nullable=False),  # the recorded event's JSON (dnc.events.StoredEvent)
    Index(None, "number", "received_ms"),
    Index(None, "received_ms"),
)
"""Every accepted event (audit stream): ``status`` as recorded."""

rejections = Table(
    "audit_rejections",
    metadata,
    Column("stream", String(16), primary_key=True),  # rejected, unauthenticated
    Column("stream_ms", BigInteger, primary_key=True, autoincrement=False),
    Column("stream_seq", BigInteger, primary_key=True, autoincrement=False),
    Column("received_ms", BigInteger, nullable=False),
    Column("status", Integer, nullable=False),  # the HTTP status answered
    Column("error", String(64), nullable=False),
    Column("number", String(32)),  # E.164 when the number as sent could be read, else NULL
    Column("source", String(16), nullable=False),  # the sender (as events), or receiver
    Column("fields", Text, nullable=False),  # every field of the stream entry, as JSON
    Index(None, "number", "received_ms"),
    Index(None, "received_ms"),
)
"""Every refused request or import row (rejected streams), with field and reason (``fields``:
``detail``) and, for authenticated callers, the body excerpt; authentication refusals carry
no body."""

applications = Table(
    "audit_applications",
    metadata,
    Column("stream_ms", BigInteger, primary_key=True, autoincrement=False),
    Column("stream_seq", BigInteger, primary_key=True, autoincrement=False),
    Column("number", String(32), nullable=False),
    Column("action", String(8), nullable=False),
    Column("event_id", String(512), nullable=False),
    Column("event_ms", BigInteger, nullable=False),
    Column("received_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger),
    Column("requested_ms", BigInteger, nullable=False),
    Column("settled_ms", BigInteger, nullable=False),
    Column("outcome", String(16), nullable=False),  # acknowledged, dead_lettered, deferred...
    Column("result", String(32), nullable=False),  # the target's per-record result
    Column("reason", Text, nullable=False),
    Column("http_status", Integer),
    Column("record_id", String(256)),
    Column("adapter", String(32), nullable=False),
    Column("flow_run_id", String(128), nullable=False),
    Index(None, "number", "settled_ms"),
    Index(None, "settled_ms"),
)
"""Every CXone application (applications stream): what was asked, what CXone answered, what
the sync did with the number, by which flow run."""

cursors = Table(
    "audit_archive_cursors",
    metadata,
    Column("stream", String(16), primary_key=True),
    Column("last_ms", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("archived", BigInteger, nullable=False),
    Column("lost", BigInteger, nullable=False),
    Column("added", BigInteger, nullable=False),
)
"""Per stream, since the stream began (a reset stream starts anew): the newest entry id
archived (only ever moves forward), how many of its entries were ``archived`` and trimmed,
how many were found ``lost`` (removed before the archive copied them; ``audit_archive_gaps``)
and how many it had ``added`` when last checked (``XINFO STREAM``: a stream that has fewer
went back in time, e.g. Redis restored from an older snapshot)."""

gaps = Table(
    "audit_archive_gaps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("stream", String(16), nullable=False),
    Column("after_id", String(48), nullable=False),
    Column("through_id", String(48), nullable=False),
    Column("missing", BigInteger),  # NULL: unknown (the stream's count restarted)
    Column("found_ms", BigInteger, nullable=False),
)
"""Entries a stream lost before the archive copied them (the capped unauthenticated stream
under a flood, a stream capped before the archive existed, a manual XTRIM or DEL, Redis
restarted without its data): ``missing`` entries (NULL: an unknown number, when the stream's
count restarted), with ids after ``after_id`` (the cursor then) and before ``through_id``
(the stream's first entry when found)."""

purges = Table(
    "audit_purges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("purged_ms", BigInteger, nullable=False),
    Column("cutoff_ms", BigInteger, nullable=False),
    Column("retention_days", Integer, nullable=False),
    Column("events", BigInteger, nullable=False),
    Column("rejections", BigInteger, nullable=False),
    Column("applications", BigInteger, nullable=False),
    Column("flow_run_id", String(128), nullable=False),
)
"""Every retention purge: what was deleted (rows per table older than ``cutoff_ms``)."""
