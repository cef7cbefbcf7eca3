"""The type and image size of bytes: real encoder output, hand-built headers, cut and garbage.

The files in tests/fixtures/sniff were written by Pillow 13 and checked with
file(1); the hand-built headers (built_images.py) reach the corners an encoder
does not write (fill bytes, a 16383-pixel VP8L width).
"""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path

import pytest
from built_images import gif, jpeg, png, riff, webp_vp8, webp_vp8l, webp_vp8x
from hypothesis import given
from hypothesis import strategies as st

from chat2api.convert.sniff import DOCX, PPTX, XLSX, image_dimensions, office_type, sniff_mime

SAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "sniff"

# file name → (type, (width, height)) as file(1) reports them
IMAGES = {
    "rgb-3x2.png": ("image/png", (3, 2)),
    "palette-40x1.png": ("image/png", (40, 1)),
    "5x7.gif": ("image/gif", (5, 7)),
    "baseline-9x4.jpg": ("image/jpeg", (9, 4)),
    "progressive-17x9.jpg": ("image/jpeg", (17, 9)),
    "exif-12x3.jpg": ("image/jpeg", (12, 3)),  # an APP1 (Exif) segment before the frame
    "lossy-6x3.webp": ("image/webp", (6, 3)),  # VP8
    "lossless-6x3.webp": ("image/webp", (6, 3)),  # VP8L
    "alpha-4x5.webp": ("image/webp", (4, 5)),  # VP8X
}


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def office(members: list[str], *, padding: int = 0) -> bytes:
    """A real zip archive with these member names (after `padding` bytes of a stored member)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        if padding:
            archive.writestr("padding.bin", bytes(padding))
        for name in members:
            archive.writestr(name, b"<xml/>")
    return out.getvalue()


DOCX_MEMBERS = ["[Content_Types].xml", "_rels/.rels", "word/document.xml"]
XLSX_MEMBERS = ["[Content_Types].xml", "_rels/.rels", "xl/workbook.xml"]
PPTX_MEMBERS = ["[Content_Types].xml", "_rels/.rels", "ppt/presentation.xml"]


# --- real files ------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), IMAGES.items(), ids=list(IMAGES))
def test_encoder_output(name: str, expected: tuple[str, tuple[int, int]]) -> None:
    """Each encoder-written image gives the type and size file(1) gives."""
    data = sample(name)
    assert (sniff_mime(data), image_dimensions(data)) == expected


def test_pdf() -> None:
    """A PDF is recognised and has no image size."""
    data = sample("page.pdf")
    assert sniff_mime(data) == "application/pdf"
    assert image_dimensions(data) is None


@pytest.mark.parametrize("name", IMAGES)
def test_every_prefix_gives_the_size_or_nothing(name: str) -> None:
    """A cut file gives None until its header is whole, then the full size: never another size."""
    data = sample(name)
    size = IMAGES[name][1]
    results = [image_dimensions(data[:end]) for end in range(len(data) + 1)]
    assert set(results) <= {None, size}
    first = results.index(size)
    assert results[first:] == [size] * (len(results) - first)
    assert first > 0 and results[:first] == [None] * first


@pytest.mark.parametrize("name", IMAGES)
def test_a_damaged_signature_is_not_that_type(name: str) -> None:
    """One changed byte of the signature and the bytes are no longer that image."""
    data = bytearray(sample(name))
    data[1] ^= 0xFF
    assert sniff_mime(bytes(data)) != IMAGES[name][0]
    assert image_dimensions(bytes(data)) is None


# --- Office archives ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("members", "mime"),
    [(DOCX_MEMBERS, DOCX), (XLSX_MEMBERS, XLSX), (PPTX_MEMBERS, PPTX)],
    ids=["docx", "xlsx", "pptx"],
)
def test_office_format_from_member_names(members: list[str], mime: str) -> None:
    """A zip archive is told apart by the names of its members when its name says nothing."""
    data = office(members)
    assert sniff_mime(data) == "application/zip"
    assert office_type(data, "") == mime
    assert office_type(data, "zip") == mime


def test_office_extension_wins() -> None:
    """A .docx name makes any archive Word; a plain archive with no hint is no Office file."""
    plain = office(["readme.txt"])
    assert office_type(plain, "docx") == DOCX
    assert office_type(plain, "") is None
    assert sniff_mime(b"PK\x05\x06" + bytes(18)) == "application/zip"  # an empty archive


def test_office_members_are_looked_for_in_the_first_64_kib() -> None:
    """Member names past the first 64 KiB are not read (the archive is not unpacked)."""
    assert office_type(office(DOCX_MEMBERS, padding=1000), "") == DOCX
    assert office_type(office(DOCX_MEMBERS, padding=70_000), "") is None


# --- text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        ("name,qty\nß,2\n".encode(), "text/plain"),
        ("\ufeffwith a BOM".encode(), "text/plain"),
        ("naïve".encode("latin-1"), None),  # not UTF-8
        ("ß".encode()[:1], None),  # cut inside a character
        ("utf-16".encode("utf-16"), None),  # NUL bytes
        (b"text with a \x00 NUL", None),
        (b"", None),
    ],
    ids=["utf8", "bom", "latin1", "cut-char", "utf16", "nul", "empty"],
)
def test_text(data: bytes, mime: str | None) -> None:
    """UTF-8 without NUL is text; anything else that is no known format is nothing."""
    assert sniff_mime(data) == mime


# --- headers built by hand -------------------------------------------------------------


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
        (webp_vp8(320 | 0x4000, 240 | 0xC000), "image/webp", (320, 240)),  # scaling bits
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
        "webp-vp8-scaled",
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
        b"\xff\xd8\xff\xda\x00\x02" + jpeg(8, 8)[2:],  # a frame header after the scan
        jpeg(8, 8)[:20] + b"\x00\xc0\x00\x0b\x08\x00\x07\x00\x05\x01\x01\x11\x00",  # no 0xFF
        jpeg(0, 10),
        b"\xff\xd8\xff\xe0\x00\x10JFIF",  # cut off before SOF
        riff(b"VP8 ", b"\x00" * 10),  # no start code
        riff(b"VP8L", b"\x00" + (5 | 7 << 14).to_bytes(4, "little") + b"\x00" * 4),  # no 0x2f
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
        "jpeg-frame-after-scan",
        "jpeg-marker-without-ff",
        "jpeg-zero-width",
        "jpeg-cut",
        "webp-no-start-code",
        "webp-vp8l-no-signature",
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


# --- garbage -------------------------------------------------------------------------

KNOWN = {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"}
KNOWN |= {"application/zip", "text/plain", None}


@given(st.binary(max_size=64))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    """Any bytes give a known type (or None) and a positive size (or None)."""
    assert sniff_mime(data) in KNOWN
    size = image_dimensions(data)
    assert size is None or (size[0] > 0 and size[1] > 0)


@pytest.mark.parametrize("magic", [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"RIFF"])
def test_a_signature_followed_by_noise(magic: bytes) -> None:
    """A signature and random bytes: parsed without an error, and a size only if positive."""
    noise = random.Random(magic).randbytes(200)
    data = magic + (noise[:4] + b"WEBP" + noise if magic == b"RIFF" else noise)
    size = image_dimensions(data)
    assert size is None or (size[0] > 0 and size[1] > 0)
