"""Alembic migrations of the audit store (run through ``dnc.audit.database.upgrade``)."""
