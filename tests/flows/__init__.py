"""The Prefect flows end to end, under one Prefect test harness for this package."""
