"""An open-loop load generator for the receiver: requests are due at a fixed rate whatever
happened before, wait in a queue for one of the keep-alive connections, and their latency
counts from when they were due, so a stall shows as latency, not as a slower rate (no
coordinated omission). Used by ``soak.py``."""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reliability.faults.wire import HEAD_END

NS = 1_000_000_000


@dataclass
class Requests:
    """Requests made as they are sent: a fresh event (new ``eventId``, a time within the last
    7 days, ~20% opt-ins) for one of ``numbers`` numbers, each always in the same form
    (``(202) 555-0123``, ``+1 202-555-0123`` or ``tel:+1-202-555-0123`` by number), so the
    receiver's phone-normalisation cache (bounded, 65,536 entries a worker) holds them all
    after the warm-up and does not grow through the measured window; ~2% are a number that
    does not exist (expected 422) and ~5% repeat a recent request byte for byte (duplicates)."""

    port: int
    bearer: str
    numbers: int
    rng: random.Random
    recent: list[tuple[bytes, int]] = field(default_factory=list)

    def make(self, serial: int) -> tuple[bytes, int]:
        """The request and the status it must get."""
        rng = self.rng
        if self.recent and rng.random() < 0.05:
            return rng.choice(self.recent)
        n = rng.randrange(self.numbers)
        phone = FORMS[n % len(FORMS)].format(n=f"{n:04d}")
        expected = 202
        if rng.random() < 0.02:
            phone, expected = "(000) 555-0100", 422
        body = json.dumps(
            {
                "phoneNumber": phone,
                "eventName": "optIn" if rng.random() < 0.2 else "optOut",
                "timestamp": int(time.time() * 1000) - rng.randrange(1_000, 7 * 86_400_000),
                "eventId": f"soak-{serial}",
            }
        ).encode()
        request = self.head() + str(len(body)).encode() + HEAD_END + body
        self.recent = [*self.recent[-99:], (request, expected)]
        return request, expected

    def head(self) -> bytes:
        return (
            f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Authorization: Bearer {self.bearer}\r\nContent-Type: application/json\r\n"
            "Content-Length: "
        ).encode()


FORMS = ("(202) 555-{n}", "+1 202-555-{n}", "tel:+1-202-555-{n}")


@dataclass
class Tally:
    """Latencies (ns, from when each request was due) and outcomes, per sample interval."""

    warm_ns: int
    latencies: list[int] = field(default_factory=list)
    interval: list[int] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    offered: int = 0

    def record(self, due_ns: int, status: int, expected: int) -> None:
        done = time.monotonic_ns()
        if done < self.warm_ns:
            if status != expected:
                self.errors[f"warmup_status_{status}"] += 1
            return
        self.latencies.append(done - due_ns)
        self.interval.append(done - due_ns)
        self.statuses[str(status)] += 1
        if status != expected:
            self.errors[f"status_{status}_expected_{expected}"] += 1


def p99_ms(values: list[int]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)] / 1e6, 2)


async def connection(
    port: int, queue: asyncio.Queue[tuple[int, int]], requests: Requests, tally: Tally
) -> None:
    """One keep-alive connection: take the next due request, send it, read the answer."""
    streams = None
    while True:
        index, due_ns = await queue.get()
        try:
            if streams is None:
                streams = await asyncio.open_connection("127.0.0.1", port)
            reader, writer = streams
            request, expected = requests.make(index)
            writer.write(request)
            head = await reader.readuntil(HEAD_END)
            at = head.lower().find(b"\r\ncontent-length:")
            length = int(head[at + 17 : head.index(b"\r\n", at + 2)])
            await reader.readexactly(length)
            tally.record(due_ns, int(head[9:12]), expected)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            tally.errors[f"transport:{type(exc).__name__}"] += 1
            if streams is not None:
                streams[1].close()
            streams = None


async def offer(
    queue: asyncio.Queue[tuple[int, int]], rate: float, start_ns: int, end_ns: int, tally: Tally
) -> None:
    """Put each request in the queue when it is due (open loop)."""
    issued = 0
    while (now := time.monotonic_ns()) < end_ns:
        due = int((now - start_ns) * rate / NS)
        for index in range(issued, due):
            queue.put_nowait((index, start_ns + index * NS // int(rate)))
        tally.offered += max(0, due - issued)
        issued = max(issued, due)
        await asyncio.sleep(0.002)


async def sample(
    rss: Callable[[], float], waiting: Callable[[], int], tally: Tally, end_ns: int, every_s: float
) -> list[dict[str, Any]]:
    """RSS, the interval's p99 and the requests due but waiting for a connection, every
    ``every_s`` until ``end_ns``."""
    samples = []
    started = time.monotonic_ns()
    while time.monotonic_ns() < end_ns:
        await asyncio.sleep(every_s)
        now = time.monotonic_ns()
        samples.append(
            {
                "t_s": round((now - started) / NS, 1),
                "warm": now >= tally.warm_ns,
                "rss_mb": round(rss(), 1),
                "p99_ms": p99_ms(tally.interval),
                "answers": len(tally.interval),
                "waiting": waiting(),
            }
        )
        tally.interval = []
    return samples
