"""Images and files in messages via the upstream file flow; refusals before anything is sent."""

from __future__ import annotations

import base64
import struct
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest

from chat2api.sim import SimServer
from servers import ServiceFactory, ServiceServer, sdk

ALL_ERAS = True  # each test runs against the simulator in every era (conftest.ERAS)


def png(width: int, height: int) -> bytes:
    """A real (tiny) PNG of the given size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"\x80" * (width * 3) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


IMAGE = png(3, 2)
DATA_URL = "data:image/png;base64," + base64.b64encode(IMAGE).decode()
BIG = b"0123456789abcdef" * (30 * 1024 * 1024 // 16)  # 30 MB: one fits a request, two do not


class _Files(BaseHTTPRequestHandler):
    """Serves /cat.png, /notes.txt and a redirect to a loopback URL."""

    def do_GET(self) -> None:
        if self.path == "/cat.png":
            body, kind = IMAGE, "image/png"
        elif self.path == "/notes.txt":
            body, kind = b"meeting at noon\n", "text/plain"
        elif self.path.startswith("/big"):
            body, kind = BIG, "text/plain"
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:9/secret")
            self.end_headers()
            return
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def file_server() -> Iterator[str]:
    """A loopback HTTP server with files to fetch; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _ask(parts: list[dict]) -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": "say exactly: seen"}, *parts]}]


def test_image_data_url_is_uploaded_and_attached(
    service: ServiceServer, sim: SimServer, token: str
) -> None:
    """A data-URL image goes through the file flow and arrives as an image pointer with metadata."""
    result = sdk(service, token).chat.completions.create(
        model="gpt-4o", messages=_ask([{"type": "image_url", "image_url": {"url": DATA_URL}}])
    )
    assert result.choices[0].message.content == "seen"
    (pointer,) = sim.state.last_image_parts()
    assert pointer["asset_pointer"].startswith("file-service://file-")
    assert (pointer["size_bytes"], pointer["width"], pointer["height"]) == (len(IMAGE), 3, 2)
    (attachment,) = sim.state.last_attachments()
    assert attachment["mimeType"] == "image/png"
    assert (attachment["size"], attachment["width"], attachment["height"]) == (len(IMAGE), 3, 2)
    stored = sim.state.files[pointer["asset_pointer"].removeprefix("file-service://")]
    assert stored.data == IMAGE and stored.use_case == "multimodal"


def test_file_part_and_url_image(
    make_service: ServiceFactory, sim: SimServer, token: str, file_server: str
) -> None:
    """A file part and a fetched image (from an allowed host) both arrive with their metadata."""
    service = make_service(FETCH_ALLOWED_HOSTS="127.0.0.1")
    text = base64.b64encode(b"col\n1\n").decode()
    sdk(service, token).chat.completions.create(
        model="gpt-4o",
        messages=_ask(
            [
                {"type": "image_url", "image_url": {"url": f"{file_server}/cat.png"}},
                {"type": "file", "file": {"file_data": text, "filename": "data.csv"}},
            ]
        ),
    )
    names = {a["name"]: a for a in sim.state.last_attachments()}
    assert names["data.csv"]["mimeType"] == "text/csv"
    assert names["data.csv"]["size"] == 6
    assert names["cat.png"]["width"] == 3
    assert len(sim.state.last_image_parts()) == 1  # only the image is a pointer


def test_upload_by_url(
    make_service: ServiceFactory, sim: SimServer, token: str, file_server: str
) -> None:
    """UPLOAD_BY_URL turns leading URLs of a message into attachments and keeps the text."""
    service = make_service(FETCH_ALLOWED_HOSTS="127.0.0.1", UPLOAD_BY_URL="true")
    sdk(service, token).chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": f"{file_server}/notes.txt say exactly: read it"}],
    )
    (attachment,) = sim.state.last_attachments()
    assert attachment["name"] == "notes.txt" and attachment["size"] == 16
    assert sim.state.last_request_messages()[-1][1] == "say exactly: read it"


