"""HTTP/1.1 on raw asyncio streams: a keep-alive client that posts webhook events (fast
enough to drive thousands of requests a second from one process, and it keeps every
response header, ``Retry-After`` included), and a recording proxy in front of the sandbox's
CXone API, so a script sees each API call start and end as the sync flow makes it.

Both speak only what the receiver, the sandbox and httpx send here: ``Content-Length``
bodies (no chunked transfer), one request in flight per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reliability.faults.oracle import EventFactory, Sent

HOST = "127.0.0.1"
HEAD_END = b"\r\n\r\n"


@dataclass(frozen=True, slots=True)
class Answer:
    """A response: ``status``, lower-case ``headers`` and ``body``."""

    status: int
    headers: dict[str, str]
    body: bytes


def _headers(head: bytes) -> tuple[str, dict[str, str]]:
    """The start line and the lower-case headers of a message head."""
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return lines[0], headers


async def read_message(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    """One message (start line, headers, ``Content-Length`` body); ``IncompleteReadError``
    at EOF."""
    head = await reader.readuntil(HEAD_END)
    start, headers = _headers(head)
    length = int(headers.get("content-length", "0"))
    return start, headers, (await reader.readexactly(length) if length else b"")


class Client:
    """One keep-alive connection to ``port`` that posts JSON bodies with a bearer token;
    reconnects when the server closed it. ``OSError``/``IncompleteReadError`` propagate."""

    def __init__(self, port: int, bearer: str, path: str = "/v1/events") -> None:
        self._head = (
            f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: Bearer {bearer}\r\n"
            "Content-Type: application/json\r\nUser-Agent: dnc-chaos\r\nContent-Length: "
        ).encode()
        self._port = port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, body: bytes, timeout_s: float = 30.0) -> Answer:
        """POST ``body``; the answer (the connection is dropped on any error)."""
        try:
            async with asyncio.timeout(timeout_s):
                if self._streams is None:
                    self._streams = await asyncio.open_connection(HOST, self._port)
                reader, writer = self._streams
                writer.write(self._head + str(len(body)).encode() + HEAD_END + body)
                start, headers, data = await read_message(reader)
        except BaseException:
            await self.close()
            raise
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return Answer(int(start[9:12]), headers, data)

    async def close(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def post(client: Client, event: Sent) -> Answer | None:
    """Post ``event`` once, noting the answer on it; ``None`` on a transport error."""
    event.attempts += 1
    event.sent_at_s = time.monotonic()
    try:
        answer = await client.post(event.body())
    except (OSError, asyncio.IncompleteReadError, TimeoutError):
        event.status = event.outcome = None
        return None
    finally:
        event.answered_at_s = time.monotonic()
    event.status = answer.status
    with contextlib.suppress(ValueError, AttributeError):
        event.outcome = json.loads(answer.body).get("status")
    return answer


async def send_at_rate(
    port: int,
    bearer: str,
    factory: EventFactory,
    rate_per_s: float,
    stop: asyncio.Event,
    sent: list[Sent],
) -> None:
    """Post ``factory``'s events to the receiver on ``port`` at ``rate_per_s`` a second over
    one connection until ``stop`` (a late one is sent at once), appending each to ``sent``."""
    client = Client(port, bearer)
    started, count = time.monotonic(), 0
    try:
        while not stop.is_set():
            event = factory.make()
            sent.append(event)
            await post(client, event)
            count += 1
            delay = started + count / rate_per_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
    finally:
        await client.close()


async def send_all(port: int, bearer: str, events: list[Sent], connections: int) -> None:
    """Post every one of ``events`` to the receiver on ``port`` over ``connections``
    connections at once (an answer is noted on each event)."""
    queue = iter(events)

    async def worker() -> None:
        client = Client(port, bearer)
        try:
            for event in queue:
                await post(client, event)
        finally:
            await client.close()

    await asyncio.gather(*(worker() for _ in range(connections)))


@dataclass
class Call:
    """One API call through the proxy: ``method``, ``path``, ``started_s`` and ``ended_s``
    (monotonic; 0 while in flight), ``status``; ``write``: a DNC-record POST or DELETE."""

    method: str
    path: str
    started_s: float
    write: bool
    ended_s: float = 0.0
    status: int = 0


@dataclass
class Proxy:
    """Forwards 127.0.0.1:``port`` to the sandbox at ``upstream_port``, recording every call
    in ``calls``. A call ends when its answer has been handed to the client; if the client
    died meanwhile (a killed sync run), the call still ends when the sandbox answers, so
    ``in_flight`` says exactly what reached the sandbox and is not answered yet.
    ``changed`` is notified on every start and end. Each connection's task is kept in
    ``_tasks``: asyncio holds a served connection's task only weakly once its client has
    gone, and the upstream stream reader only through that task, so a call whose client gave
    up would otherwise be garbage-collected before the sandbox answers it (never ending)."""

    upstream_port: int
    port: int = 0
    calls: list[Call] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, HOST, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    def count(self, since: int, match: Callable[[Call], bool]) -> int:
        """How many calls from index ``since`` on match."""
        return sum(1 for call in self.calls[since:] if match(call))

    def in_flight(self, writes_only: bool = True) -> int:
        return self.count(0, lambda c: c.ended_s == 0 and (c.write or not writes_only))

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until ``predicate()`` holds (checked on each change); false on timeout."""
        async with self.changed:
            try:
                await asyncio.wait_for(self.changed.wait_for(predicate), timeout_s)
            except TimeoutError:
                return False
        return True

    async def _note(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        up_reader, up_writer = await asyncio.open_connection(HOST, self.upstream_port)
        try:
            while True:
                await self._forward_one(reader, up_reader, up_writer, writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            for stream in (writer, up_writer):
                stream.close()
                with contextlib.suppress(OSError):
                    await stream.wait_closed()

    async def _forward_one(
        self,
        reader: asyncio.StreamReader,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
        writer: asyncio.StreamWriter,
    ) -> None:
        head = await reader.readuntil(HEAD_END)
        start, headers = _headers(head)
        length = int(headers.get("content-length", "0"))
        body = await reader.readexactly(length) if length else b""
        method, path = [*start.split(" "), "", ""][:2]
        write = method in ("POST", "DELETE") and "/dnc-groups/" in path
        call = Call(method, path.split("?")[0], time.monotonic(), write)
        self.calls.append(call)
        await self._note()
        up_writer.write(head + body)
        await up_writer.drain()
        answer_head = await up_reader.readuntil(HEAD_END)
        answer_start, answer_headers = _headers(answer_head)
        size = int(answer_headers.get("content-length", "0"))
        answer = await up_reader.readexactly(size) if size else b""
        call.status = int(answer_start[9:12])
        try:
            writer.write(answer_head + answer)
            await writer.drain()
        finally:
            call.ended_s = time.monotonic()
            await self._note()
