"""Prefect 3 tasks: thin wrappers over plain functions in ``dnc`` (``sync_tasks``)."""
