"""Where ``dnc-sync audit export`` writes: standard output, or a private file (mode 0600,
never through a symbolic link, removed when the export fails), with a progress bar of the
rows on standard error."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dnc.audit.export_format import Row
from dnc_sync.audit_errors import CommandFailed

PROGRESS_STEP = 1_000
"""Rows between two updates of the progress bar."""


def counted(rows: Iterable[Row], advance: Callable[[int], None]) -> Iterator[Row]:
    """``rows``, moving the progress bar every ``PROGRESS_STEP`` rows and at the end."""
    done = 0
    for done, row in enumerate(rows, 1):
        yield row
        if done % PROGRESS_STEP == 0:
            advance(PROGRESS_STEP)
    advance(done % PROGRESS_STEP)


@contextlib.contextmanager
def progress_bar(total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar of ``total`` rows on standard error, shown only on a terminal; yields
    the function that advances it by a number of rows."""
    err = Console(stderr=True)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not err.is_terminal,
    )
    task = bar.add_task("exporting", total=total)
    with bar:
        yield lambda rows: bar.advance(task, rows)


@contextlib.contextmanager
def export_output(path: Path | None) -> Iterator[TextIO]:
    """Standard output (``None``), or ``path`` as a private file: created or truncated with
    mode 0600 (also when it existed with another), never through a symbolic link, only a
    regular file; synced to disk at the end, removed when the block raises."""
    if path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    stream = open_private(path)
    try:
        yield stream
        stream.flush()
        os.fsync(stream.fileno())
    except BaseException:
        stream.close()
        path.unlink(missing_ok=True)
        raise
    else:
        stream.close()


def open_private(path: Path) -> TextIO:
    """``path`` opened for UTF-8 text (``newline=""``), mode 0600. Raises ``CommandFailed``."""
    with contextlib.suppress(FileNotFoundError):
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            raise CommandFailed(f"{path} is a symbolic link: refusing to write through it")
        if not stat.S_ISREG(mode):
            raise CommandFailed(f"{path} is not a regular file (- writes to standard output)")
    flags = os.O_CREAT | os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # replaced by a link since the check
            raise CommandFailed(
                f"{path} is a symbolic link: refusing to write through it"
            ) from None
        raise CommandFailed(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, 0o600)  # a file that existed keeps its mode through O_TRUNC
        return os.fdopen(fd, "w", encoding="utf-8", newline="")
    except BaseException:
        os.close(fd)
        raise
