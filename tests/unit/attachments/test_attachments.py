"""Content parts → attachments: sniffing, dimensions, data URLs, limits, part shapes."""

from __future__ import annotations

import asyncio
import base64
import struct
import zlib
from typing import Any

import pytest

from chat2api.convert.attachments import (
    Limits,
    decode_data_url,
    image_dimensions,
    load_part,
    sniff_mime,
    upload_by_url_split,
)
from chat2api.errors import InvalidRequest
from chat2api.net.fetch import Fetched, UrlNotAllowed
from chat2api.values import Attachment

# --- tiny real images, built by hand -------------------------------------------


def png(width: int, height: int) -> bytes:
    """A complete, valid RGB PNG of the given size (black pixels)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def gif(width: int, height: int) -> bytes:
    """A complete GIF89a: a 2-colour table and one image filling the screen."""
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0)
    palette = b"\x00\x00\x00\xff\xff\xff"
    image = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
    pixels = b"\x02\x02\x4c\x01\x00"  # LZW min code size 2, one tiny data block
    return screen + palette + image + pixels + b"\x3b"


def jpeg(width: int, height: int, *, sof: int = 0xC0, fill: bool = False) -> bytes:
    """A JPEG header: SOI, APP0 (JFIF), DQT, SOFn with the size, then SOS."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    dqt = b"\xff\xdb" + struct.pack(">H", 67) + b"\x00" + bytes(range(64))
    sof_body = struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"
    frame = bytes([0xFF, sof]) + struct.pack(">H", 2 + len(sof_body)) + sof_body
    sos = b"\xff\xda" + struct.pack(">H", 8) + b"\x01\x01\x00\x00\x3f\x00"
    padding = b"\xff\xff" if fill else b""
    return b"\xff\xd8" + app0 + dqt + padding + frame + sos + b"\x00" * 8 + b"\xff\xd9"


def riff(chunk: bytes, body: bytes) -> bytes:
    """A WebP RIFF container holding one chunk."""
    payload = b"WEBP" + chunk + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", len(payload)) + payload


def webp_vp8x(width: int, height: int) -> bytes:
    """An extended-format (VP8X) WebP header."""
    return riff(
        b"VP8X",
        b"\x00\x00\x00\x00"
        + (width - 1).to_bytes(3, "little")
        + (height - 1).to_bytes(3, "little"),
    )


def webp_vp8l(width: int, height: int) -> bytes:
    """A lossless (VP8L) WebP header."""
    bits = (width - 1) | ((height - 1) << 14)
    return riff(b"VP8L", b"\x2f" + bits.to_bytes(4, "little") + b"\x00" * 4)


