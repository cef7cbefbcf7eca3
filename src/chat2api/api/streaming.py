"""A streamed HTTP response that stops its body as soon as the client leaves.

Starlette's ``StreamingResponse`` (on servers speaking ASGI spec 2.3, as
uvicorn does) runs every stream inside an anyio task group: a second task
for the body, a task to listen for the disconnect, two cancel scopes and
their bookkeeping, all kept for the life of the stream. With a thousand
open streams that is a good part of the process's memory and of the CPU
spent per chunk.

:class:`EventStream` sends the body from the request's own task and keeps
one watcher task per stream, the server's own ``receive()``: once it
returns the client's ``http.disconnect``, a callback cancels the request
task, so the body
generator is closed (and with it the upstream transfer) at once, even while
the upstream is silent. A cancellation the response caused itself ends the
response quietly; any other cancellation (server shutdown) propagates.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

__all__ = ["EventStream"]


class EventStream(Response):
    """Stream ``body`` (``text/event-stream`` unless told otherwise), chunk by chunk."""

    def __init__(
        self,
        body: AsyncIterator[bytes],
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str = "text/event-stream",
    ) -> None:
        self.body_iterator = body
        self.status_code = status_code
        self.media_type = media_type
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - ASGI servers run apps in tasks
            raise RuntimeError("EventStream must run inside an asyncio task")
        streaming, left = True, False
        watcher: asyncio.Future[Message]

        def watch() -> asyncio.Future[Message]:
            # The server's own receive() runs as the watcher: no coroutine of
            # ours waits beside it for the whole stream.
            future = asyncio.ensure_future(receive())
            future.add_done_callback(received)
            return future

        def received(future: asyncio.Future[Message]) -> None:
            # Also scheduled when the client's disconnect message comes right
            # after a complete response: then there is nothing to stop.
            nonlocal left, watcher
            if not streaming or future.cancelled() or future.exception() is not None:
                return
            if future.result()["type"] != "http.disconnect":
                watcher = watch()  # more of the request body: not a disconnect
                return
            left = True
            task.cancel()

        watcher = watch()
        body = self.body_iterator
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            self.raw_headers = []  # sent: not kept for the rest of the stream
            async for chunk in body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                del chunk  # not held while the next one is awaited
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            # Our own cancellation ends the response quietly: the client is
            # gone. Another one (shutdown) goes on.
            if not left or task.uncancel() > 0:
                raise
        finally:
            streaming = False
            watcher.remove_done_callback(received)
            watcher.cancel()
            aclose = getattr(body, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
