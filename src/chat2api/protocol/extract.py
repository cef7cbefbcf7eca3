"""What the model made besides text, read from message states (sans-IO).

``ConversationDecoder`` (``stream``) keeps the framing, the patches and the
message states; for each state of a message of this turn it hands the parts
to the extractors here, which decide what the state adds and remember what
they already reported. Each takes ``out`` and appends its events to it.

* ``CodeRuns`` → ``CodeRun(language, code)``: an assistant ``code`` message
  whose ``recipient`` is ``python`` or ``python_user_visible`` -- once, when
  it finishes, when the next assistant/tool message starts, or at the end of
  the stream, whichever comes first. ``language`` is ``content.language``
  unless missing, empty or ``"unknown"``, then the recipient; ``code`` is
  ``content.text``. Code to image tools (``dalle.*``, ``t2uay3k.sj1i4kz``: a
  JSON payload) and ``web.run`` (a search query) are tool invocations, not
  code for the reader, and give nothing.
* ``Outputs`` → ``ExecutionOutput(text)``: a ``tool`` message with
  ``content_type`` ``execution_output``, once, when it finishes; ``text`` is
  ``content.text``.
* ``Images`` → ``ImageGenerated``: each ``image_asset_pointer`` part
  (non-empty ``asset_pointer``) of an assistant or tool ``multimodal_text``
  message, once per pointer over the stream, when the message finishes;
  ``width`` / ``height`` from the part, else from ``metadata.generation``;
  ``message_id`` is that message's id. User messages (input images) never
  count. A tool message with ``metadata.async_task_type == "image_gen"``
  still unfinished at the end of the stream gives ``pending=True`` events at
  the end (``flush``): one per known pointer (sizes from the part only), or
  one with ``asset_pointer=""`` when no pointer is known yet. ``prompt`` is
  the ``prompt`` of the JSON the model last sent an image tool (an assistant
  ``code`` message to ``dalle.*`` or ``t2uay3k.sj1i4kz``), else the part's
  ``metadata.dalle.prompt``.
* ``Citations`` → ``Citation(url, title)``: sources of the answer message,
  in order, each URL once per stream: ``metadata.citations[i].metadata.{url,
  title}``, then ``metadata.content_references[i]`` (own ``url``;
  ``items[j]`` and their ``supporting_websites[k]``; ``sources[j]``). Legacy
  resends the whole list each snapshot and v1 appends to it; both give only
  the new URLs.
"""

from __future__ import annotations

from typing import Any

import orjson

from chat2api.protocol.events import Citation, CodeRun, Event, ExecutionOutput, ImageGenerated

__all__ = ["FINISHED", "Citations", "CodeRuns", "Images", "Outputs", "as_dict", "nonempty"]

# Tuples, not sets: the values tested against them come from JSON and may be
# unhashable lists or dicts.
FINISHED = ("finished_successfully", "finished_partial_completion")
# Recipients whose ``code`` messages are code the user wants to see. Image tools
# (``dalle.text2im``, ``t2uay3k.sj1i4kz``) get a JSON payload and ``web.run`` a
# search query: those are tool invocations, not code, and produce no CodeRun.
_CODE_RECIPIENTS = ("python", "python_user_visible")
_IMAGE_POINTER = "image_asset_pointer"
_IMAGE_TOOL = "t2uay3k.sj1i4kz"  # picture_v2's image tool; DALL·E's are ``dalle.*``


