"""One chat turn against the upstream: open, retry before the first byte, decode.

``start_turn`` opens the upstream conversation and reads until the answer
has really begun (its first text, reasoning, or finish). Failures up to that
point are retried on a fresh attempt (next base URL / proxy, new sentinel
proof) when the error class says another attempt may succeed; nothing has
reached the client yet, so this is invisible. After that, ``Turn.events``
streams the rest; a failure there is surfaced to the client as such.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from curl_cffi import CurlError

from chat2api.errors import (
    Chat2APIError,
    PoolError,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from chat2api.pool.lease import AccountSource, Lease
from chat2api.protocol.errors import ProtocolError
from chat2api.protocol.events import Event, Metadata, StreamFailed, TextDelta
from chat2api.protocol.stream import ConversationDecoder
from chat2api.upstream.chatgpt import ChatGPTBackend, OpenedConversation
from chat2api.upstream.http import map_transport_errors
from chat2api.values import Credentials

log = logging.getLogger(__name__)

BodyBuilder = Callable[[Credentials], Awaitable[dict[str, Any]]]
BACKOFF_BASE = 0.1
BACKOFF_CAP = 2.0


def stream_error(event: StreamFailed) -> UpstreamUnavailable:
    """The error an in-stream failure record stands for."""
    code = f" ({event.code})" if event.code else ""
    return UpstreamUnavailable(
        f"The upstream reported an error in the stream{code}: {event.message}"
    )


_READING = map_transport_errors("reading the stream")  # holds no state: shared

MAX_RESUMES = 2
"""How many times one answer's dropped E3 stream is resumed before it fails."""


class AnswerBody:
    """The body of one upstream answer, resumed where E3 allows when it drops.

    When the connection breaks (or the body ends before the answer did) on
    an E3 stream that gave a ``resume_conversation_token``, the same turn is
    asked again from the records already decoded on (``f/conversation/resume``
    with that offset: the records of the uncut stream, its ``delta_encoding``
    included, but not the copy of it that heads a resumed body) and fed to
    the same decoder: nothing is lost or said twice.
    At most ``MAX_RESUMES`` times per answer; then the failure stands.
    """

    __slots__ = ("_backend", "_stopped", "chunks", "decoder", "opened", "resumes")

    def __init__(
        self, backend: ChatGPTBackend, opened: OpenedConversation, decoder: ConversationDecoder
    ) -> None:
        self._backend = backend
        self.opened = opened
        # The reply's chunks, read here rather than through ``opened.body`` (the
        # same chunks, the same errors): one async generator less to pass
        # through on every upstream event. A read that raises goes on in
        # ``after``.
        self.chunks = opened.response.aiter_bytes()
        self.decoder = decoder
        self.resumes = 0
        self._stopped = False

    async def next_chunk(self) -> bytes | None:
        """The next piece of the body, ``None`` at its end."""
        try:
            return await anext(self.chunks)
        except (StopAsyncIteration, CurlError) as exc:
            return await self.after(exc)

    async def after(self, stopped: StopAsyncIteration | CurlError) -> bytes | None:
        """``next_chunk`` once a read of ``chunks`` raised ``stopped``: resume, or end, or raise."""
        while True:
            if isinstance(stopped, StopAsyncIteration):
                if self.decoder.done or not await self._resume(None):
                    return None
            else:
                try:
                    with _READING:  # the transport failure, as the upstream error it stands for
                        raise stopped
                except UpstreamError as exc:
                    if not await self._resume(exc):
                        raise
            try:
                return await anext(self.chunks)
            except (StopAsyncIteration, CurlError) as exc:
                stopped = exc

    async def _resume(self, error: UpstreamError | None) -> bool:
        decoder = self.decoder
        conversation_id = decoder.conversation_id
        # The stream's resume_conversation_token says the upstream offers a resume.
        if self.opened.era != "e3" or conversation_id is None or decoder.resume_token is None:
            return False
        while self.resumes < MAX_RESUMES:
            self.resumes += 1
            offset = decoder.interrupted()
            log.warning(
                "upstream stream of conversation %s %s; resuming at record %d (%d/%d)",
                conversation_id,
                "ended early" if error is None else f"failed ({error.code})",
                offset,
                self.resumes,
                MAX_RESUMES,
            )
            try:
                resumed = await self._backend.resume(self.opened, conversation_id, offset)
            except UpstreamError as exc:
                error = exc
                continue
            await self.opened.aclose()
            self.opened = resumed
            self.chunks = resumed.response.aiter_bytes()
            return True
        return False

    async def aclose(self) -> None:
        """Abort the transfer if still running; an E3 turn left unfinished is stopped upstream."""
        await self.opened.aclose()
        conversation_id = self.decoder.conversation_id
        unfinished = self.opened.era == "e3" and not self.decoder.done
        # Closed twice (by the turn and by its events): stopped once.
        if unfinished and conversation_id is not None and not self._stopped:
            self._stopped = True
            self._backend.stop_soon(self.opened, conversation_id)


