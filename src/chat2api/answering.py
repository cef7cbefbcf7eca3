"""The answer pipeline shared by the endpoints (docs/design.md, "One answer pipeline").

An endpoint parses its request into an :class:`Ask` (what the upstream is
asked: the prompt turns, their attachments, the conversation continued) and
an :class:`AnswerShape` (how the answer is shaped: tools, response format,
``stop``, ``max_tokens``), then formats what :func:`start_answer` hands back.
Everything between is here: fetching and checking attachments before any
lease, uploading them to the leased account, opening the turn, building the
``Answer`` with its download links, and the deltas across the one correction
round.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from chat2api.conversation import Turn, start_turn, stream_error
from chat2api.convert.attachments import (
    REQUEST_TOTAL,
    Fetch,
    Limits,
    as_file,
    load_part,
    upload_by_url_split,
)
from chat2api.convert.completion import IMAGE_BYTES_KEY, IMAGE_KEY, Answer
from chat2api.convert.messages import attachment_parts, conversation_body
from chat2api.convert.models import ModelRoute
from chat2api.convert.schemas import ChatMessage
from chat2api.convert.stop import StopCut
from chat2api.convert.structured import OutputFormat, StructuredAnswer
from chat2api.convert.tools import ToolCalls
from chat2api.errors import UpstreamUnavailable
from chat2api.links import DownloadLinks
from chat2api.net.fetch import Fetched, fetch_url
from chat2api.pool.lease import AccountSource, Lease
from chat2api.protocol.events import ImageGenerated, Metadata, StreamFailed, TextDelta
from chat2api.settings import Settings
from chat2api.state import AppState
from chat2api.upstream.downloads import Downloader, Generated, needs_account
from chat2api.values import Attachment, Credentials, PromptTurn, fingerprint

__all__ = [
    "AnswerShape",
    "Answering",
    "Ask",
    "DrawnImage",
    "account_fingerprint",
    "answer_deltas",
    "draw_image",
    "gather_attachments",
    "image_bytes",
    "load_attachments",
    "start_answer",
]

FETCH_TIMEOUT = 30.0


def client_fetch(settings: Settings) -> Fetch:
    """``fetch_url`` with this deployment's policy (timeout, FETCH_ALLOWED_HOSTS)."""
    allowed = frozenset(settings.fetch_allowed_hosts)

    async def fetch(url: str, *, max_bytes: int, param: str | None) -> Fetched:
        return await fetch_url(
            url, max_bytes=max_bytes, timeout=FETCH_TIMEOUT, allowed_hosts=allowed, param=param
        )

    return fetch


async def load_attachments(
    settings: Settings, parts: Sequence[tuple[int, str, dict[str, Any]]]
) -> dict[int, list[Attachment]]:
    """``(index, param, part)`` image and file parts, loaded and checked, by index."""
    fetch = client_fetch(settings)
    found: dict[int, list[Attachment]] = {}
    left = REQUEST_TOTAL
    for index, param, part in parts:
        limits = Limits().within(left, param)
        attachment = await load_part(part, param=param, fetch=fetch, limits=limits)
        left -= len(attachment.data)
        found.setdefault(index, []).append(attachment)
    return found


async def gather_attachments(
    settings: Settings, messages: Sequence[ChatMessage]
) -> tuple[list[ChatMessage], dict[int, list[Attachment]]]:
    """Every image and file of chat ``messages``, fetched and checked before anything is sent.

    With ``UPLOAD_BY_URL``, leading URLs of a user message's text become
    attachments too (and leave the text). Returns the messages (so changed)
    and the attachments by message index.
    """
    found = await load_attachments(settings, attachment_parts(messages))
    if not settings.upload_by_url:
        return list(messages), found
    fetch = client_fetch(settings)
    out = list(messages)
    left = REQUEST_TOTAL - sum(len(a.data) for items in found.values() for a in items)
    for index, message in enumerate(messages):
        if message.role != "user" or not isinstance(message.content, str):
            continue
        urls, rest = upload_by_url_split(message.content)
        for url in urls:
            param = f"messages[{index}].content"
            limit = Limits().within(left, param).file_bytes
            fetched = await fetch(url, max_bytes=limit, param=param)
            left -= len(fetched.data)
            found.setdefault(index, []).append(
                as_file(fetched.data, fetched.filename, fetched.content_type, param)
            )
        if urls:
            out[index] = message.model_copy(update={"content": rest})
    return out, found


