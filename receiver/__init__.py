"""The HTTP receiver: a plain ASGI app that takes opt-in/opt-out events from CXone into Redis.

Modules: ``app`` (routing and the request pipeline), ``asgi`` (ASGI types, body reading,
response sending), ``payload`` (content types and body decoding), ``auth`` (bearer and HMAC),
``metrics`` (Prometheus), ``openapi`` (the OpenAPI 3.1 document), ``logs`` (JSON log lines),
``main`` (the factory uvicorn runs), ``cli`` (the ``serve`` command). Never imports Prefect.
"""
