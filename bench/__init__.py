"""The performance benchmarks (``python -m bench.<name>``), on the process harness of
``reliability.processes`` and ``reliability.services``."""