def account_fingerprint(lease: Lease) -> str:
    """The account of ``lease`` as the log shows it: a fingerprint, or ``anonymous``."""
    token = lease.credentials.access_token
    return "anonymous" if token is None else _token_fingerprint(token)


@lru_cache(maxsize=1024)
def _token_fingerprint(token: str) -> str:
    # An account sends its token with every answer: SHA-256 over its ~1.5 KB once.
    return fingerprint(token)


@dataclass(slots=True, kw_only=True)
class Ask:
    """What the upstream is asked; kept for a correction round only when one may come."""

    state: AppState
    accounts: AccountSource
    route: ModelRoute
    turns: list[PromptTurn]
    attachments: Mapping[int, Sequence[Attachment]] = field(default_factory=dict)  # by turn
    history_disabled: bool
    continues: tuple[str, str] | None = None  # (conversation id, parent message id)
    reasoning_effort: str | None = None
    system_hints: Sequence[str] = ()

    async def start(self, extra: Sequence[PromptTurn] = ()) -> Turn:
        """Open one upstream turn for these turns (and ``extra`` after them)."""
        settings = self.state.settings

        async def body(credentials: Credentials) -> dict[str, Any]:
            # Files are uploaded to the account that reads them: once per attempt.
            files = {
                index: [await self.state.uploader.upload(credentials, a) for a in items]
                for index, items in self.attachments.items()
            }
            return conversation_body(
                [*self.turns, *extra],
                self.route,
                history_disabled=self.history_disabled,
                encoding=settings.upstream_encoding,
                continues=self.continues,
                reasoning_effort=self.reasoning_effort,
                files=files,
                system_hints=self.system_hints,
            )

        return await start_turn(
            self.state.backend,
            self.accounts,
            body,
            model=self.route.slug,
            retries=settings.retry_times,
        )


@dataclass(slots=True, kw_only=True)
class AnswerShape:
    """How the answer is shaped on its way to the client."""

    token_limit: int | None = None
    tools: ToolCalls | None = None
    format: OutputFormat | None = None
    stop: Sequence[str] = ()
    live: bool = False  # a stream: structured output goes out as it comes when it can
    legacy_functions: bool = False  # asked with ``functions``: answer ``function_call``
    image_items: bool = False  # images as deltas with their bytes (Responses' image_generation)


@dataclass(slots=True)
class Answering:
    """An answer under way: its turn (and lease), the ``Answer``, and its deltas."""

    turn: Turn
    answer: Answer
    deltas: AsyncGenerator[dict[str, Any], None]


async def start_answer(ask: Ask, shape: AnswerShape, base_url: str) -> Answering:
    """Open the turn and build its ``Answer``; ids are known before the first delta.

    ``base_url`` is this service as the client reached it (download links).
    """
    structured = StructuredAnswer(shape.format, live=shape.live) if shape.format else None
    stop = StopCut(shape.stop) if shape.stop else None
    turn = await ask.start()
    answer = Answer(
        ask.route,
        ask.turns,
        shape.token_limit,
        ask.state.tokens,
        shape.tools,
        structured=structured,
        stop=stop,
        links=DownloadLinks(ask.state.store, base_url, turn.lease),
        legacy_functions=shape.legacy_functions,
        image_items=shape.image_items,
    )
    await answer.apply(turn.metadata)
    correctable = shape.tools is not None or shape.format is not None
    downloader = ask.state.downloader if shape.image_items else None
    deltas = answer_deltas(turn, answer, ask if correctable else None, downloader)
    return Answering(turn, answer, deltas)


