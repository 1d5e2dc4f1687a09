"""Prefect 3 flows (the sync flow arrives with the sync issue; nothing here runs yet)."""
