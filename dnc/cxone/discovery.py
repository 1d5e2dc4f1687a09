"""CXone discovery: where to get tokens and which API host serves a tenant.

Contract (NICE CXone developer docs, "Getting started: authentication" and "API host
discovery"): ``GET {issuer}/.well-known/openid-configuration`` gives ``token_endpoint``;
``GET {issuer}/.well-known/cxone-configuration?tenantId=<id>`` gives ``api_endpoint``, where the
tenant id is the ``tenantId`` claim of an access token (a JWT; its payload is read without
checking the signature: we only route by it). Both answers are non-secret and stable, so
callers cache them.
"""

from __future__ import annotations

import base64
import json

import httpx

from dnc.cxone.errors import CxoneAuthError, CxonePermanentError
from dnc.cxone.http_errors import check_status, send_plain


async def fetch_document(
    client: httpx.AsyncClient, url: str, params: dict[str, str] | None = None
) -> dict[str, object]:
    """GET a JSON object; raises ``CxoneTransientError``/``CxonePermanentError``."""
    response = await send_plain(
        client, "GET", url, params=params, headers={"Accept": "application/json"}
    )
    check_status(response)
    try:
        body = response.json()
    except ValueError:
        raise CxonePermanentError(f"GET {url}: answer is not JSON", response.status_code) from None
    if not isinstance(body, dict):
        raise CxonePermanentError(f"GET {url}: answer is not a JSON object", response.status_code)
    return body


def _string_field(document: dict[str, object], name: str, url: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise CxonePermanentError(f"{url}: no usable {name!r} in the answer", 200)
    return value.rstrip("/")


async def discover_token_endpoint(client: httpx.AsyncClient, issuer: str) -> str:
    """The OAuth2 token endpoint URL of ``issuer`` (e.g. ``https://cxone.niceincontact.com``)."""
    url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
    return _string_field(await fetch_document(client, url), "token_endpoint", url)


async def discover_api_endpoint(client: httpx.AsyncClient, issuer: str, tenant_id: str) -> str:
    """The API base URL serving ``tenant_id`` (e.g. ``https://api-na1.niceincontact.com``)."""
    url = f"{issuer.rstrip('/')}/.well-known/cxone-configuration"
    document = await fetch_document(client, url, {"tenantId": tenant_id})
    return _string_field(document, "api_endpoint", url)


def tenant_id_from_token(access_token: str) -> str:
    """The ``tenantId`` claim of a JWT access token. Raises ``CxoneAuthError`` when the token
    is not a JWT with that claim (the message never includes the token)."""
    parts = access_token.split(".")
    if len(parts) != 3:
        raise CxoneAuthError("the access token is not a JWT; cannot find the tenant id")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except ValueError:
        raise CxoneAuthError("the access token's payload is not JSON") from None
    tenant = claims.get("tenantId") if isinstance(claims, dict) else None
    if not isinstance(tenant, str) or not tenant:
        raise CxoneAuthError("the access token has no tenantId claim")
    return tenant
