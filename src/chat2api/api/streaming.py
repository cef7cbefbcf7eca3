"""A streamed HTTP response that stops its body as soon as the client leaves.

Starlette's ``StreamingResponse`` (on servers speaking ASGI spec 2.3, as
uvicorn does) runs every stream inside an anyio task group: a second task
for the body, a task to listen for the disconnect, two cancel scopes and
their bookkeeping, all kept for the life of the stream. With a thousand
open streams that is a good part of the process's memory and of the CPU
spent per chunk.

:class:`EventStream` sends the body from the request's own task and keeps
one watcher task per stream, the server's own ``receive()``
(:class:`DisconnectWatch`): once it returns the client's
``http.disconnect``, a callback cancels the request task, so the body
generator is closed (and with it the upstream transfer) at once, even while
the upstream is silent. A cancellation the response caused itself ends the
response quietly; any other cancellation (server shutdown) propagates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

__all__ = ["DisconnectWatch", "EventStream", "cancel_on_disconnect"]

log = logging.getLogger(__name__)


class DisconnectWatch:
    """Cancels ``task`` once the client's ``http.disconnect`` arrives, until stopped.

    The server's own ``receive()`` runs as the watcher task: no coroutine of
    ours waits beside it for the whole stream. Once stopped it is not
    cancelled: the server answers the pending ``receive()`` with
    ``http.disconnect`` when the response is complete or the client is gone
    (ASGI), and a cancelled task would keep the server's request state
    alive in a reference cycle with its ``CancelledError`` until the next
    full collection. :meth:`stop` also breaks the one cycle this object
    forms while armed (it holds the future that holds its callback), so
    that a finished stream is freed at once, not by the collector.
    """

    __slots__ = ("_future", "_receive", "_task", "left")

    def __init__(self, receive: Receive, task: asyncio.Task[Any]) -> None:
        self._receive = receive
        self._task = task
        self._future: asyncio.Future[Message] | None = None
        self.left = False  # the client went away and the task was cancelled
        self._arm()

    def _arm(self) -> None:
        future = asyncio.ensure_future(self._receive())
        future.add_done_callback(self._received)
        self._future = future

    def _received(self, future: asyncio.Future[Message]) -> None:
        # Also called once the watch is stopped (the response is complete):
        # then there is nothing to cancel. An exception is always retrieved.
        if future.cancelled() or future.exception() is not None or future is not self._future:
            return
        if future.result()["type"] != "http.disconnect":
            self._arm()  # more of the request body: not a disconnect
            return
        self.left = True
        self._task.cancel()

    def stop(self) -> None:
        """No cancellation from now on (the pending ``receive()`` finishes on its own)."""
        self._future = None


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
        # A watch armed on the request's task before the response (the app's
        # direct routes): the stream stops it instead of arming a second one.
        self.watch: DisconnectWatch | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - ASGI servers run apps in tasks
            raise RuntimeError("EventStream must run inside an asyncio task")
        watch, self.watch = self.watch or DisconnectWatch(receive, task), None
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
            if not watch.left or task.uncancel() > 0:
                raise
        finally:
            watch.stop()
            aclose = getattr(body, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()


def cancel_on_disconnect(
    endpoint: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """``endpoint``, cancelled (upstream turn and account slot with it) if its client leaves.

    For routes that answer once, when done: the body is read first, then the
    request's ``receive()`` is watched until the endpoint returns.
    """

    async def watched(request: Request) -> Response:
        await request.body()  # kept by the request; the endpoint reads it again for free
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - ASGI servers run apps in tasks
            return await endpoint(request)
        watch = DisconnectWatch(request.receive, task)
        try:
            response = await endpoint(request)
        except asyncio.CancelledError:
            watch.stop()
            if not watch.left or task.uncancel() > 0:
                raise
            log.info("client left before the answer was ready: %s", request.url.path)
            return Response(status_code=400)  # nobody reads it
        watch.stop()
        if watch.left:  # gone just as the answer was ready: the cancellation is ours
            task.uncancel()
        return response

    return watched
