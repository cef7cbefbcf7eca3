"""Deterministic generated content: images (PNG), code-interpreter runs, citations.

Everything here is a pure function of its arguments, so a test can compute the
exact bytes and text the simulator will produce:

* `generated_png(prompt, width, height)` — a real PNG (8-bit RGB, written with
  zlib/struct), a two-colour checkerboard whose colours come from SHA-256 of
  the prompt;
* `image_request(prompt)` — the image prompt and size asked for (`size=WxH`);
* `dalle_code(...)`, `image_gen_code(...)`, `image_reply_text(prompt)`;
* `sandbox_code()`, `sandbox_output()`, `sandbox_csv()`, `sandbox_reply()`;
* `cite_text(prompt)`, `citations(text)`, `content_references(text, sources)`,
  `supporting_site(k)`.
"""

from __future__ import annotations

import functools
import hashlib
import re
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import orjson

from chat2api.sim.replies import reply_text

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEFAULT_SIZE = (1024, 1024)
MIN_SIDE = 16
MAX_SIDE = 2048
CELL = 64
SIZE_REQUEST = re.compile(r"(?<!\S)size=(\d{1,5})x(\d{1,5})(?!\S)")

DALLE_TOOL = "dalle.text2im"
IMAGE_GEN_TOOL = "t2uay3k.sj1i4kz"

SANDBOX_PATH = "/mnt/data/data.csv"
SANDBOX_FILE_NAME = "data.csv"

CITE_MARKER = "\ue200cite\ue202turn0search3\ue201"
CITE_URL = "https://www.example.org/sim/articles/source-3"
CITE_TITLE = "Simulated source number three"
CITE_DOMAIN = "www.example.org"


# --------------------------------------------------------------------------- images


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """What an image prompt asks for: the prompt without its `size=` token, and the size."""

    prompt: str
    width: int
    height: int

    @property
    def size(self) -> str:
        """`"<width>x<height>"`, as in the tool call's JSON."""
        return f"{self.width}x{self.height}"

    @property
    def orientation(self) -> str:
        """`landscape`, `portrait` or `square`."""
        if self.width > self.height:
            return "landscape"
        return "portrait" if self.height > self.width else "square"


def image_request(prompt: str) -> ImageRequest:
    """Split a `size=WxH` token off the prompt (1024x1024 when absent or out of 16..2048)."""
    width, height = DEFAULT_SIZE
    match = SIZE_REQUEST.search(prompt)
    if match:
        w, h = int(match.group(1)), int(match.group(2))
        if MIN_SIDE <= w <= MAX_SIDE and MIN_SIDE <= h <= MAX_SIDE:
            width, height = w, h
        prompt = (prompt[: match.start()] + prompt[match.end() :]).strip()
        prompt = re.sub(r"\s{2,}", " ", prompt)
    return ImageRequest(prompt=prompt or "an image", width=width, height=height)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@functools.lru_cache(maxsize=64)
