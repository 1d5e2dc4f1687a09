"""The fault scripts (``python -m reliability.faults.<name>``): each starts real processes,
breaks something under load and checks the whole history against a model
(``oracle.py``, ``history.py``); ``stack.py`` holds what they run against."""
