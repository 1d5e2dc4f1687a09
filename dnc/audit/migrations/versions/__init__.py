"""Audit store revisions, oldest first."""
