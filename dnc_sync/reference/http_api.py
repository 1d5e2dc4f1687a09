"""The HTTP API page (``http-api.md``): the receiver's endpoints and body schemas, read from
the OpenAPI document it serves (``receiver.openapi.build_document``), so the page and
``GET /openapi.json`` say the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dnc_sync.reference.markdown import code, heading, paragraphs, slug, table, text
from receiver.openapi import build_document

Document = dict[str, Any]
_REF_PREFIX = "#/components/schemas/"
_INTRO = """\
# HTTP API

The receiver's endpoints, from the OpenAPI 3.1 document it serves at `GET /openapi.json`
(load that into any OpenAPI tool for the full schemas). Its secrets are set in
[Configuration](configuration.md).

This page is generated from the receiver's code when the site is built."""


def operations(document: Document) -> Iterator[tuple[str, str, Document]]:
    """Each (path, METHOD, operation) of the document, in its order."""
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield path, method.upper(), operation


def _schema_link(ref: str) -> str:
    name = ref.removeprefix(_REF_PREFIX)
    return f"[{text(name)}](#{schema_anchor(name)})"


def schema_anchor(name: str) -> str:
    """The anchor of a component schema's section."""
    return "schema-" + slug(name)


def schema_type(schema: Document) -> str:
    """A JSON schema in a few words: ``string``, ``array of EventBody``, ``one of `a`, `b```,
    a link for a ``$ref``."""
    if "$ref" in schema:
        return _schema_link(schema["$ref"])
    if "enum" in schema:
        return "one of " + ", ".join(code(str(value)) for value in schema["enum"])
    if "const" in schema:
        return code(str(schema["const"]))
    for combiner, word in (("anyOf", " or "), ("oneOf", " or "), ("allOf", " and ")):
        if combiner in schema:
            return word.join(schema_type(part) for part in schema[combiner])
    kinds = schema.get("type", "any")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    words = [
        f"array of {schema_type(schema.get('items', {}))}" if k == "array" else k for k in kinds
    ]
    return " or ".join(words)


def _security(operation: Document) -> str:
    """Who may call: each alternative's schemes joined by +, alternatives by or."""
    alternatives = operation.get("security")
    if alternatives is None:
        return ""
    if not alternatives:
        return "**Authentication:** none."
    names = [" + ".join(code(name) for name in alternative) for alternative in alternatives]
    return "**Authentication:** " + " or ".join(names) + "."


def security_section(document: Document) -> str:
    """The authentication schemes operations name: where each one's credential goes."""
    rows = []
    for name, scheme in document.get("components", {}).get("securitySchemes", {}).items():
        if scheme.get("type") == "http":
            where = code(f"Authorization: {scheme.get('scheme', '').title()} ...")
        else:
            where = f"{text(scheme.get('in', ''))} {code(scheme.get('name', ''))}"
        rows.append([code(name), text(scheme.get("type", "")), where])
    body = table(["Scheme", "Kind", "Credential"], rows) if rows else "None."
    return heading(2, "Authentication", "authentication") + "\n\n" + body


def _parameters(operation: Document) -> str:
    rows = [
        [
            code(parameter["name"]),
            text(parameter["in"]),
            schema_type(parameter.get("schema", {})),
            "yes" if parameter.get("required") else "no",
            text(parameter.get("description", "")),
        ]
        for parameter in operation.get("parameters", [])
    ]
    header = ["Parameter", "In", "Type", "Required", "Description"]
    return "**Parameters**\n\n" + table(header, rows) if rows else ""


def _content(content: Document) -> str:
    """Media types with their schemas: ``application/json`` (EventBody), ..."""
    return ", ".join(
        f"{code(media)} ({schema_type(body['schema'])})" if body.get("schema") else code(media)
        for media, body in content.items()
    )


def _request_body(operation: Document) -> str:
    body = operation.get("requestBody")
    if body is None:
        return ""
    required = " (required)" if body.get("required") else ""
    return f"**Request body{required}:** {_content(body.get('content', {}))}."


def _responses(operation: Document) -> str:
    rows = [
        [code(status), text(response.get("description", "")), _content(response.get("content", {}))]
        for status, response in operation["responses"].items()
    ]
    return "**Responses**\n\n" + table(["Status", "Description", "Body"], rows)


def operation_section(path: str, method: str, operation: Document) -> str:
    """One operation: heading, summary, description, authentication, parameters, request
    body and every response status."""
    title = f"{method} {path}"
    parts = [
        heading(2, code(title), slug(title)),
        f"**{text(operation.get('summary', ''))}**" if operation.get("summary") else "",
        paragraphs(operation.get("description")),
        _security(operation),
        _parameters(operation),
        _request_body(operation),
        _responses(operation),
    ]
    return "\n\n".join(part for part in parts if part)


def _fields(schema: Document, prefix: str = "") -> Iterator[list[str]]:
    """Table rows of an object schema's properties, nested objects' as ``outer.inner``."""
    required = set(schema.get("required", []))
    for name, field in schema.get("properties", {}).items():
        yield [
            code(prefix + name),
            schema_type(field),
            "yes" if name in required else "no",
            text(field.get("description", "")),
        ]
        yield from _fields(field, f"{prefix}{name}.")


def schema_section(name: str, schema: Document) -> str:
    """One component schema: its description, then its fields or its type."""
    parts = [heading(3, text(name), schema_anchor(name)), paragraphs(schema.get("description"))]
    rows = [row for part in [schema, *schema.get("allOf", [])] for row in _fields(part)]
    if rows:
        bases = [_schema_link(part["$ref"]) for part in schema.get("allOf", []) if "$ref" in part]
        if bases:
            parts.append("The fields of " + ", ".join(bases) + ", and:")
        parts.append(table(["Field", "Type", "Required", "Description"], rows))
    else:
        parts.append("**Type:** " + (schema_type(schema) if schema else "any JSON value") + ".")
    return "\n\n".join(part for part in parts if part)


def http_api_page(document: Document | None = None) -> str:
    """The whole HTTP API page: every operation, then every component schema."""
    document = document or build_document()
    schemas = document.get("components", {}).get("schemas", {})
    sections = [security_section(document)]
    sections.extend(operation_section(*item) for item in operations(document))
    sections.append("## Schemas { #schemas }")
    sections.extend(schema_section(name, schema) for name, schema in schemas.items())
    return "\n\n".join([_INTRO, *sections]) + "\n"
