"""Discovery documents, both token endpoints, and the bearer check of every API call.

Adapter 1 (CXone): ``GET /.well-known/openid-configuration``,
``GET /.well-known/cxone-configuration?tenantId=``, ``POST /auth/token`` (RFC 6749 §4.3
password grant: ``username``/``password`` are the access key id/secret, the application's
client id/secret in HTTP Basic, RFC 6749 §2.3.1). Adapter 2 (outbound): ``POST /oauth/token``
with a JSON body ``{"grant_type": "client_credentials", "client_id", "client_secret"}``.
Token errors are RFC 6749 §5.2 bodies ``{"error": <code>}``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from pydantic import SecretStr

from sandbox.context import Sandbox
from sandbox.http import Request, Response

AUTH_ENDPOINT = "auth_token"  # endpoint names, as counted in the state
OAUTH_ENDPOINT = "oauth_token"
_FORM = b"application/x-www-form-urlencoded"
_NO_STORE = ((b"pragma", b"no-cache"),)
_INVALID_TOKEN = Response(
    401, {"error": "invalid_token"}, ((b"www-authenticate", b'Bearer error="invalid_token"'),)
)


class TokenError(Exception):
    """A refused token request: HTTP ``status`` and the RFC 6749 error ``code``."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code

    def response(self) -> Response:
        """``{"error": code}`` with the status (401 also names the Basic scheme)."""
        headers = ((b"www-authenticate", b'Basic realm="sandbox"'),) if self.status == 401 else ()
        return Response(self.status, {"error": self.code}, headers)


# -- discovery -------------------------------------------------------------------------------


