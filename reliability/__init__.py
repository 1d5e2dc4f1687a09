"""The fault, fuzz and secret-scan harness (``make reliability`` writes
``docs/reliability.md`` from it): the fault scripts (``faults/``), the receiver's fuzz, the
leak scan, and the process harness they and ``bench/`` share (``processes.py``,
``services.py``). Not shipped: it drives the product from the outside."""
