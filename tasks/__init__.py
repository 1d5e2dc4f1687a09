"""Prefect 3 tasks: thin wrappers over plain functions in ``dnc`` (arrive with the sync issue)."""
