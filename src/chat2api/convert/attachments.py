"""The client's image and file content parts, as checked attachment objects.

Pure except for URLs, which are fetched through the injected ``fetch`` (in
the service, ``chat2api.net.fetch.fetch_url`` with the deployment's timeout
and allowed hosts bound). Nothing is trusted from the client's labels: the
type of every attachment is sniffed from its bytes (a file's name only tells
apart the Office formats, all of which are zip archives, and the kinds of
text), and an image must have a header whose dimensions parse.

Errors are ``InvalidRequest`` (400) naming the part in ``param``
(``messages[2].content[1]``), with one of the codes:
``invalid_image``, ``invalid_base64``, ``unsupported_mime_type``,
``file_too_large``, ``invalid_content_part``, ``file_id_not_supported``;
fetch failures keep their own (``url_not_allowed``, ``url_fetch_failed``,
``url_too_large``, ``url_timeout``).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote_to_bytes

from chat2api.convert.sniff import DOCX, PPTX, XLSX, image_dimensions, office_type, sniff_mime
from chat2api.errors import InvalidRequest
from chat2api.net.fetch import Fetched, human_size
from chat2api.values import IMAGE_TYPES, Attachment

MB = 1 << 20


# Text kinds by extension; any other extension (or none) of UTF-8 text is text/plain.
_TEXT_EXTENSIONS = {
    "txt": "text/plain",
    "md": "text/markdown",
    "markdown": "text/markdown",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "json": "application/json",
    "html": "text/html",
    "htm": "text/html",
    "css": "text/css",
    "xml": "text/xml",
    "yaml": "application/x-yaml",
    "yml": "application/x-yaml",
    "py": "text/x-python",
    "js": "text/javascript",
    "mjs": "text/javascript",
    "ts": "application/typescript",
    "tsx": "application/typescript",
    "jsx": "text/javascript",
    "java": "text/x-java",
    "c": "text/x-c",
    "h": "text/x-c",
    "cpp": "text/x-c++",
    "cc": "text/x-c++",
    "hpp": "text/x-c++",
    "cs": "text/x-csharp",
    "go": "text/x-golang",
    "rs": "text/x-rust",
    "rb": "text/x-ruby",
    "php": "text/x-php",
    "sh": "application/x-sh",
    "sql": "application/x-sql",
    "swift": "text/x-swift",
    "kt": "text/x-kotlin",
    "tex": "text/x-tex",
}
TEXT_TYPES = frozenset(_TEXT_EXTENSIONS.values())
DOCUMENT_TYPES = frozenset({"application/pdf", DOCX, PPTX, XLSX}) | TEXT_TYPES
ALLOWED_TYPES = IMAGE_TYPES | DOCUMENT_TYPES

_EXTENSION_OF = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "application/pdf": "pdf",
    DOCX: "docx",
    PPTX: "pptx",
    XLSX: "xlsx",
    "text/plain": "txt",
}


class Fetch(Protocol):
    """What ``load_part`` needs to get a URL (``fetch_url`` with its policy bound)."""

    async def __call__(self, url: str, *, max_bytes: int, param: str | None) -> Fetched: ...


@dataclass(frozen=True)
class Limits:
    """Largest decoded sizes accepted, in bytes."""

    image_bytes: int = 20 * MB
    file_bytes: int = 50 * MB

    def within(self, left: int, param: str) -> Limits:
        """These limits cut to ``left`` bytes of a request's total (``REQUEST_TOTAL``)."""
        if left <= 0:
            raise InvalidRequest(
                f"The attachments of one request may hold at most {REQUEST_TOTAL // MB} MB "
                "together.",
                code="attachments_too_large",
                param=param,
            )
        return Limits(min(self.image_bytes, left), min(self.file_bytes, left))


# All attachments of one request together: each is held in memory until sent.
REQUEST_TOTAL = 50 * MB


# --- base64 and data URLs ----------------------------------------------------

_DATA_URL = re.compile(r"^data:(?P<type>[^,;]*)(?P<params>(;[^,;]*)*?)(?P<b64>;base64)?,", re.I)
_WHITESPACE = re.compile(r"\s+")


def _decoded_size(text: str) -> int:
    return len(text) * 3 // 4


