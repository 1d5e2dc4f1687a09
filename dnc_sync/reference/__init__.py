"""Reference pages of the documentation site, generated from the code at build time so they
cannot drift from it: settings (``configuration.md``), commands (``cli.md``) and the
receiver's OpenAPI document (``http-api.md``). ``docs/_hooks/reference.py`` adds them to the
MkDocs build; nothing here imports MkDocs.
"""

from __future__ import annotations

from dnc_sync.reference.cli import cli_page
from dnc_sync.reference.configuration import configuration_page
from dnc_sync.reference.http_api import http_api_page


def pages() -> dict[str, str]:
    """Each generated page's file name under docs/ and its Markdown."""
    return {
        "configuration.md": configuration_page(),
        "cli.md": cli_page(),
        "http-api.md": http_api_page(),
    }
