"""The audit store: the system of record of what arrived, what was refused and what CXone was
told and answered, in a SQL database (SQLite by default, PostgreSQL in production).

The receiver and the sync write to Redis streams on the hot path (``dnc.keys``: audit,
rejected, rejected-unauthenticated, applications); the ``archive-audit`` flow copies their
entries here (``archive``), idempotently by stream entry id, and only then trims them.
Modules: ``schema`` (tables), ``database`` (engines, migrations), ``entries`` (stream entry ->
row), ``archive`` (the copy), ``retention`` (the purge), ``history`` and ``export`` (reading).
"""
