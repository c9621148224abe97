"""A fast webhook receiver for benchmarks and the soak: counts, acknowledges, nothing else.

A separate process (``python bench/receiver.py --port-file F``): asyncio, HTTP/1.1 keep-alive,
pipelining-safe, one 200 per request. It counts requests and events (a JSON array body counts
its elements) and, with ``--unique FIELD.PATH``, the distinct values of that field (the soak
checks every row arrived). ``--flap UP,DOWN`` answers 503 for DOWN seconds after every UP
seconds (a flapping sink). ``--latency-log`` records commit-to-arrival latency of each event
(needs ``commit_time`` in the events). ``--delay SECONDS`` holds every answer that long (a
receiver that takes time to answer, as real webhook endpoints do; answers still go out in
order). ``GET /stats`` answers the counters as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import datetime

import orjson

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
UNAVAILABLE = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"


class Stats:
    def __init__(self, unique: list[str] | None, flap: tuple[float, float] | None) -> None:
        self.requests = 0
        self.events = 0
        self.refused = 0
        self.unique_path = unique
        self.unique: set = set()
        self.flap = flap
        self.started = time.monotonic()
        self.latencies: list[float] = []
        self.record_latency = False
        self.first_at: float | None = None
        self.last_at: float | None = None

    def failing(self) -> bool:
        if self.flap is None:
            return False
        up, down = self.flap
        return (time.monotonic() - self.started) % (up + down) >= up

    def take(self, body: bytes) -> None:
        now = time.time()
        parsed = orjson.loads(body) if body else []
        events = parsed if isinstance(parsed, list) else [parsed]
        self.events += len(events)
        self.first_at = self.first_at or now
        self.last_at = now
        for event in events:
            if self.unique_path is not None:
                value = event
                for key in self.unique_path:
                    value = value[key]
                self.unique.add(value)
            if self.record_latency:
                committed = datetime.fromisoformat(event["commit_time"].replace("Z", "+00:00"))
                self.latencies.append(now - committed.timestamp())

    def as_json(self) -> bytes:
        return orjson.dumps(
            {
                "requests": self.requests,
                "events": self.events,
                "refused": self.refused,
                "unique": len(self.unique),
                "first_at": self.first_at,
                "last_at": self.last_at,
                "latencies": self.latencies,
            }
        )


class Connection(asyncio.Protocol):
    def __init__(self, stats: Stats, delay: float = 0.0) -> None:
        self.stats = stats
        self.delay = delay
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out = bytearray()
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                break
            head = bytes(self.buffer[:head_end]).lower()
            length = 0
            marker = head.find(b"content-length:")
            if marker >= 0:
                line_end = head.find(b"\r\n", marker)
                length = int(head[marker + 15 : line_end if line_end >= 0 else None])
            total = head_end + 4 + length
            if len(self.buffer) < total:
                break
            body = bytes(self.buffer[head_end + 4 : total])
            del self.buffer[:total]
            out += self.answer(head, body)
        if out and self.transport is not None:
            if self.delay:
                asyncio.get_running_loop().call_later(self.delay, self._write, bytes(out))
            else:
                self.transport.write(bytes(out))

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def answer(self, head: bytes, body: bytes) -> bytes:
        if head.startswith(b"get /stats"):
            payload = self.stats.as_json()
            return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(payload), payload)
        if head.startswith(b"head"):
            return OK
        self.stats.requests += 1
        if self.stats.failing():
            self.stats.refused += 1
            return UNAVAILABLE
        self.stats.take(body)
        return OK


async def serve(args: argparse.Namespace) -> None:
    flap = tuple(float(x) for x in args.flap.split(",")) if args.flap else None
    unique = args.unique.split(".") if args.unique else None
    stats = Stats(unique, flap)  # type: ignore[arg-type]
    stats.record_latency = args.latency_log
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(stats, args.delay), "127.0.0.1", args.port)
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        with open(args.port_file, "w") as handle:
            handle.write(str(port))
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    parser.add_argument("--unique", help="dotted path of a field whose distinct values to count")
    parser.add_argument("--flap", help="UP,DOWN seconds: answer 503 for DOWN after every UP")
    parser.add_argument("--latency-log", action="store_true")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds each answer waits")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
