"""Prefect 3 flows: ``sync`` (the DNC sync flow, ``sync_dnc``)."""