def webp_vp8(width: int, height: int) -> bytes:
    """A lossy (VP8) WebP header: frame tag, start code, sizes."""
    return riff(
        b"VP8 ", b"\x9d\x01\x00" + b"\x9d\x01\x2a" + struct.pack("<HH", width, height) + b"\x00" * 8
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{b64(data)}"


# --- a fake fetcher --------------------------------------------------------------


class FakeFetch:
    """Answers every URL with one canned result; records the calls."""

    def __init__(self, result: Fetched | Exception) -> None:
        self.result = result
        self.calls: list[tuple[str, int, str | None]] = []

    async def __call__(self, url: str, *, max_bytes: int, param: str | None) -> Fetched:
        self.calls.append((url, max_bytes, param))
        if isinstance(self.result, Exception):
            self.result.param = param  # type: ignore[attr-defined]
            raise self.result
        return self.result


NO_FETCH = FakeFetch(AssertionError("no fetch expected"))


def load(part: dict[str, Any], fetch: Any = NO_FETCH, **kwargs: Any) -> Attachment:
    return asyncio.run(load_part(part, param="messages[2].content[1]", fetch=fetch, **kwargs))


def refused(part: dict[str, Any], fetch: Any = NO_FETCH, **kwargs: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        load(part, fetch, **kwargs)
    assert info.value.param == "messages[2].content[1]"
    assert info.value.status_code == 400
    return info.value


# --- dimensions and sniffing ---------------------------------------------------


@pytest.mark.parametrize(
    ("data", "mime", "size"),
    [
        (png(3, 2), "image/png", (3, 2)),
        (gif(5, 7), "image/gif", (5, 7)),
        (jpeg(640, 480), "image/jpeg", (640, 480)),
        (jpeg(17, 9, sof=0xC2), "image/jpeg", (17, 9)),
        (jpeg(4, 4, fill=True), "image/jpeg", (4, 4)),
        (webp_vp8x(1000, 300), "image/webp", (1000, 300)),
        (webp_vp8l(16383, 1), "image/webp", (16383, 1)),
        (webp_vp8(320, 240), "image/webp", (320, 240)),
    ],
    ids=[
        "png",
        "gif",
        "jpeg",
        "jpeg-progressive",
        "jpeg-fill",
        "webp-vp8x",
        "webp-vp8l",
        "webp-vp8",
    ],
)
def test_image_dimensions_and_type(data: bytes, mime: str, size: tuple[int, int]) -> None:
    """Each format's header gives its type and (width, height)."""
    assert sniff_mime(data) == mime
    assert image_dimensions(data) == size


@pytest.mark.parametrize(
    "data",
    [
        png(3, 2)[:20],
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 30,
        gif(5, 7)[:8],
        gif(0, 7),
        b"\xff\xd8\xff\xda\x00\x08",  # scan before any frame header
        jpeg(0, 10),
        b"\xff\xd8\xff\xe0\x00\x10JFIF",  # cut off before SOF
        riff(b"VP8 ", b"\x00" * 10),  # no start code
        riff(b"ABCD", b"\x00" * 10),
        b"plain text",
        b"",
    ],
    ids=[
        "png-cut",
        "png-no-ihdr",
        "gif-cut",
        "gif-zero-width",
        "jpeg-sos-first",
        "jpeg-zero-width",
        "jpeg-cut",
        "webp-no-start-code",
        "webp-unknown-chunk",
        "text",
        "empty",
    ],
)
def test_broken_or_foreign_headers_have_no_dimensions(data: bytes) -> None:
    """Truncated, zero-sized or non-image data gives None, never an exception."""
    assert image_dimensions(data) is None


def test_dimension_parser_survives_every_prefix() -> None:
    """Every prefix of every test image parses to a size or None (no IndexError)."""
    for image in (
        png(3, 2),
        gif(5, 7),
        jpeg(8, 8),
        webp_vp8x(2, 2),
        webp_vp8l(2, 2),
        webp_vp8(2, 2),
    ):
        for end in range(len(image) + 1):
            result = image_dimensions(image[:end])
            assert result is None or (result[0] > 0 and result[1] > 0)


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "application/pdf"),
        (b"PK\x03\x04\x14\x00\x00\x00", "application/zip"),
        ("name,qty\nß,2\n".encode(), "text/plain"),
        (b"\xff\xfe\x00\x00binary", None),
        (b"text with a \x00 NUL", None),
        (b"", None),
    ],
    ids=["pdf", "zip", "utf8-text", "binary", "nul", "empty"],
)
def test_sniff_documents(data: bytes, mime: str | None) -> None:
    """PDF, zip and UTF-8 text are recognised; other binary data is not."""
    assert sniff_mime(data) == mime


# --- data URLs -------------------------------------------------------------------


def test_decode_base64_data_url() -> None:
    """A base64 data URL gives its bytes and declared type, lower-cased."""
    assert decode_data_url("data:Image/PNG;base64," + b64(b"abc")) == (b"abc", "image/png")


def test_decode_data_url_with_parameters_and_percent_encoding() -> None:
    """Parameters are skipped; a non-base64 payload is percent-decoded; type defaults to text."""
    assert decode_data_url("data:text/plain;charset=utf-8;base64," + b64(b"hi")) == (
        b"hi",
        "text/plain",
    )
    assert decode_data_url("data:,a%20b") == (b"a b", "text/plain")