def decode_base64(text: str) -> bytes:
    """Standard or URL-safe base64, padding optional; ``invalid_base64`` otherwise."""
    text = _WHITESPACE.sub("", text)
    if "-" in text or "_" in text:
        text = text.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest("The data is not valid base64.", code="invalid_base64") from exc


def decode_data_url(url: str, *, max_bytes: int | None = None) -> tuple[bytes, str]:
    """The bytes and declared media type of a ``data:`` URL (``text/plain`` when absent).

    ``max_bytes`` refuses a larger payload before decoding it (``file_too_large``).
    """
    match = _DATA_URL.match(url)
    if match is None:
        raise InvalidRequest(
            "Expected a data URL such as data:image/png;base64,....",
            code="invalid_content_part",
        )
    mime = match.group("type").strip().lower() or "text/plain"
    payload = url[match.end() :]
    is_base64 = match.group("b64") is not None
    # Refuse a payload that is too large before decoding it.
    if max_bytes is not None and is_base64 and _decoded_size(payload) > max_bytes + 3:
        raise _too_large(max_bytes)
    data = decode_base64(payload) if is_base64 else unquote_to_bytes(payload)
    if max_bytes is not None and len(data) > max_bytes:
        raise _too_large(max_bytes)
    return data, mime


def _too_large(max_bytes: int) -> InvalidRequest:
    return InvalidRequest(
        f"The attachment is larger than the {human_size(max_bytes)} allowed.",
        code="file_too_large",
    )


# --- parts --------------------------------------------------------------------


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{what} must be a non-empty string.", code="invalid_content_part")
    return value


def _extension(name: str | None) -> str:
    if not name or "." not in name:
        return ""
    return name.rsplit(".", 1)[-1].lower()


def as_image(data: bytes, name: str | None, param: str) -> Attachment:
    """Check that ``data`` is an accepted image and build its attachment."""
    kind = sniff_mime(data)
    if kind not in IMAGE_TYPES:
        raise InvalidRequest(
            "The image is not a JPEG, PNG, GIF or WebP image.", code="invalid_image", param=param
        )
    size = image_dimensions(data)
    if size is None:
        raise InvalidRequest(
            f"The image is not a valid {kind} (its header is damaged or truncated).",
            code="invalid_image",
            param=param,
        )
    name = name or f"image.{_EXTENSION_OF[kind]}"
    return Attachment(data, kind, name, size[0], size[1], param)


def as_file(data: bytes, name: str | None, declared: str | None, param: str) -> Attachment:
    """Check that ``data`` is an accepted image or document and build its attachment."""
    if not data:
        raise InvalidRequest("The file is empty.", code="invalid_content_part", param=param)
    kind = sniff_mime(data)
    extension = _extension(name)
    if kind in IMAGE_TYPES:
        return as_image(data, name, param)
    mime: str | None = None
    if kind == "application/pdf":
        mime = kind
    elif kind == "application/zip":
        mime = office_type(data, extension)
    elif kind == "text/plain":
        mime = _TEXT_EXTENSIONS.get(extension)
        if mime is None and declared in TEXT_TYPES:
            mime = declared
        mime = mime or "text/plain"
    if mime is None or mime not in ALLOWED_TYPES:
        label = declared or (f".{extension}" if extension else "unknown")
        raise InvalidRequest(
            f"Files of this type ({label}) are not supported; send images (JPEG, PNG, GIF, "
            "WebP), PDF, Word, PowerPoint, Excel or text files.",
            code="unsupported_mime_type",
            param=param,
        )
    name = name or f"file.{_EXTENSION_OF.get(mime, 'txt')}"
    return Attachment(data, mime, name, None, None, param)


def _image_source(part: Mapping[str, Any]) -> str:
    """The URL of a Chat ``image_url`` or Responses ``input_image`` part."""
    value = part.get("image_url")
    if isinstance(value, Mapping):
        value = value.get("url")
    if value is None and part.get("file_id") is not None:
        raise _no_file_ids()
    return _string(value, "image_url.url" if part.get("type") == "image_url" else "image_url")


def _no_file_ids() -> InvalidRequest:
    return InvalidRequest(
        "Files referenced by file_id are not supported; send the data inline "
        "(file_data / a data URL) or a URL.",
        code="file_id_not_supported",
    )


