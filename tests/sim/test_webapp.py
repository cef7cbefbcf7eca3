"""The web app (page, assets, its JS run under Node), logout and the stub endpoints."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from chat2api.sim import SimConfig
from chat2api.sim.proofs import verify_proof
from chat2api.sim.webapp import STUBS

from .conftest import Client

APP_JS = Path(__file__).parents[2] / "src" / "chat2api" / "sim" / "static" / "app.js"
FNV_VECTORS = Path(__file__).parents[1] / "fixtures" / "fnv_vectors.json"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")


def run_node(script: str, timeout: float = 60) -> object:
    """Run `script` under Node with `app` = app.js's exports; return what it prints as JSON."""
    assert NODE is not None
    prelude = f"const app = require({json.dumps(str(APP_JS))});\n"
    done = subprocess.run(
        [NODE, "-e", prelude + script], capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_page_has_ids_assets_and_build(client: Client) -> None:
    """GET / has the app's ids, relative asset links, data-build and the three CDN script URLs."""
    reply = client.request("GET", "/")
    page = reply.body.decode()
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/html")
    assert re.search(r'<html data-build="prod-[0-9a-f]{40}"', page)
    assert len(re.findall(r'<script src="https://cdn\.oaistatic\.com/assets/[^"]+\.js"', page)) == 3
    for ident in ("user-name", "prompt", "send", "answer", "status"):
        assert f'id="{ident}"' in page
    assert '<textarea id="prompt"' in page and '<button id="send"' in page
    assert '<a id="logout" href="/auth/logout">' in page
    assert '<div id="status">idle</div>' in page
    assert '<script src="/assets/app.js"></script>' in page
    assert '<link rel="stylesheet" href="/assets/app.css">' in page
    assert '<meta name="sim-pow-hash" content="sha3">' in page
    client.request("POST", "/_sim/config", {"pow_hash": "fnv"})
    assert '<meta name="sim-pow-hash" content="fnv">' in client.request("GET", "/").body.decode()


def test_assets_served_with_cache_control(client: Client) -> None:
    """app.js and app.css are served with their types and Cache-Control; others 404."""
    js = client.request("GET", "/assets/app.js")
    assert js.status == 200 and js.headers["content-type"].startswith("text/javascript")
    assert js.headers["cache-control"] == "public, max-age=600"
    assert js.body == APP_JS.read_bytes() and b"getReader()" in js.body
    css = client.request("GET", "/assets/app.css")
    assert css.status == 200 and css.headers["content-type"].startswith("text/css")
    assert "max-age" in css.headers["cache-control"]
    assert client.request("GET", "/assets/other.js").status == 404


def test_app_js_makes_no_absolute_requests() -> None:
    """Every URL app.js fetches is relative to the page's origin (no host names)."""
    source = APP_JS.read_text()
    assert "http://" not in source and "https://" not in source.replace("https://pay.example", "")
    assert '"/api/auth/session", { credentials: "include" }' in source


@needs_node
def test_js_fnv_matches_spec_vectors() -> None:
    """app.js's FNV-1a matches spec 3.3's test vectors (the shared fixture)."""
    vectors = json.loads(FNV_VECTORS.read_text("utf-8"))["vectors"]
    inputs = json.dumps([v["input"] for v in vectors])
    got = run_node(f"console.log(JSON.stringify({inputs}.map(app.fnv1a)));")
    assert got == [v["fnv"] for v in vectors]


@needs_node
def test_js_sha3_matches_hashlib() -> None:
    """app.js's SHA3-512 matches hashlib on short, block-edge, long and non-ASCII inputs."""
    import hashlib

    inputs = ["", "abc", "x" * 71, "x" * 72, "y" * 300, "webdriver\u2212false"]
    got = run_node(f"console.log(JSON.stringify({json.dumps(inputs)}.map(app.sha3_512)));")
    assert got == [hashlib.sha3_512(s.encode()).hexdigest() for s in inputs]


@needs_node
@pytest.mark.parametrize("algorithm", ["fnv", "sha3"])
def test_js_proofs_pass_the_sim_check(algorithm: str) -> None:
    """solveProof's tokens pass the simulator's own verification (with ~S for FNV)."""
    seeds = ["0.5172839506172839", "0.1", "0.987654321"]
    got = run_node(
        f"const cfg = [3000, 'd', 1, 0, 'UA', '/assets/app.js', 'prod-x', 'en-US', 'en', 0];\n"
        f"console.log(JSON.stringify({json.dumps(seeds)}.map("
        f"s => app.solveProof(s, '0fffff', {json.dumps(algorithm)}, cfg))));"
    )
    assert isinstance(got, list)
    for seed, proof in zip(seeds, got, strict=True):
        assert proof.endswith("~S") == (algorithm == "fnv")
        assert verify_proof(proof, seed, "0fffff", algorithm).value == "ok"


@needs_node
def test_js_sse_parser_is_incremental() -> None:
    """The SSE parser joins records split anywhere, handles CRLF and `data:` without a space."""
    got = run_node(
        "const p = new app.SseParser(); const out = [];\n"
        "const pieces = ['data: {\"a\"', ':1}\\n', '\\ndata:[DO', 'NE]\\r\\n\\r\\n'];\n"
        "for (const piece of [...pieces, ': x\\n\\n']) out.push(...p.feed(piece));\n"
        "console.log(JSON.stringify(out));"
    )
    assert got == ['{"a":1}', "[DONE]"]


@needs_node
@pytest.mark.parametrize("algorithm", ["fnv", "sha3"])
def test_js_send_streams_an_answer_from_the_sim(client: Client, algorithm: str) -> None:
    """app.js's send() (requirements, proof, legacy stream) gets the sim's answer under Node."""
    client.request("POST", "/_sim/config", {"pow_hash": algorithm, "require_p": True})
    client.request(
        "POST",
        "/_sim/script",
        {"reply": "Hello from the sim.", "chunks": ["Hel", "lo from", " the sim."]},
    )
    base = client.server.base_url
    got = run_node(
        "const seen = [];\n"
        "app.send({base: " + json.dumps(base) + ", accessToken: " + json.dumps(client.token) + ","
        " prompt: 'hi there', deviceId: app.uuid4(), powHash: " + json.dumps(algorithm) + ","
        " config: [3000, 'd', 1, 0, 'UA', '/assets/app.js', 'prod-x', 'en-US', 'en', 0],"
        " onText: t => seen.push(t)})"
        ".then(r => console.log(JSON.stringify({r, seen})),"
        " e => { console.log(JSON.stringify({error: e.message})); });"
    )
    assert isinstance(got, dict) and "error" not in got, got
    assert got["r"]["text"] == "Hello from the sim."
    assert got["seen"][-1] == "Hello from the sim." and "Hel" in got["seen"]
    assert got["r"]["conversationId"] and got["r"]["messageId"]
    sent = client.request("GET", "/_sim/requests?path=/backend-api/conversation").json()["requests"]
    assert len(sent) == 1
    headers, body = sent[0]["headers"], sent[0]["body"]
    assert headers["accept"] == "text/event-stream"
    assert headers["authorization"] == f"Bearer {client.token}"
    assert headers["openai-sentinel-chat-requirements-token"].startswith("gAAAAAB")
    assert headers["openai-sentinel-proof-token"].startswith("gAAAAAB")
    assert re.fullmatch(r"[0-9a-f-]{36}", headers["oai-device-id"])
    assert body["supported_encodings"] == [] and body["action"] == "next"
    assert body["messages"][0]["content"]["parts"] == ["hi there"]
    stats = client.request("GET", "/_sim/stats").json()
    assert stats["rejected_sentinel"] == 0 and stats["streams_completed"] == 1


@needs_node
def test_js_send_reports_http_errors(client: Client) -> None:
    """A refused send rejects with `HTTP <status>: <detail>` (#status shows it after `error: `)."""
    client.request("POST", "/_sim/faults", {"fault": "server_error"})
    got = run_node(
        "app.send({base: "
        + json.dumps(client.server.base_url)
        + ", accessToken: "
        + json.dumps(client.token)
        + ", prompt: 'x', deviceId: 'd', powHash: 'sha3',"
        " config: [1, 'd', 1, 0, 'UA']}).then(() => console.log('null'),"
        " e => console.log(JSON.stringify(e.message)));"
    )
    assert isinstance(got, str) and got.startswith("HTTP 500: Hmm...something")


def test_logout_redirects_home(client: Client) -> None:
    """GET /auth/logout is a 302 to / and is counted."""
    reply = client.request("GET", "/auth/logout")
    assert reply.status == 302 and reply.headers["location"] == "/"
    assert client.request("GET", "/_sim/hits").json()["hits"] == {"/auth/logout": 1}


def test_stubs_answer_and_are_counted(client: Client) -> None:
    """Every endpoint a gateway blocks answers 200 JSON here, counted per path and recorded."""
    for method, path, _ in STUBS:
        concrete = path.replace("{id}", "abc123")
        reply = client.request(method, concrete, {"x": 1} if method != "GET" else None)
        assert reply.status == 200, (method, concrete)
        assert reply.json()["sim_stub"] is True
    me = client.request("GET", "/backend-api/me", headers=client.auth())
    assert me.status == 200 and me.json()["object"] == "user"
    hits = client.request("GET", "/_sim/hits").json()["hits"]
    assert hits["/backend-api/memories"] == 2  # GET and DELETE
    assert hits["/backend-api/shared_conversations/abc123"] == 1
    assert hits["/backend-api/me"] == 1
    assert sum(hits.values()) == len(STUBS) + 1
    assert client.server.state.hits == hits
    recorded = client.request("GET", "/_sim/requests").json()["requests"]
    assert [(r["method"], r["path"]) for r in recorded[:2]] == [
        ("GET", "/backend-api/accounts/check/v4-2023-04-27"),
        ("POST", "/backend-api/accounts/deactivate"),
    ]
    assert recorded[1]["body"] == {"x": 1} and "user-agent" in recorded[1]["headers"]
    client.request("POST", "/_sim/reset")
    assert client.request("GET", "/_sim/hits").json()["hits"] == {}


def test_session_is_counted(client: Client) -> None:
    """GET /api/auth/session keeps its answers and is counted in hits."""
    assert client.request("GET", "/api/auth/session").json() == {}
    signed_in = client.request(
        "GET", "/api/auth/session", headers={"Cookie": "__Secure-next-auth.session-token=x"}
    ).json()
    assert signed_in["user"]["name"] == "Ada" and signed_in["accessToken"]
    assert client.request("GET", "/_sim/hits").json()["hits"] == {"/api/auth/session": 2}


def test_default_sim_config_keeps_sha3() -> None:
    """The web app does not change the simulator's default hash."""
    assert SimConfig().pow_hash == "sha3"
