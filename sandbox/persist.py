"""Keeping the sandbox's tenant data (DNC group records, outbound contacts) and its write
journal across restarts.

A real tenant keeps its DNC lists when our service restarts; so does the sandbox when
``DNC_SANDBOX_STATE_FILE`` is set, or a restarted local stack would see an empty DNC group
while Redis holds those numbers as applied. The write journal (``sandbox.journal``) is kept
with it, so a history read after a restart is whole; a file written before the journal
existed restores with an empty one. Tokens, counters and fault settings are not kept: a
restart behaves like a new process for them. The file is JSON, replaced atomically.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from sandbox.journal import WriteJournal
from sandbox.state import Contact, DncGroup, DncRecord, SandboxState

FORMAT = 1
"""Version of the file layout; a file of another version is refused."""


class StateFileError(ValueError):
    """The state file cannot be read as a sandbox state (``str(exc)`` says why)."""


def dump(state: SandboxState) -> dict[str, Any]:
    """The persistent part of ``state`` as JSON-ready data (times in epoch seconds, UTC)."""
    return _tenant(state) | {"journal": state.journal.dump()}


def changes(state: SandboxState) -> object:
    """A cheap value that differs whenever ``dump(state)`` would: the tenant data and the
    journal's position (entries are only ever appended), not every journal entry."""
    journal = state.journal
    return _tenant(state), journal.next_seq, journal.dropped, len(journal.entries)


def _tenant(state: SandboxState) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "nextRecord": state.next_record,
        "groups": {
            group_id: {
                "active": [_record(r) for r in group.active.values()],
                "expired": [_record(r) for r in group.expired],
            }
            for group_id, group in state.groups.items()
        },
        "contacts": [_contact(c) for c in state.contacts.values()],
    }


def restore(data: dict[str, Any], group_ids: list[str]) -> SandboxState:
    """A state with the groups ``group_ids`` filled from ``data`` (``dump``'s shape); groups
    in the file that are no longer configured are left out. Raises ``StateFileError``."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise StateFileError(f"not a sandbox state file of format {FORMAT}")
    state = SandboxState.empty(group_ids)
    try:
        state.next_record = int(data["nextRecord"])
        for group_id, saved in data["groups"].items():
            if group_id not in state.groups:
                continue
            group = DncGroup(group_id)
            for raw in saved["active"]:
                record = DncRecord(**raw)
                group.active[record.phone_number] = record
            group.expired = [DncRecord(**raw) for raw in saved["expired"]]
            state.groups[group_id] = group
        for raw in data["contacts"]:
            contact = Contact(**raw)
            state.contacts[contact.phone_number] = contact
        if "journal" in data:  # absent in files written before the journal existed
            state.journal = WriteJournal.restore(data["journal"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StateFileError(f"sandbox state file is damaged: {exc!r}") from None
    return state


def save(state: SandboxState, path: Path) -> None:
    """Write ``state`` to ``path`` atomically (temporary file in the same folder, fsync,
    rename). Raises ``OSError``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(dump(state), out, separators=(",", ":"))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load(path: Path, group_ids: list[str]) -> SandboxState:
    """The state kept in ``path``, or an empty one when the file does not exist yet.
    Raises ``StateFileError`` (damaged file) or ``OSError`` (unreadable)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return SandboxState.empty(group_ids)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise StateFileError(f"sandbox state file is not JSON: {exc}") from None
    return restore(data, group_ids)


def _record(record: DncRecord) -> dict[str, Any]:
    return {
        "phone_number": record.phone_number,
        "expires_at_s": record.expires_at_s,
        "created_at_s": record.created_at_s,
    }


def _contact(contact: Contact) -> dict[str, Any]:
    return {
        "record_id": contact.record_id,
        "phone_number": contact.phone_number,
        "do_not_call": contact.do_not_call,
        "opt_out_date": contact.opt_out_date,
        "custom_list_ids": list(contact.custom_list_ids),
        "created_at_s": contact.created_at_s,
        "updated_at_s": contact.updated_at_s,
    }