async def answer_deltas(
    turn: Turn, answer: Answer, ask: Ask | None, downloader: Downloader | None = None
) -> AsyncGenerator[dict[str, Any], None]:
    """The chunk deltas of an answer, across the one correction round if needed.

    ``ask`` opens that round (for an unusable tool call, a forced
    ``tool_choice`` not followed, or an answer off the response format);
    without tools or a format there is none, and ``None`` keeps the
    request's turns and attachments out of a long stream's memory.
    With ``downloader`` (an ``Answer`` made with ``image_items``), an image's
    delta is followed by the same with its bytes, downloaded as the turn's
    account while the turn is still open (a pending image is waited for).
    Raises ``Chat2APIError`` when the upstream fails; the account's use counts
    as a success once the model's answer ended normally.
    """
    while True:
        plain = answer.plain
        try:
            ended = False
            # One read of the upstream body at a time (``Turn.read``): the per-event
            # path goes through no async generator but this one. Plain answer text
            # is folded without a coroutine (``Answer.fold_plain``).
            while not ended and (events := await turn.read()) is not None:
                for event in events:
                    if plain and type(event) is TextDelta:
                        added = answer.fold_plain(event.text)
                        if type(added) is not str:
                            added = await answer.add_rewritten(added)  # type: ignore[arg-type]
                        if added:
                            yield {"content": added}
                        continue  # a text delta never finishes a plain answer
                    if isinstance(event, StreamFailed):
                        raise stream_error(event)
                    for delta in await answer.apply(event):
                        yield delta
                        image = delta.get(IMAGE_KEY) if downloader is not None else None
                        if downloader is not None and image is not None:
                            data = await image_bytes(
                                downloader, turn.lease.credentials, answer.conversation_id, image
                            )
                            yield {IMAGE_KEY: image, IMAGE_BYTES_KEY: data}
                    if answer.done:
                        ended = True
                        break
            await turn.succeeded()
        finally:
            await turn.aclose()
        if ask is None or not answer.wants_correction:
            return
        turn = await ask.start(answer.correction_turns())


async def image_bytes(
    downloader: Downloader,
    credentials: Credentials,
    conversation_id: str | None,
    image: ImageGenerated,
) -> bytes:
    """The bytes of a generated image, as the account that drew it (a pending one waited for)."""
    generated = Generated(
        conversation_id=conversation_id,
        message_id=image.message_id,
        asset_pointer=image.asset_pointer,
        pending=image.pending,
    )
    url = await downloader.download_url(credentials, generated)
    _, body = await downloader.stream(url)
    return b"".join([chunk async for chunk in body])


@dataclass(slots=True)
class DrawnImage:
    """One generated image, the conversation it lives in, and how to reach it."""

    image: ImageGenerated
    conversation_id: str | None
    links: DownloadLinks
    lease: Lease


async def draw_image(ask: Ask, base_url: str) -> DrawnImage:
    """Ask for one image and wait for the answer that names it (spec §1.10)."""
    turn = await ask.start()
    if turn.lease.credentials.anonymous:  # nothing to draw with, nor to download as
        await turn.aclose()
        raise needs_account()
    links = DownloadLinks(ask.state.store, base_url, turn.lease)
    conversation_id = turn.metadata.conversation_id
    image: ImageGenerated | None = None
    try:
        async for event in turn.events():
            if isinstance(event, ImageGenerated):
                image = event
            elif isinstance(event, Metadata) and event.conversation_id:
                conversation_id = event.conversation_id
        await turn.succeeded()
    finally:
        await turn.aclose()
    if image is None:
        raise UpstreamUnavailable(
            "The upstream answered without an image (it may have refused the prompt).",
            code="no_image",
        )
    return DrawnImage(image, conversation_id, links, turn.lease)