async def _from_url(
    url: str, *, param: str, fetch: Fetch, max_bytes: int, image: bool
) -> Attachment:
    fetched = await fetch(url, max_bytes=max_bytes, param=param)
    if image:
        return as_image(fetched.data, fetched.filename, param)
    return as_file(fetched.data, fetched.filename, fetched.content_type, param)


async def load_part(
    part: Mapping[str, Any], *, param: str, fetch: Fetch, limits: Limits | None = None
) -> Attachment:
    """One image or file content part (Chat or Responses shape) as an ``Attachment``.

    Accepted: ``{"type": "image_url", "image_url": {"url": ...}}``,
    ``{"type": "input_image", "image_url": ...}`` (URL or data URL),
    ``{"type": "file", "file": {"file_data": ..., "filename": ...}}``,
    ``{"type": "input_file", "file_data": ... | "file_url": ..., "filename": ...}``
    where file data is a data URL or bare base64. Every error names ``param``.
    """
    limits = limits or Limits()
    try:
        return await _load(part, param, fetch, limits)
    except InvalidRequest as exc:
        if exc.param is None:
            exc.param = param
        raise


async def _load(part: Mapping[str, Any], param: str, fetch: Fetch, limits: Limits) -> Attachment:
    kind = part.get("type")
    if kind in ("image_url", "input_image"):
        source = _image_source(part)
        if source[:5].lower() == "data:":
            data, _ = decode_data_url(source, max_bytes=limits.image_bytes)
            return as_image(data, None, param)
        if re.match(r"^https?://", source, re.I):
            return await _from_url(
                source, param=param, fetch=fetch, max_bytes=limits.image_bytes, image=True
            )
        raise InvalidRequest(
            "An image URL must be http(s):// or a data: URL.", code="invalid_image", param=param
        )
    if kind in ("file", "input_file"):
        body = part.get("file") if kind == "file" else part
        if not isinstance(body, Mapping):
            raise InvalidRequest("'file' must be an object.", code="invalid_content_part")
        name = body.get("filename")
        name = name if isinstance(name, str) and name.strip() else None
        if body.get("file_data") is not None:
            return _inline_file(_string(body["file_data"], "file_data"), name, param, limits)
        if kind == "input_file" and body.get("file_url") is not None:
            url = _string(body["file_url"], "file_url")
            return await _from_url(
                url, param=param, fetch=fetch, max_bytes=limits.file_bytes, image=False
            )
        if body.get("file_id") is not None:
            raise _no_file_ids()
        raise InvalidRequest(
            "A file part needs file_data (base64 or a data URL).", code="invalid_content_part"
        )
    raise InvalidRequest(
        f"Content parts of type {kind!r} are not attachments.", code="invalid_content_part"
    )


def _inline_file(text: str, name: str | None, param: str, limits: Limits) -> Attachment:
    if text[:5].lower() == "data:":
        data, declared = decode_data_url(text, max_bytes=limits.file_bytes)
    else:
        if _decoded_size(_WHITESPACE.sub("", text)) > limits.file_bytes + 3:
            raise _too_large(limits.file_bytes)
        data, declared = decode_base64(text), ""
    if len(data) > limits.file_bytes:
        raise _too_large(limits.file_bytes)
    attachment = as_file(data, name, declared or None, param)
    if attachment.is_image and len(data) > limits.image_bytes:
        raise _too_large(limits.image_bytes)
    return attachment


# --- UPLOAD_BY_URL ------------------------------------------------------------

_LEADING_URL = re.compile(r"\s*(https?://[^\s/?#]+\S*)(?:\s+|$)", re.I)


def upload_by_url_split(text: str) -> tuple[list[str], str]:
    """``UPLOAD_BY_URL``: leading http(s) URLs separated by spaces, then the message.

    ``"https://a/x.png https://b/y.pdf compare them"`` gives
    ``(["https://a/x.png", "https://b/y.pdf"], "compare them")``; text that
    does not start with a URL is returned whole, with no URLs.
    """
    urls: list[str] = []
    position = 0
    while match := _LEADING_URL.match(text, position):
        urls.append(match.group(1))
        position = match.end()
    return (urls, text[position:]) if urls else ([], text)