def test_attachments_of_one_request_are_bounded_together(
    make_service: ServiceFactory, sim: SimServer, token: str, file_server: str
) -> None:
    """Each URL may be up to the per-file limit, but all of one request share 50 MB."""
    service = make_service(FETCH_ALLOWED_HOSTS="127.0.0.1", UPLOAD_BY_URL="true")
    client = sdk(service, token)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": f"{file_server}/big1 {file_server}/big2 say: x"}],
        )
    assert isinstance(info.value.body, dict)
    assert "MB" in info.value.body["message"]
    assert info.value.body["param"] == "messages[0].content"
    assert sim.state.stats.conversations == 0
    one = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": f"{file_server}/big1 say exactly: one"}],
    )
    assert one.choices[0].message.content == "one"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9/x.png", "loopback"),
        ("http://10.0.0.1/x.png", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://localhost:9/x.png", "loopback"),
    ],
)
def test_private_urls_refused(
    service: ServiceServer, sim: SimServer, token: str, url: str, reason: str
) -> None:
    """URLs reaching the host's private network are refused with a 400 that says why."""
    with pytest.raises(openai.BadRequestError) as info:
        sdk(service, token).chat.completions.create(
            model="gpt-4o", messages=_ask([{"type": "image_url", "image_url": {"url": url}}])
        )
    assert isinstance(info.value.body, dict)
    assert info.value.body["code"] == "url_not_allowed"
    assert info.value.body["param"] == "messages[0].content[1]"
    assert reason in info.value.body["message"]
    assert sim.state.stats.conversations == 0


def test_redirect_to_loopback_refused(
    make_service: ServiceFactory, sim: SimServer, token: str, file_server: str
) -> None:
    """A redirect from an allowed host to a loopback address is refused."""
    service = make_service(FETCH_ALLOWED_HOSTS="localhost")
    url = file_server.replace("127.0.0.1", "localhost") + "/redirect"
    with pytest.raises(openai.BadRequestError) as info:
        sdk(service, token).chat.completions.create(
            model="gpt-4o", messages=_ask([{"type": "image_url", "image_url": {"url": url}}])
        )
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "url_not_allowed"
    assert "redirect" in info.value.body["message"]


@pytest.mark.parametrize(
    ("part", "code"),
    [
        (
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}},
            "invalid_base64",
        ),
        (
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}},
            "invalid_image",
        ),
        (
            {"type": "file", "file": {"file_data": base64.b64encode(b"\x00\x01\x02").decode()}},
            "unsupported_mime_type",
        ),
    ],
)
def test_bad_inputs_name_the_part(
    service: ServiceServer, sim: SimServer, token: str, part: dict, code: str
) -> None:
    """Undecodable or unsupported parts get a 400 naming the part; nothing is sent upstream."""
    with pytest.raises(openai.BadRequestError) as info:
        sdk(service, token).chat.completions.create(model="gpt-4o", messages=_ask([part]))
    assert isinstance(info.value.body, dict)
    assert (info.value.body["code"], info.value.body["param"]) == (code, "messages[0].content[1]")
    assert sim.state.stats.conversations == 0
    assert not sim.state.files


def test_login_free_cannot_upload(service: ServiceServer, sim: SimServer) -> None:
    """The login-free flow cannot upload: a clear 400, nothing sent."""
    with pytest.raises(openai.BadRequestError) as info:
        sdk(service, "sk-anything").chat.completions.create(
            model="gpt-4o", messages=_ask([{"type": "image_url", "image_url": {"url": DATA_URL}}])
        )
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "upload_needs_account"
    assert sim.state.stats.conversations == 0


def test_upload_refused_upstream_names_the_part(
    service: ServiceServer, sim: SimServer, token: str
) -> None:
    """A file the upstream refuses is a 400 naming the part; no conversation is sent."""
    sim.state.config = sim.state.config.patched({"max_upload_bytes": 10})
    with pytest.raises(openai.BadRequestError) as info:
        sdk(service, token).chat.completions.create(
            model="gpt-4o", messages=_ask([{"type": "image_url", "image_url": {"url": DATA_URL}}])
        )
    assert isinstance(info.value.body, dict)
    assert info.value.body["code"] == "upload_refused"
    assert info.value.body["param"] == "messages[0].content[1]"
    assert sim.state.stats.conversations == 0