def as_dict(value: object) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def nonempty(value: object) -> str | None:
    """``value`` if it is a non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def _size(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


class CodeRuns:
    """``CodeRun`` events: the code of one message waits until it is complete."""

    __slots__ = ("_done", "_pending")

    def __init__(self) -> None:
        self._pending: tuple[str, str, str] | None = None  # (id, language, code) not yet emitted
        self._done: set[str] = set()  # message ids whose CodeRun was emitted

    def started(self, key: str, out: list[Event]) -> None:
        """Message ``key`` was seen for the first time: code of another one is complete."""
        if self._pending is not None and self._pending[0] != key:
            self.flush(out)

    def observe(
        self,
        key: str,
        role: object,
        message: dict[str, Any],
        content: dict[str, Any],
        status: object,
        out: list[Event],
    ) -> None:
        """One state of a ``code`` message."""
        recipient = message.get("recipient")
        if role != "assistant" or recipient not in _CODE_RECIPIENTS or key in self._done:
            return
        language = nonempty(content.get("language"))
        if language is None or language == "unknown":
            language = str(recipient)
        code = content.get("text")
        self._pending = (key, language, code if isinstance(code, str) else "")
        if status in FINISHED:
            self.flush(out)

    def flush(self, out: list[Event]) -> None:
        """Emit the code waiting for its message to be complete, if any."""
        if self._pending is None:
            return
        key, language, code = self._pending
        self._pending = None
        if key not in self._done:
            self._done.add(key)
            out.append(CodeRun(language, code))


class Outputs:
    """``ExecutionOutput`` events: what a code run printed, once its message finished."""

    __slots__ = ("_done",)

    def __init__(self) -> None:
        self._done: set[str] = set()

    def observe(
        self, key: str, role: object, content: dict[str, Any], status: object, out: list[Event]
    ) -> None:
        """One state of an ``execution_output`` message."""
        if role == "tool" and status in FINISHED and key not in self._done:
            self._done.add(key)
            text = content.get("text")
            out.append(ExecutionOutput(text if isinstance(text, str) else ""))


def _image_parts(content: dict[str, Any]) -> list[dict[str, Any]]:
    parts = content.get("parts")
    if not isinstance(parts, list):
        return []
    return [p for p in parts if isinstance(p, dict) and p.get("content_type") == _IMAGE_POINTER]


class Images:
    """``ImageGenerated`` events, finished or (at the end of the stream) pending."""

    __slots__ = ("_asked", "_async", "_pointers", "pending")

    def __init__(self) -> None:
        self._async: dict[str, dict[str, Any]] = {}  # image_gen tool messages still running
        self._pointers: set[str] = set()  # asset pointers already reported
        self._asked: str | None = None  # the JSON the model last sent an image tool
        self.pending = False  # an ImageGenerated(pending=True) was emitted

    def asked(self, message: dict[str, Any], content: dict[str, Any]) -> None:
        """One state of a ``code`` message: kept when it is the model asking an image tool."""
        recipient = message.get("recipient")
        if isinstance(recipient, str) and (
            recipient == _IMAGE_TOOL or recipient.startswith("dalle.")
        ):
            text = content.get("text")
            self._asked = text if isinstance(text, str) else None

    def _prompt(self, part: dict[str, Any]) -> str | None:
        if self._asked is not None:
            try:
                asked = orjson.loads(self._asked)
            except orjson.JSONDecodeError:
                asked = None
            if isinstance(asked, dict) and (prompt := nonempty(asked.get("prompt"))):
                return prompt
        return nonempty(as_dict(as_dict(part.get("metadata")).get("dalle")).get("prompt"))

    def observe(
        self,
        key: str,
        role: object,
        content: dict[str, Any],
        metadata: dict[str, Any],
        status: object,
        out: list[Event],
    ) -> None:
        """One state of a ``multimodal_text`` message of the assistant or a tool."""
        if status in FINISHED:
            self._async.pop(key, None)
            self._images(key, content, pending=False, out=out)
        elif role == "tool" and metadata.get("async_task_type") == "image_gen":
            self._async[key] = content

    def flush(self, out: list[Event]) -> None:
        """End of stream: image_gen tool messages still running are reported pending."""
        for key, content in self._async.items():
            before = len(out)
            self._images(key, content, pending=True, out=out)
            if len(out) == before and not any(
                nonempty(p.get("asset_pointer")) in self._pointers for p in _image_parts(content)
            ):
                # The pointer is not known yet.
                out.append(ImageGenerated("", None, None, True, key, self._prompt({})))
                self.pending = True
        self._async.clear()

    def _images(
        self, key: str, content: dict[str, Any], *, pending: bool, out: list[Event]
    ) -> None:
        for part in _image_parts(content):
            pointer = nonempty(part.get("asset_pointer"))
            if pointer is None or pointer in self._pointers:
                continue
            self._pointers.add(pointer)
            width = _size(part.get("width"))
            height = _size(part.get("height"))
            if not pending and (width is None or height is None):
                # picture_v2 keeps the sizes in metadata.generation; while the
                # image renders its height there is partial, so only once finished.
                generation = as_dict(as_dict(part.get("metadata")).get("generation"))
                width = width if width is not None else _size(generation.get("width"))
                height = height if height is not None else _size(generation.get("height"))
            out.append(ImageGenerated(pointer, width, height, pending, key, self._prompt(part)))
            self.pending = self.pending or pending


def _sources(metadata: dict[str, Any]) -> list[tuple[str, str | None]]:
    """``(url, title)`` of the answer's sources, in order, duplicates included.

    ``metadata.citations[i]``: ``{start_ix, end_ix, citation_format_type,
    metadata: {type, title, url, text, ...}}`` (url/title also accepted at
    the entry's top level). ``metadata.content_references[i]``: its own
    ``url``/``title`` when present, then each of ``items[j]`` (``{title, url,
    attribution, ...}``) with their ``supporting_websites[k]``, then
    ``sources[j]`` (``sources_footnote``). ``fallback_items``, ``alt`` and
    ``images`` are not read.
    """
    found: list[tuple[str, str | None]] = []

    def take(node: object) -> None:
        if isinstance(node, dict):
            url = nonempty(node.get("url"))
            if url is not None:
                found.append((url, nonempty(node.get("title"))))

    citations = metadata.get("citations")
    if isinstance(citations, list):
        for entry in citations:
            if isinstance(entry, dict):
                inner = entry.get("metadata")
                take(inner if isinstance(inner, dict) and "url" in inner else entry)
    references = metadata.get("content_references")
    if isinstance(references, list):
        for ref in references:
            if not isinstance(ref, dict):
                continue
            take(ref)
            items = ref.get("items")
            if isinstance(items, list):
                for item in items:
                    take(item)
                    sites = item.get("supporting_websites") if isinstance(item, dict) else None
                    if isinstance(sites, list):
                        for site in sites:
                            take(site)
            sources = ref.get("sources")
            if isinstance(sources, list):
                for source in sources:
                    take(source)
    return found


class Citations:
    """``Citation`` events: each source URL of the answer once per stream."""

    __slots__ = ("_cited",)

    def __init__(self) -> None:
        self._cited: set[str] = set()  # citation URLs already reported

    def observe(self, metadata: dict[str, Any], out: list[Event]) -> None:
        """One state of the answer message's metadata."""
        if not metadata.get("citations") and not metadata.get("content_references"):
            return
        for url, title in _sources(metadata):
            if url not in self._cited:
                self._cited.add(url)
                out.append(Citation(url, title))