def openid_configuration(sandbox: Sandbox, request: Request) -> Response:
    """The OpenID Provider metadata (OpenID Connect Discovery 1.0 §3), issuer = base URL."""
    base = request.base_url
    return Response(
        200,
        {
            "issuer": base,
            "token_endpoint": f"{base}/auth/token",
            "grant_types_supported": ["password", "client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "response_types_supported": ["token", "id_token"],
            "id_token_signing_alg_values_supported": ["HS256"],
            "subject_types_supported": ["public"],
        },
    )


def cxone_configuration(sandbox: Sandbox, request: Request) -> Response:
    """Where the tenant's API lives: ``api_endpoint`` is this sandbox; unknown tenant 404."""
    tenant_id = request.query_value("tenantId")
    if tenant_id != sandbox.settings.tenant_id:
        return Response(404, {"error": "not_found", "message": "unknown tenantId"})
    base = request.base_url
    body = {"tenantId": tenant_id, "api_endpoint": base, "area": "sandbox", "ui_endpoint": base}
    return Response(200, body)


# -- adapter 1: POST /auth/token -------------------------------------------------------------


def auth_token(sandbox: Sandbox, request: Request) -> Response:
    """Password grant; answers ``access_token`` and ``id_token`` (JWTs), ``expires_in``."""
    sandbox.state.token_requests[AUTH_ENDPOINT] += 1
    try:
        form = _form(request)
        _check_basic(sandbox, request.header(b"authorization"))
        username = _password_grant(sandbox, form)
    except TokenError as exc:
        return exc.response()
    now_s = sandbox.now()
    ttl_s = sandbox.config.token_ttl_s
    claims = {
        "iss": request.base_url,
        "sub": f"user:{username}",
        "tenantId": sandbox.settings.tenant_id,
        "iat": int(now_s),
        "exp": int(now_s) + ttl_s,
    }
    access = _jwt(sandbox.signing_key, claims | {"jti": secrets.token_hex(8)})
    id_token = _jwt(sandbox.signing_key, claims | {"aud": sandbox.settings.client_id})
    sandbox.state.keep_token(access, AUTH_ENDPOINT, now_s + ttl_s, now_s)
    body = {"access_token": access, "token_type": "Bearer", "expires_in": ttl_s}
    return Response(200, body | {"id_token": id_token}, _NO_STORE)


def _form(request: Request) -> dict[str, str]:
    content_type = (request.header(b"content-type") or b"").split(b";")[0].strip().lower()
    if content_type != _FORM:
        raise TokenError(400, "invalid_request")
    try:
        pairs = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError as exc:
        raise TokenError(400, "invalid_request") from exc
    form = dict(pairs)
    if len(form) != len(pairs):  # RFC 6749 §3.2: parameters must not be repeated
        raise TokenError(400, "invalid_request")
    return form


def _check_basic(sandbox: Sandbox, authorization: bytes | None) -> None:
    """HTTP Basic client authentication; the id and secret are compared as sent, or
    form-decoded as RFC 6749 §2.3.1 asks of clients."""
    scheme, _, encoded = (authorization or b"").partition(b" ")
    if scheme.lower() != b"basic":
        raise TokenError(401, "invalid_client")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise TokenError(401, "invalid_client") from exc
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise TokenError(401, "invalid_client")
    settings = sandbox.settings
    as_sent = _matches(client_id, secret, settings.client_id, settings.client_secret)
    decoded_pair = (unquote_plus(client_id), unquote_plus(secret))
    if not (as_sent or _matches(*decoded_pair, settings.client_id, settings.client_secret)):
        raise TokenError(401, "invalid_client")


def _password_grant(sandbox: Sandbox, form: dict[str, str]) -> str:
    grant_type = form.get("grant_type")
    if grant_type is None:
        raise TokenError(400, "invalid_request")
    if grant_type != "password":
        raise TokenError(400, "unsupported_grant_type")
    username, password = form.get("username"), form.get("password")
    if username is None or password is None:
        raise TokenError(400, "invalid_request")
    settings = sandbox.settings
    if not _matches(username, password, settings.access_key_id, settings.access_key_secret):
        raise TokenError(400, "invalid_grant")
    return username


# -- adapter 2: POST /oauth/token ------------------------------------------------------------


def oauth_token(sandbox: Sandbox, request: Request) -> Response:
    """Client-credentials grant with a JSON body; answers an opaque ``access_token``."""
    sandbox.state.token_requests[OAUTH_ENDPOINT] += 1
    try:
        _client_credentials(sandbox, request)
    except TokenError as exc:
        return exc.response()
    now_s = sandbox.now()
    ttl_s = sandbox.config.token_ttl_s
    token = secrets.token_urlsafe(32)
    sandbox.state.keep_token(token, OAUTH_ENDPOINT, now_s + ttl_s, now_s)
    body = {"access_token": token, "token_type": "Bearer", "expires_in": ttl_s}
    return Response(200, body, _NO_STORE)


def _client_credentials(sandbox: Sandbox, request: Request) -> None:
    try:
        body: Any = json.loads(request.body)
    except (ValueError, RecursionError) as exc:
        raise TokenError(400, "invalid_request") from exc
    if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
        raise TokenError(400, "invalid_request")
    if body.get("grant_type") is None:
        raise TokenError(400, "invalid_request")
    if body["grant_type"] != "client_credentials":
        raise TokenError(400, "unsupported_grant_type")
    settings = sandbox.settings
    client_id, secret = body.get("client_id", ""), body.get("client_secret", "")
    want_id, want_secret = settings.outbound_client_id, settings.outbound_client_secret
    if not _matches(client_id, secret, want_id, want_secret):
        raise TokenError(401, "invalid_client")


# -- bearer check and helpers ----------------------------------------------------------------


def bearer_refusal(sandbox: Sandbox, request: Request, endpoint: str) -> Response | None:
    """``None`` when ``Authorization: Bearer`` carries a live token issued by ``endpoint``;
    otherwise the 401 ``{"error": "invalid_token"}`` to answer."""
    scheme, _, token = (request.header(b"authorization") or b"").partition(b" ")
    issued = sandbox.state.tokens.get(token.strip().decode("latin-1"))
    if scheme.lower() != b"bearer" or issued is None or issued.endpoint != endpoint:
        return _INVALID_TOKEN
    if issued.expires_at_s <= sandbox.now():
        return _INVALID_TOKEN
    return None


def _matches(user: str, password: str, want_user: str, want_password: SecretStr) -> bool:
    """Constant-time comparison of both values (as UTF-8 bytes)."""
    # surrogatepass: a lone surrogate in a JSON body is a wrong credential, not a crash
    user_ok = hmac.compare_digest(user.encode("utf-8", "surrogatepass"), want_user.encode())
    password_ok = hmac.compare_digest(
        password.encode("utf-8", "surrogatepass"), want_password.get_secret_value().encode()
    )
    return user_ok and password_ok


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _jwt(key: bytes, claims: dict[str, Any]) -> str:
    """A compact JWS (RFC 7515) signed HS256 with the sandbox's key; clients need not verify."""
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"
