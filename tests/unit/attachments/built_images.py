"""Small images built byte by byte from the formats' specifications, for the attachment tests."""

from __future__ import annotations

import struct
import zlib


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
