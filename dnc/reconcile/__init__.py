"""Reconciliation: read CXone back, compare with what this service holds, report drift and
requeue what the sync can repair.

- ``drift``: the drift classes and the rule that puts one number in one;
- ``state``: what Redis holds for a set of numbers (latest state, in flight, dead letters,
  ownership), read in bulk;
- ``seen``: the numbers the listing showed, kept on disk (memory stays flat at 1M records);
- ``report``: counts, masked samples, the markdown and table renderings, the last report;
- ``run``: one reconciliation, a plain async function of its parts (the Prefect flow in
  ``flows/reconcile.py`` only wires it).
"""
