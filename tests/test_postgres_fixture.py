"""The ``audit_database_url`` fixture: a working, empty database per test on both SQLite and a
real PostgreSQL server (``tests/conftest.py``)."""

from __future__ import annotations

import sqlalchemy

metadata = sqlalchemy.MetaData()
probe = sqlalchemy.Table(
    "fixture_probe",
    metadata,
    sqlalchemy.Column("id", sqlalchemy.Integer, primary_key=True),
    sqlalchemy.Column("note", sqlalchemy.String(50), nullable=False),
)


def _round_trip(url: str) -> None:
    """The database at ``url`` starts without the probe table, then creates, writes and reads it."""
    engine = sqlalchemy.create_engine(url)
    try:
        assert not sqlalchemy.inspect(engine).has_table("fixture_probe")
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(probe.insert().values(id=1, note="written"))
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.select(probe.c.id, probe.c.note)).all() == [
                (1, "written")
            ]
    finally:
        engine.dispose()


def test_database_is_usable(audit_database_url: str) -> None:
    _round_trip(audit_database_url)


def test_each_test_gets_its_own_empty_database(audit_database_url: str) -> None:
    # The same table as the test above: it would already exist if the database were shared.
    _round_trip(audit_database_url)


def test_url_names_the_dialect(audit_database_url: str) -> None:
    dialect = sqlalchemy.make_url(audit_database_url).get_backend_name()
    assert dialect in {"sqlite", "postgresql"}
    if dialect == "postgresql":
        assert sqlalchemy.make_url(audit_database_url).database.startswith("dnc_t_")