def generated_png(prompt: str, width: int = 1024, height: int = 1024) -> bytes:
    """The image generated for `prompt`: a `width`×`height` RGB PNG, 64-px checkerboard."""
    if not (1 <= width <= 8192 and 1 <= height <= 8192):
        raise ValueError("width and height must be within 1..8192")
    digest = hashlib.sha256(prompt.encode()).digest()
    a, b = digest[0:3], digest[3:6]
    cells = -(-width // CELL)
    even = b"".join((a if i % 2 == 0 else b) * CELL for i in range(cells))[: width * 3]
    odd = b"".join((b if i % 2 == 0 else a) * CELL for i in range(cells))[: width * 3]
    rows = [b"\x00" + (even if (y // CELL) % 2 == 0 else odd) for y in range(height)]
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b"".join(rows), 6))
        + _chunk(b"IEND", b"")
    )


def png_size(data: bytes) -> tuple[int, int] | None:
    """`(width, height)` from a PNG's IHDR, or None when `data` is not a PNG."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def image_seed(prompt: str) -> int:
    """The `seed` reported for an image (from SHA-256 of the prompt)."""
    return int.from_bytes(hashlib.sha256(b"seed:" + prompt.encode()).digest()[:4], "big")


def image_gen_id(prompt: str) -> str:
    """The `gen_id` reported for an image."""
    return hashlib.sha256(b"gen:" + prompt.encode()).hexdigest()[:16]


def dalle_code(request: ImageRequest) -> str:
    """`content.text` of the assistant's call to `dalle.text2im` (compact JSON)."""
    return orjson.dumps({"prompt": request.prompt, "size": request.size, "n": 1}).decode()


def image_gen_code(request: ImageRequest, referenced: list[str]) -> str:
    """`content.text` of the assistant's call to the picture_v2 tool (compact JSON)."""
    body = {
        "prompt": request.prompt,
        "size": request.size,
        "n": 1,
        "referenced_image_ids": referenced,
    }
    return orjson.dumps(body).decode()


def image_reply_text(prompt: str) -> str:
    """The short final answer after a DALL·E image (`prompt` = the image prompt)."""
    return f"Here is the image you asked for: {prompt}."


def image_title(prompt: str) -> str:
    """`metadata.image_gen_title` of a picture_v2 tool message."""
    words = prompt.split()[:6]
    return " ".join(words).capitalize() if words else "Generated image"


# --------------------------------------------------------------------------- sandbox


def sandbox_code() -> str:
    """The Python the model sends to the `python` tool."""
    return (
        "import csv\n"
        'rows = [("n", "square"), (1, 1), (2, 4), (3, 9)]\n'
        'with open("/mnt/data/data.csv", "w", newline="") as f:\n'
        "    csv.writer(f).writerows(rows)\n"
        'print(len(rows) - 1, "rows written")\n'
    )


def sandbox_output() -> str:
    """What running `sandbox_code()` printed (`execution_output` text)."""
    return "3 rows written\n"


def sandbox_csv() -> bytes:
    """The bytes of `/mnt/data/data.csv` (csv module default line ends)."""
    return b"n,square\r\n1,1\r\n2,4\r\n3,9\r\n"


def sandbox_reply() -> str:
    """The final answer of a code-interpreter turn, linking the file."""
    return f"I wrote the table to [{SANDBOX_FILE_NAME}](sandbox:{SANDBOX_PATH}). It has 3 rows."


# --------------------------------------------------------------------------- citations


def cite_text(prompt: str) -> str:
    """The answer of a citing turn: hashed words, a cite marker, stray `\\ue203`/`\\ue204`."""
    head = reply_text(prompt, 8)
    return f"{head} {CITE_MARKER} \ue203See the source for details.\ue204"


def citations(text: str) -> list[dict[str, Any]]:
    """`metadata.citations` (2024 `tether_og` shape): one entry spanning the cite marker."""
    start = text.index(CITE_MARKER)
    return [
        {
            "start_ix": start,
            "end_ix": start + len(CITE_MARKER),
            "citation_format_type": "tether_og",
            "metadata": {
                "type": "webpage",
                "title": CITE_TITLE,
                "url": CITE_URL,
                "text": "",
                "pub_date": None,
                "extra": {"cited_message_idx": 0, "search_result_idx": 3, "evidence_text": ""},
            },
        }
    ]


def supporting_site(k: int) -> dict[str, Any]:
    """The `k`-th (from 1) supporting website of the cited page: `source-<3+k>`."""
    n = 3 + k
    return {
        "title": f"Simulated supporting source {n}",
        "url": f"https://{CITE_DOMAIN}/sim/articles/source-{n}",
        "pub_date": None,
        "snippet": "Another page the simulator pretends to have searched.",
        "attribution": CITE_DOMAIN,
    }


def content_references(text: str, sources: int = 1) -> list[dict[str, Any]]:
    """`metadata.content_references` (2025 `grouped_webpages` shape) for the cite marker.

    ``sources`` > 1 cites more pages, as `supporting_websites` of the one item.
    """
    start = text.index(CITE_MARKER)
    return [
        {
            "matched_text": CITE_MARKER,
            "start_idx": start,
            "end_idx": start + len(CITE_MARKER),
            "safe_urls": [CITE_URL],
            "refs": [{"turn_index": 0, "ref_type": "search", "ref_index": 3}],
            "alt": f"([{CITE_DOMAIN}]({CITE_URL}))",
            "prompt_text": None,
            "type": "grouped_webpages",
            "invalid": False,
            "items": [
                {
                    "title": CITE_TITLE,
                    "url": CITE_URL,
                    "pub_date": None,
                    "snippet": "A page the simulator pretends to have searched.",
                    "attribution": CITE_DOMAIN,
                    "refs": [{"turn_index": 0, "ref_type": "search", "ref_index": 3}],
                    "supporting_websites": [supporting_site(k) for k in range(1, sources)],
                }
            ],
            "fallback_items": [],
            "status": "done",
            "error": None,
            "style": None,
        }
    ]
