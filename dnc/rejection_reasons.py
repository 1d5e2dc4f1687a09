"""Why a request or import row was refused, as a count key: ``field:reason`` per problem the
refusal lists, ``<error>:<check that failed>`` for an authentication refusal, else its
``error``. The store counts refusals by these keys as it keeps them (``RedisKeys.rejections``),
so the counts outlive the streams, which the archive trims."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any


def rejection_reasons(entry: Mapping[str, str]) -> list[str]:
    """The count keys of one rejected-stream entry (text fields)."""
    problems = _problems(entry.get("detail", ""))
    if problems:
        return [f"{p.get('field')}:{p.get('reason')}" for p in problems]
    if "authReason" in entry:
        return [f"{entry.get('error', 'unauthorized')}:{entry['authReason']}"]
    return [entry.get("error", "unknown")]


def count_rejections(entries: Iterable[Mapping[Any, Any]]) -> Counter[str]:
    """Count rejected-stream entries (field dicts, bytes or str keys) by reason
    (``rejection_reasons``)."""
    counts: Counter[str] = Counter()
    for raw in entries:
        counts.update(rejection_reasons({_text(k): _text(v) for k, v in raw.items()}))
    return counts


def _problems(detail: str) -> list[dict[str, Any]]:
    try:
        parsed = json.loads(detail)
    except ValueError:
        return []
    if isinstance(parsed, list):
        return [p for p in parsed if isinstance(p, dict)]
    return []


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
