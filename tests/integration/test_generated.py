"""Generated images, code-interpreter files, code, output and citations come back usable."""

from __future__ import annotations

import base64
import re
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx2 as httpx
import openai
import pytest

from chat2api.sim import SimServer
from chat2api.sim.generated import CITE_TITLE, CITE_URL, sandbox_code, sandbox_csv
from servers import ServiceFactory, ServiceServer, sdk

LINK = re.compile(r"\((http://127\.0\.0\.1:\d+/v1/files/download/[\w-]+)\)")


def _ask(client: openai.OpenAI, text: str) -> str:
    result = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": text}]
    )
    return result.choices[0].message.content or ""


def _files(sim: SimServer, kind: str) -> list[bytes]:
    return [f.data or b"" for f in sim.state.files.values() if f.kind == kind]


def test_dalle_image_link_downloads_the_bytes(
    service: ServiceServer, sim: SimServer, token: str
) -> None:
    """A DALL·E image becomes a markdown image whose link returns the upstream's bytes."""
    content = _ask(sdk(service, token), "a red fox #sim:image")
    (link,) = LINK.findall(content)
    assert f"![image]({link})" in content
    (expected,) = _files(sim, "dalle")
    got = httpx.get(link)
    assert got.status_code == 200 and got.content == expected
    assert got.headers["content-type"] == "image/png"


def test_async_image_is_waited_for(service: ServiceServer, sim: SimServer, token: str) -> None:
    """An image still being drawn when the answer ends downloads once it is finished."""
    content = _ask(sdk(service, token), "a blue whale #sim:image_async")
    (link,) = LINK.findall(content)
    got = httpx.get(link, timeout=30)
    assert got.status_code == 200
    (expected,) = _files(sim, "image_gen")
    assert got.content == expected
    assert sim.state.stats.image_polls >= 2


def test_sandbox_file_code_and_output(service: ServiceServer, sim: SimServer, token: str) -> None:
    """Code runs as fenced blocks, its output too, and the sandbox file as a working link."""
    content = _ask(sdk(service, token), "make a csv #sim:sandbox")
    assert f"```python\n{sandbox_code().rstrip()}\n```" in content
    assert "```Output\n3 rows written\n```" in content
    assert "sandbox:" not in content
    (link,) = LINK.findall(content)
    assert f"[data.csv]({link})" in content
    assert httpx.get(link).content == sandbox_csv()


def test_citations_and_markers(service: ServiceServer, token: str) -> None:
    """Private-use markers are removed; the cited source comes back as a link."""
    content = _ask(sdk(service, token), "what happened #sim:cite")
    assert not re.search("[\ue200-\ue206]", content)
    assert f"[{CITE_TITLE}]({CITE_URL})" in content


def test_unknown_download_link_is_404(service: ServiceServer) -> None:
    """A download link that was never made (or expired) is a 404 in the error envelope."""
    got = httpx.get(f"{service.openai_base_url}/files/download/not-a-token")
    assert got.status_code == 404
    assert got.json()["error"]["param"] == "token"


@pytest.mark.parametrize("response_format", ["url", "b64_json"])
def test_images_generations(
    service: ServiceServer, sim: SimServer, token: str, response_format: str
) -> None:
    """client.images.generate returns working URLs or base64 of the generated image."""
    result = sdk(service, token).images.generate(
        prompt="a lighthouse", n=1, size="512x768", response_format=response_format
    )
    (image,) = result.data or []
    (expected,) = _files(sim, "image_gen")
    if response_format == "url":
        assert image.url is not None
        assert httpx.get(image.url, timeout=30).content == expected
    else:
        assert image.b64_json is not None
        assert base64.b64decode(image.b64_json) == expected
    (record,) = [f for f in sim.state.files.values() if f.kind == "image_gen"]
    assert (record.width, record.height) == (512, 768)
    (body,) = [r["body"] for r in sim.state.requests if r["path"].endswith("/conversation")]
    assert body["system_hints"] == ["picture_v2"]


class _Proxy(BaseHTTPRequestHandler):
    """A minimal forward proxy for plain-HTTP GETs; remembers what it forwarded."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Proxy.seen.append(self.path)
        with urllib.request.urlopen(self.path, timeout=10) as upstream:
            body = upstream.read()
            kind = upstream.headers.get("Content-Type", "application/octet-stream")
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


def test_export_proxy_carries_downloads(
    make_service: ServiceFactory, sim: SimServer, token: str
) -> None:
    """With EXPORT_PROXY_URL, the bytes of a generated file are fetched through that proxy."""
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        service = make_service(EXPORT_PROXY_URL=f"http://127.0.0.1:{proxy.server_address[1]}")
        content = _ask(sdk(service, token), "a red fox #sim:image")
        (link,) = LINK.findall(content)
        (expected,) = _files(sim, "dalle")
        assert httpx.get(link).content == expected
        assert any("/_blob/" in path for path in _Proxy.seen)
    finally:
        proxy.shutdown()
        proxy.server_close()