def test_decode_data_url_accepts_unpadded_and_urlsafe_base64() -> None:
    """Missing padding and the URL-safe alphabet are accepted."""
    raw = b"\xfb\xff\xfe"
    urlsafe = base64.urlsafe_b64encode(raw).decode()
    assert decode_data_url("data:application/octet-stream;base64," + urlsafe)[0] == raw
    assert decode_data_url("data:text/plain;base64,aGk")[0] == b"hi"


def test_decode_data_url_rejects_bad_base64() -> None:
    """Characters outside base64 give invalid_base64."""
    with pytest.raises(InvalidRequest) as info:
        decode_data_url("data:image/png;base64,not*base64!")
    assert info.value.code == "invalid_base64"


def test_decode_data_url_rejects_non_data_urls() -> None:
    """Something that is not a data URL is refused."""
    with pytest.raises(InvalidRequest) as info:
        decode_data_url("data:image/png;base64")
    assert info.value.code == "invalid_content_part"


def test_decode_data_url_refuses_large_payload_before_decoding() -> None:
    """A base64 payload whose decoded size exceeds max_bytes is file_too_large."""
    with pytest.raises(InvalidRequest) as info:
        decode_data_url("data:image/png;base64," + "A" * 4000, max_bytes=1000)
    assert info.value.code == "file_too_large"


# --- image parts -------------------------------------------------------------------


def test_chat_image_url_data_url() -> None:
    """A Chat image_url part with a PNG data URL becomes a sized image attachment."""
    part = {
        "type": "image_url",
        "image_url": {"url": data_url("image/png", png(3, 2)), "detail": "low"},
    }
    got = load(part)
    assert got == Attachment(png(3, 2), "image/png", "image.png", 3, 2, "messages[2].content[1]")
    assert got.is_image


def test_image_type_is_sniffed_not_declared() -> None:
    """A GIF labelled image/png is attached as image/gif."""
    got = load({"type": "image_url", "image_url": {"url": data_url("image/png", gif(2, 2))}})
    assert (got.mime_type, got.name, got.width) == ("image/gif", "image.gif", 2)


def test_responses_input_image_string_url_is_fetched() -> None:
    """An input_image with an https URL is fetched with the image limit and the part's param."""
    fetch = FakeFetch(Fetched(jpeg(30, 20), "image/jpeg", "https://cdn.example/a.jpg", "a.jpg"))
    got = load({"type": "input_image", "image_url": "https://cdn.example/a.jpg"}, fetch)
    assert (got.mime_type, got.name, got.width, got.height) == ("image/jpeg", "a.jpg", 30, 20)
    assert fetch.calls == [("https://cdn.example/a.jpg", 20 << 20, "messages[2].content[1]")]


def test_fetch_errors_keep_their_code_and_get_the_param() -> None:
    """A refusal from the fetcher reaches the caller with its code and this part's param."""
    fetch = FakeFetch(UrlNotAllowed("The URL is a loopback address (127.0.0.1)."))
    error = refused({"type": "image_url", "image_url": {"url": "http://127.0.0.1/"}}, fetch)
    assert error.code == "url_not_allowed"


def test_fetched_non_image_is_invalid_image() -> None:
    """An image URL that returns HTML is invalid_image."""
    fetch = FakeFetch(Fetched(b"<html>nope</html>", "text/html", "https://x.example/", None))
    error = refused({"type": "image_url", "image_url": {"url": "https://x.example/i.png"}}, fetch)
    assert error.code == "invalid_image"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"this is not an image", "not a JPEG, PNG, GIF or WebP"),
        (png(3, 2)[:16], "damaged or truncated"),
        (b"BM" + b"\x00" * 60, "not a JPEG, PNG, GIF or WebP"),
    ],
    ids=["text", "truncated-png", "bmp"],
)
def test_bytes_that_are_not_a_real_image_are_refused(data: bytes, why: str) -> None:
    """Image parts whose bytes are not an accepted, well-formed image give invalid_image."""
    error = refused({"type": "image_url", "image_url": {"url": data_url("image/png", data)}})
    assert error.code == "invalid_image"
    assert why in error.message


