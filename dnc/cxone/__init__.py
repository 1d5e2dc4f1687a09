"""The CXone HTTP client: two adapters behind ``dnc.target.DncTarget``.

Modules: ``errors`` (the client's error hierarchy),
``tokens`` (access-token cache with single-flight refresh), ``pacing`` (client-side rate and
concurrency limits), ``transport`` (one request with auth, pacing, classification and bounded
retries), ``discovery`` (CXone's well-known documents), ``dnc_groups`` (adapter 1: the real
CXone DNC-group API), ``contacts`` (adapter 2: the outbound-contacts upsert contract),
``factory`` (build the configured adapter and its httpx client).
"""
