"""Content parts → attachments: data URLs, limits, part shapes (byte sniffing: test_sniff.py)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from built_images import gif, jpeg, png, webp_vp8x

from chat2api.convert.attachments import (
    Limits,
    decode_data_url,
    load_part,
    upload_by_url_split,
)
from chat2api.errors import InvalidRequest
from chat2api.net.fetch import Fetched, UrlNotAllowed
from chat2api.values import Attachment


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