def test_image_bad_base64() -> None:
    """An image data URL with broken base64 is invalid_base64, naming the part."""
    error = refused({"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@@"}})
    assert error.code == "invalid_base64"


def test_image_too_large() -> None:
    """An image over the image limit is file_too_large."""
    padded = png(8, 8) + bytes(200)  # trailing bytes after IEND: still a valid PNG
    part = {"type": "image_url", "image_url": {"url": data_url("image/png", padded)}}
    error = refused(part, limits=Limits(image_bytes=100))
    assert error.code == "file_too_large"


def test_image_url_must_be_http_or_data() -> None:
    """Other URL schemes in an image part are refused without fetching."""
    error = refused({"type": "image_url", "image_url": {"url": "file:///etc/passwd"}})
    assert error.code == "invalid_image"


def test_image_part_without_url() -> None:
    """An image_url part without a url string is invalid_content_part."""
    assert refused({"type": "image_url", "image_url": {}}).code == "invalid_content_part"


# --- file parts ------------------------------------------------------------------------


def test_chat_file_part_with_pdf_data_url() -> None:
    """A Chat file part carrying a PDF data URL becomes a PDF attachment with its file name."""
    pdf = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
    got = load(
        {
            "type": "file",
            "file": {"file_data": data_url("application/pdf", pdf), "filename": "r.pdf"},
        }
    )
    assert got == Attachment(pdf, "application/pdf", "r.pdf", None, None, "messages[2].content[1]")
    assert not got.is_image


def test_file_part_with_raw_base64_text() -> None:
    """Bare base64 file_data is accepted; a .md name makes it text/markdown."""
    got = load({"type": "file", "file": {"file_data": b64(b"# Title\n"), "filename": "notes.md"}})
    assert (got.data, got.mime_type, got.name) == (b"# Title\n", "text/markdown", "notes.md")


@pytest.mark.parametrize(
    ("name", "mime"),
    [
        ("data.csv", "text/csv"),
        ("data.json", "application/json"),
        ("main.py", "text/x-python"),
        ("README", "text/plain"),
        (None, "text/plain"),
    ],
)
def test_text_kinds_follow_the_extension(name: str | None, mime: str) -> None:
    """UTF-8 text is typed by its extension, text/plain otherwise."""
    part: dict[str, Any] = {"type": "file", "file": {"file_data": b64(b"x = 1\n")}}
    if name:
        part["file"]["filename"] = name
    got = load(part)
    assert got.mime_type == mime
    assert got.name == (name or "file.txt")


@pytest.mark.parametrize(
    ("name", "member", "mime_tail"),
    [
        ("a.docx", b"word/document.xml", "wordprocessingml.document"),
        ("a.pptx", b"ppt/presentation.xml", "presentationml.presentation"),
        ("a.xlsx", b"xl/workbook.xml", "spreadsheetml.sheet"),
        (None, b"word/document.xml", "wordprocessingml.document"),
    ],
)
def test_office_documents(name: str | None, member: bytes, mime_tail: str) -> None:
    """Zip archives are Word/PowerPoint/Excel by extension, else by their member names."""
    archive = b"PK\x03\x04" + b"\x00" * 26 + member + b"\x00" * 10
    part: dict[str, Any] = {"type": "input_file", "file_data": data_url("application/zip", archive)}
    if name:
        part["filename"] = name
    got = load(part)
    assert got.mime_type.endswith(mime_tail)


def test_plain_zip_is_unsupported() -> None:
    """A zip archive that is no Office document is unsupported_mime_type."""
    archive = b"PK\x03\x04" + b"\x00" * 26 + b"photos/cat.jpg"
    error = refused({"type": "input_file", "file_data": b64(archive), "filename": "photos.zip"})
    assert error.code == "unsupported_mime_type"
    assert ".zip" in error.message


