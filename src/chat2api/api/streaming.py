"""A streamed HTTP response that stops its body as soon as the client leaves.

Starlette's ``StreamingResponse`` (on servers speaking ASGI spec 2.3, as
uvicorn does) runs every stream inside an anyio task group: a second task
for the body, a task to listen for the disconnect, two cancel scopes and
their bookkeeping, all kept for the life of the stream. With a thousand
open streams that is a good part of the process's memory and of the CPU
spent per chunk.

:class:`EventStream` sends the body from the request's own task and keeps
one small watcher task per stream: it waits for the client's
``http.disconnect`` and then cancels the request task, so the body
generator is closed (and with it the upstream transfer) at once, even while
the upstream is silent. A cancellation the response caused itself ends the
response quietly; any other cancellation (server shutdown) propagates.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

__all__ = ["EventStream"]


async def _until_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


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

        def client_left(watcher: asyncio.Future[None]) -> None:
            # Also scheduled when the client's disconnect message comes right
            # after a complete response: then there is nothing to stop.
            nonlocal left
            if streaming and not watcher.cancelled() and watcher.exception() is None:
                left = True
                task.cancel()

        watcher = asyncio.ensure_future(_until_disconnect(receive))
        watcher.add_done_callback(client_left)
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
            watcher.remove_done_callback(client_left)
            watcher.cancel()
            aclose = getattr(body, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
