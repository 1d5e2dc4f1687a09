"""One request as handlers see it, one answer as they give it, and small parsing helpers.

Handlers are plain functions ``(Sandbox, Request) -> Response`` with no ``await``: the app
does every sleep (latency, faults) before calling one, so a handler's state change never
interleaves with another request's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from pydantic_core import from_json

Headers = tuple[tuple[bytes, bytes], ...]


class BadRequest(Exception):
    """The request cannot be read; ``str(exc)`` says why (safe to echo)."""


@dataclass(frozen=True, slots=True)
class Request:
    """``method``, ``path``, path ``params`` (from the route pattern), ``query`` (every value
    of each name), lower-case ``headers``, the whole ``body``, and ``base_url``
    (``http://<Host header>``)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[bytes, bytes]
    body: bytes
    base_url: str
    params: dict[str, str] = field(default_factory=dict)

    def header(self, name: bytes) -> bytes | None:
        """The value of header ``name`` (lower-case), or ``None``."""
        return self.headers.get(name)

    def query_value(self, name: str) -> str | None:
        """The single value of query parameter ``name``; ``BadRequest`` when given twice."""
        values = self.query.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise BadRequest(f"query parameter {name} is given more than once")
        return values[0]

    def query_int(self, name: str, default: int, low: int, high: int) -> int:
        """Query parameter ``name`` as an integer in ``[low, high]`` (``default`` when absent);
        ``BadRequest`` otherwise."""
        text = self.query_value(name)
        if text is None:
            return default
        if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
            raise BadRequest(f"{name} must be an integer from {low} to {high}")
        return int(text)

    def json(self) -> Any:
        """The body as JSON; ``BadRequest`` when it is not valid JSON."""
        try:
            return from_json(self.body)
        except ValueError as exc:
            raise BadRequest("body is not valid JSON") from exc


@dataclass(frozen=True, slots=True)
class Response:
    """A complete JSON answer: ``status``, ``body`` (serialised as JSON), extra ``headers``."""

    status: int
    body: object
    headers: Headers = ()


def error(status: int, code: str, message: str, headers: Headers = ()) -> Response:
    """The sandbox's own error shape: ``{"error": code, "message": message}``."""
    return Response(status, {"error": code, "message": message}, headers)


def parse_query(query_string: bytes) -> dict[str, list[str]]:
    """Decode a URL query string (``+`` is a space, ``%XX`` escapes, blanks kept)."""
    return parse_qs(query_string.decode("latin-1"), keep_blank_values=True)