def test_binary_file_is_unsupported_whatever_its_label() -> None:
    """An executable labelled application/pdf is refused: the type comes from the bytes."""
    error = refused(
        {
            "type": "file",
            "file": {"file_data": data_url("application/pdf", b"\x7fELF\x02\x01\x01\x00")},
        }
    )
    assert error.code == "unsupported_mime_type"


def test_file_part_holding_an_image_is_an_image_attachment() -> None:
    """An image sent as a file part is attached as a sized image."""
    got = load(
        {
            "type": "input_file",
            "file_data": data_url("image/webp", webp_vp8x(9, 4)),
            "filename": "p.webp",
        }
    )
    assert (got.mime_type, got.width, got.height, got.name) == ("image/webp", 9, 4, "p.webp")


def test_file_bad_base64() -> None:
    """Undecodable base64 in file_data is invalid_base64."""
    assert (
        refused({"type": "file", "file": {"file_data": "%%%not base64%%%"}}).code
        == "invalid_base64"
    )


def test_file_too_large() -> None:
    """A file over the file limit is refused before decoding, naming the limit."""
    part = {"type": "file", "file": {"file_data": b64(b"a" * 3000), "filename": "a.txt"}}
    error = refused(part, limits=Limits(file_bytes=1 << 10))
    assert error.code == "file_too_large"
    assert error.message == "The attachment is larger than the 1 KB allowed."


def test_empty_file_is_refused() -> None:
    """An empty file is refused."""
    assert (
        refused({"type": "file", "file": {"file_data": "", "filename": "a.txt"}}).code
        == "invalid_content_part"
    )


def test_file_id_is_not_supported() -> None:
    """Parts referring to uploaded files by file_id are a 400 saying so."""
    for part in (
        {"type": "file", "file": {"file_id": "file-abc"}},
        {"type": "input_file", "file_id": "file-abc"},
        {"type": "input_image", "file_id": "file-abc"},
    ):
        error = refused(part)
        assert error.code == "file_id_not_supported"
        assert "file_id" in error.message


def test_input_file_url_is_fetched_with_the_file_limit() -> None:
    """An input_file with file_url is fetched; its Content-Type and name come along."""
    fetch = FakeFetch(Fetched(b"a,b\n1,2\n", "text/csv", "https://x.example/d", "d.csv"))
    got = load(
        {"type": "input_file", "file_url": "https://x.example/d"},
        fetch,
        limits=Limits(file_bytes=5000),
    )
    assert (got.mime_type, got.name) == ("text/csv", "d.csv")
    assert fetch.calls == [("https://x.example/d", 5000, "messages[2].content[1]")]


def test_unknown_part_type_is_refused() -> None:
    """A part that is not an image or file is invalid_content_part."""
    assert refused({"type": "input_audio", "input_audio": {}}).code == "invalid_content_part"


# --- UPLOAD_BY_URL ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "urls", "rest"),
    [
        ("https://a.example/x.png describe it", ["https://a.example/x.png"], "describe it"),
        (
            "https://a.example/x.png  http://b.example/y.pdf?q=1 compare\nthese",
            ["https://a.example/x.png", "http://b.example/y.pdf?q=1"],
            "compare\nthese",
        ),
        ("HTTPS://A.example/x", ["HTTPS://A.example/x"], ""),
        ("  https://a.example/x.png hi", ["https://a.example/x.png"], "hi"),
        ("look at https://a.example/x.png", [], "look at https://a.example/x.png"),
        ("https:// not a url", [], "https:// not a url"),
        ("ftp://a.example/x hi", [], "ftp://a.example/x hi"),
        (
            "https://a.example/x.png,https://b.example",
            ["https://a.example/x.png,https://b.example"],
            "",
        ),
        ("", [], ""),
    ],
)
def test_upload_by_url_split(text: str, urls: list[str], rest: str) -> None:
    """Leading space-separated http(s) URLs are split off; other text is left whole."""
    assert upload_by_url_split(text) == (urls, rest)
