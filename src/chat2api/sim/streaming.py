"""ASGI responses that the ordinary Starlette ones cannot express.

`EventStream` writes pre-rendered SSE records, notices a client that went
away (counted as a cancelled stream) and can end a stream early, cleanly or by
aborting the connection. `ConnectionReset` aborts the TCP connection before
any response byte: it needs the server's transport, which `SimApp` passes down
in the scope (see `transport_of`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable
from typing import Any

from starlette.types import Receive, Scope, Send

from chat2api.sim.state import Stats

EXTENSION = "chat2api.sim"
DONE = b"data: [DONE]\n\n"
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def transport_of(scope: Scope) -> asyncio.Transport | None:
    """The server's transport for this request, when the server is uvicorn."""
    raw_send = scope.get("extensions", {}).get(EXTENSION, {}).get("raw_send")
    owner = getattr(raw_send, "__self__", None)
    transport = getattr(owner, "transport", None)
    return transport if isinstance(transport, asyncio.Transport) else None


async def abort_connection(scope: Scope) -> bool:
    """Reset the client's TCP connection (RST, not FIN); False when it is not reachable."""
    transport = transport_of(scope)
    if transport is None:
        return False
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # The peer may have closed already; abort() below is then all we can do.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    # Let the server run connection_lost() so it does not answer 500 on our behalf.
    await asyncio.sleep(0)
    return True


class ConnectionReset:
    """A "response" that resets the connection instead of answering."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Abort; fall back to an empty 502 on servers that hide their transport."""
        if await abort_connection(scope):
            return
        await send({"type": "http.response.start", "status": 502, "headers": []})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class EventStream:
    """A `text/event-stream` response made of pre-rendered records."""

    def __init__(
        self,
        records: list[bytes],
        stats: Stats,
        *,
        delay: float = 0.0,
        ending: str = "complete",
        stop: asyncio.Event | None = None,
        on_end: Callable[[str], None] | None = None,
    ) -> None:
        """`ending` is "complete", "close" (clean EOF without [DONE]) or "abort" (TCP reset).

        `stop`, when set, ends the stream at the next record boundary with
        `data: [DONE]` (E3 `stop_conversation`). `on_end` is told how the stream
        ended: "completed", "broken" (the planned close/abort), "cancelled"
        (the client went away) or "stopped".
        """
        self.records = records
        self.stats = stats
        self.delay = delay
        self.ending = ending
        self.stop = stop
        self.on_end = on_end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Write the records, watching for the client going away."""
        headers = list(SSE_HEADERS)
        if self.ending != "complete":
            headers.append((b"connection", b"close"))
        gone = False

        async def watch() -> None:
            nonlocal gone
            while True:
                message: dict[str, Any] = dict(await receive())
                if message["type"] == "http.disconnect":
                    gone = True
                    return

        self.stats.streams_started += 1
        watcher = asyncio.ensure_future(watch())
        stopper = asyncio.ensure_future(self.stop.wait()) if self.stop is not None else None
        waits = (watcher,) if stopper is None else (watcher, stopper)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            sent = 0
            for record in self.records:
                if gone or (self.stop is not None and self.stop.is_set()):
                    break
                await send({"type": "http.response.body", "body": record, "more_body": True})
                sent += 1
                if self.delay:  # a client leaving (or a stop) ends the wait at once
                    await asyncio.wait(waits, timeout=self.delay)
            if sent < len(self.records):
                # Gone before the last record: a client that hangs up right after
                # [DONE] still counts as completed.
                self.stats.streams_cancelled += 1
                if not gone and self.stop is not None and self.stop.is_set():
                    self._ended("stopped")
                    await send({"type": "http.response.body", "body": DONE, "more_body": False})
                    return
                self._ended("cancelled")
                return
            # Count before the last write: a client that sees EOF may read the stats at once.
            if self.ending == "complete":
                self.stats.streams_completed += 1
                self._ended("completed")
            else:
                self.stats.streams_truncated += 1
                self._ended("broken")
            if self.ending == "abort" and await abort_connection(scope):
                return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()
            if stopper is not None:
                stopper.cancel()

    def _ended(self, outcome: str) -> None:
        if self.on_end is not None:
            self.on_end(outcome)
