"""MkDocs hook: adds the reference pages generated from the code (``dnc_sync.reference``)."""

from __future__ import annotations

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

from dnc_sync.reference import pages


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add configuration.md, cli.md and http-api.md; a hand-written file of the same name
    is an error (it would hide the generated one)."""
    for name, content in pages().items():
        if files.get_file_from_path(name) is not None:
            raise PluginError(f"docs/{name} is generated from the code: delete the file")
        files.append(File.generated(config, name, content=content))
    return files
