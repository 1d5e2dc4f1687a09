"""``python -m dnc_sync``: the same as the ``dnc-sync`` command."""

from dnc_sync.cli import app

app()