class Turn:
    """An upstream answer in progress, its first events already decoded."""

    def __init__(self, body: AnswerBody, head: list[Event], lease: Lease) -> None:
        self._body = body
        self._decoder = body.decoder
        self._lease = lease
        self.head = head
        self._read_head = False  # ``read`` gave the head
        self._ended = False  # ``read`` gave the events of the body's end

    @property
    def lease(self) -> Lease:
        """The account this answer runs on."""
        return self._lease

    @property
    def metadata(self) -> Metadata:
        """What the head revealed: conversation id, message id, served model slug."""
        merged: dict[str, str | None] = {}
        for event in self.head:
            if isinstance(event, Metadata):
                for key in ("conversation_id", "message_id", "model_slug"):
                    merged[key] = getattr(event, key) or merged.get(key)
        return Metadata(**merged)

    async def read(self) -> list[Event] | None:
        """The events of the next piece of the answer (the head first); ``None`` after the last.

        Raises ``UpstreamError`` on failure (the account's failure is
        recorded). One coroutine per upstream read, where ``events`` is an
        async generator the reader passes through once per event: the
        per-chunk path of a stream reads with this.
        """
        if not self._read_head:
            self._read_head = True
            return self.head
        if self._ended:
            return None
        decoder = self._decoder
        try:
            if decoder.done:
                chunk = None
            else:
                try:  # AnswerBody.next_chunk, one coroutine less per read
                    chunk = await anext(self._body.chunks)
                except (StopAsyncIteration, CurlError) as exc:
                    chunk = await self._body.after(exc)
            if chunk is not None:
                try:
                    events = decoder.feed(chunk)
                except ProtocolError as exc:
                    raise _unreadable(exc) from exc
                return coalesce_text(events) if len(events) > 1 else events
            self._ended = True
            return _decode(_close, decoder)
        except UpstreamError as exc:
            self._ended = True
            await self._lease.failed(exc)
            raise

    async def events(self) -> AsyncGenerator[Event, None]:
        """Every event of the answer, head first. Raises ``UpstreamError`` on failure.

        The consumer may stop early (an answer cut at ``max_tokens``); the
        account's use still counts as a success.
        """
        try:
            while (events := await self.read()) is not None:
                for event in events:
                    yield event
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Abort the upstream transfer if still running and give the account back."""
        try:
            await self._body.aclose()
        finally:
            await self._lease.release()

    async def succeeded(self) -> None:
        """Record that the account served this answer."""
        await self._lease.succeeded()


def _close(decoder: ConversationDecoder) -> list[Event]:
    return decoder.close()


def _unreadable(exc: ProtocolError) -> UpstreamUnavailable:
    return UpstreamUnavailable(f"The upstream stream was unreadable: {exc}")


def _decode(step: Any, chunk: Any) -> list[Event]:
    try:
        events: list[Event] = step(chunk)
    except ProtocolError as exc:
        raise _unreadable(exc) from exc
    return coalesce_text(events)


def coalesce_text(events: list[Event]) -> list[Event]:
    """``events`` with each run of adjacent ``TextDelta`` joined into one.

    What one read of the upstream body brings is decoded together, and its
    text records go on as one delta: the answer's pipeline (tool-call parser,
    link rewriting, ``max_tokens`` cut, an SSE chunk and a socket write for
    a stream) runs once per read rather than once per record. A stream whose
    upstream is slower than chat2api still gets one chunk per record; one
    that fell behind (a burst of streams, say) catches up in fewer, larger
    chunks instead of falling further behind. Every stage takes text in
    pieces of any size, so only the chunking changes, never the text.
    """
    if len(events) < 2:
        return events
    out: list[Event] = []
    run: list[str] = []
    for event in events:
        if type(event) is TextDelta:
            run.append(event.text)
            continue
        if run:
            out.append(TextDelta("".join(run)))
            run = []
        out.append(event)
    if run:
        out.append(TextDelta("".join(run)))
    return out


async def _read_head(body: AnswerBody) -> list[Event]:
    decoder = body.decoder
    head: list[Event] = []
    answered = False
    while (chunk := await body.next_chunk()) is not None:
        for event in _decode(decoder.feed, chunk):  # the whole chunk: none of it is lost
            if isinstance(event, StreamFailed) and not answered:
                raise stream_error(event)  # nothing answered yet: the turn may be retried
            head.append(event)  # a failure after answer text stays a mid-stream failure
            answered = answered or not isinstance(event, Metadata | StreamFailed)
        if answered:
            return head
        if decoder.done:
            break
    for event in _decode(_close, decoder):
        if isinstance(event, StreamFailed):
            raise stream_error(event)
        head.append(event)
    if not any(not isinstance(e, Metadata) for e in head):
        raise UpstreamUnavailable("The upstream ended the stream before answering.")
    return head


def most_informative(
    pool_error: PoolError | UpstreamRateLimited, attempt_error: UpstreamError | None
) -> Chat2APIError:
    """What a request ends with when the pool has no account left to retry on.

    The pool saying "no account" or "every other account is cooling" after an
    attempt failed describes the accounts not tried, not this request: the
    upstream's own failure (502, 504, 401) is the answer. Only when every
    attempt was a rate limit does the pool's 429 say more; its ``Retry-After``
    is then the sooner of the pool's (accounts not tried) and the attempt's.
    """
    if attempt_error is None:
        return pool_error
    if isinstance(attempt_error, UpstreamRateLimited) and isinstance(
        pool_error, UpstreamRateLimited
    ):
        waits = [w for w in (pool_error.retry_after, attempt_error.retry_after) if w is not None]
        return UpstreamRateLimited(
            pool_error.message, retry_after=min(waits, default=None), code=pool_error.code
        )
    return attempt_error


async def start_turn(
    backend: ChatGPTBackend,
    accounts: AccountSource,
    body: dict[str, Any] | BodyBuilder,
    *,
    model: str,
    retries: int,
) -> Turn:
    """Open the conversation and read its head, retrying transient failures.

    ``body`` may be a function of the leased account's credentials (files
    must be uploaded to the account that will read them); it is then built
    again for each attempt.

    Each attempt takes a lease from ``accounts``; an account that failed is
    not offered again for this request unless the failure handling (a
    refresh after a 401) says it is worth another try.
    """
    attempt = 0
    exclude: frozenset[str] = frozenset()
    last: UpstreamError | None = None
    while True:
        try:
            lease = await accounts.acquire(model, exclude)
        except (PoolError, UpstreamRateLimited) as exc:
            raise most_informative(exc, last) from None
        answer: AnswerBody | None = None
        try:
            payload = body if isinstance(body, dict) else await body(lease.credentials)
            opened = await backend.open_conversation(lease.credentials, payload)
            answer = AnswerBody(backend, opened, ConversationDecoder())
            head = await _read_head(answer)
            return Turn(answer, head, lease)
        except UpstreamError as exc:
            if answer is not None:
                await answer.aclose()
            retry = await lease.failed(exc)
            await lease.release()
            if attempt >= retries or not retry:
                raise
            if last is None or not isinstance(exc, UpstreamRateLimited):
                last = exc  # a rate limit says less than a failure seen before it
            if not lease.retry_same:
                exclude = exclude | {lease.key}
            attempt += 1
            delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
            log.warning(
                "upstream attempt %d/%d failed (%s) on account %s; retrying in %.2fs",
                attempt,
                retries,
                exc.code,
                lease.key,
                delay,
            )
            await asyncio.sleep(delay)
        except BaseException:
            if answer is not None:
                await answer.aclose()
            await lease.release()
            raise
