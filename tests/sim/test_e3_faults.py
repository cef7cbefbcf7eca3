"""Fault knobs of the E3 steps: queued step faults, challenge knobs, lenient modes."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import P_TOKEN, Client, conversation_body, e3_body, solve_fnv, v1_answer

PREPARE = "/backend-api/sentinel/chat-requirements/prepare"
FINALIZE = "/backend-api/sentinel/chat-requirements/finalize"
CONDUIT = "/backend-api/f/conversation/prepare"
SEND = "/backend-api/f/conversation"
RESUME = "/backend-api/f/conversation/resume"


def _queue(client: Client, fault: str, count: int = 1) -> list[str]:
    reply = client.request("POST", "/_sim/faults", {"fault": fault, "count": count})
    assert reply.status == 200, reply.body
    queued: list[str] = reply.json()["queued"]
    return queued


def _prepare(client: Client) -> dict[str, Any]:
    reply = client.request("POST", PREPARE, {"p": P_TOKEN}, client.auth())
    assert reply.status == 200, reply.body
    data: dict[str, Any] = reply.json()
    return data


def _finalize(client: Client, challenge: dict[str, Any], **extra: Any) -> Any:
    body: dict[str, Any] = {"prepare_token": challenge["prepare_token"], **extra}
    pow_ = challenge["proofofwork"]
    if pow_["required"]:
        body.setdefault("proofofwork", solve_fnv(pow_["seed"], pow_["difficulty"]))
    return client.request("POST", FINALIZE, body, client.auth())


def _patch(client: Client, **knobs: Any) -> None:
    client.server.state.config = client.server.state.config.patched(knobs)


def test_prepare_404_is_one_shot(client: Client) -> None:
    """prepare_404: the next sentinel prepare answers 404 Not Found; the one after works."""
    assert _queue(client, "prepare_404") == ["prepare_404"]
    first = client.request("POST", PREPARE, {"p": P_TOKEN}, client.auth())
    assert (first.status, first.json()) == (404, {"detail": "Not Found"})
    assert client.request("POST", PREPARE, {"p": P_TOKEN}, client.auth()).status == 200
    assert client.server.state.stats.faults_injected == 1


def test_step_faults_wait_for_their_step(client: Client) -> None:
    """A step fault is not taken by other endpoints: a send goes through, finalize takes it."""
    _queue(client, "finalize_403", 2)
    _queue(client, "rate_limited")
    assert client.converse("x").status == 429  # the conversation queue only
    challenge = _prepare(client)
    refused = _finalize(client, challenge)
    assert (refused.status, refused.body) == (403, b"")
    assert _finalize(client, _prepare(client)).status == 403
    assert _finalize(client, _prepare(client)).status == 200
    assert client.request("POST", "/_sim/faults", {"fault": "conduit_prepare_404"}).json() == {
        "queued": ["conduit_prepare_404"]
    }


def test_conduit_prepare_404(client: Client) -> None:
    """conduit_prepare_404: the next f/conversation/prepare answers 404."""
    _queue(client, "conduit_prepare_404")
    hdrs = dict(client.auth(), **{"X-Conduit-Token": "no-token"})
    assert client.request("POST", CONDUIT, {}, hdrs).status == 404
    assert client.request("POST", CONDUIT, {}, hdrs).status == 200


@pytest.mark.parametrize("how", ["queue", "directive"])
def test_conduit_rejected(client: Client, how: str) -> None:
    """conduit_rejected: f/conversation answers 403 with an empty body, tokens left unspent."""
    text = "say exactly: ok"
    if how == "queue":
        _queue(client, "conduit_rejected")
    else:
        text += " #sim:fault=conduit_rejected"
    hdrs = client.e3_headers()
    refused = client.request("POST", SEND, e3_body(text), hdrs)
    assert (refused.status, refused.body) == (403, b"")
    assert client.server.state.stats.rejected_sentinel == 1
    if how == "queue":  # the same tokens are still good
        assert client.request("POST", SEND, e3_body(text), hdrs).status == 200


def test_conduit_rejected_on_the_e2_path(client: Client) -> None:
    """On the E2 path conduit_rejected refuses the send the same way."""
    reply = client.converse("x #sim:fault=conduit_rejected")
    assert (reply.status, reply.body) == (403, b"")


@pytest.mark.parametrize("source", ["queue", "config"])
def test_turnstile_required(client: Client, source: str) -> None:
    """turnstile: prepare asks for it; finalize and the send are refused without the token."""
    if source == "queue":
        _queue(client, "turnstile")
    else:
        _patch(client, turnstile_required=True)
    challenge = _prepare(client)
    assert challenge["turnstile"]["required"] is True and challenge["turnstile"]["dx"]
    refused = _finalize(client, challenge)
    assert refused.status == 403 and refused.json()["detail"]["code"] == "turnstile_required"
    if source == "queue":
        assert list(client.server.state.faults) == []  # taken by prepare
        assert _prepare(client)["turnstile"]["required"] is False
        return
    challenge = _prepare(client)
    token = _finalize(client, challenge, turnstile="solved-elsewhere").json()["token"]
    hdrs = dict(
        client.auth(),
        **{
            "OpenAI-Sentinel-Chat-Requirements-Token": token,
            "OpenAI-Sentinel-Proof-Token": solve_fnv(
                challenge["proofofwork"]["seed"], challenge["proofofwork"]["difficulty"]
            ),
            "X-Conduit-Token": client.conduit(),
        },
    )
    missing = client.request("POST", SEND, e3_body("x"), hdrs)
    assert missing.status == 403 and missing.json()["detail"]["code"] == "turnstile_required"
    hdrs["OpenAI-Sentinel-Turnstile-Token"] = "solved-elsewhere"
    assert client.request("POST", SEND, e3_body("say exactly: y"), hdrs).status == 200


@pytest.mark.parametrize("source", ["queue", "config"])
def test_so_required(client: Client, source: str) -> None:
    """so_required: prepare says so.required with its dx values; finalize 403 so_required."""
    if source == "queue":
        _queue(client, "so_required")
    else:
        _patch(client, so_required=True)
    challenge = _prepare(client)
    so = challenge["so"]
    assert so["required"] is True and so["collector_dx"] and so["snapshot_dx"]
    refused = _finalize(client, challenge)
    assert refused.status == 403 and refused.json()["detail"]["code"] == "so_required"
    assert (_prepare(client)["so"]["required"] is True) is (source == "config")


@pytest.mark.parametrize("source", ["queue", "config"])
def test_force_login(client: Client, source: str) -> None:
    """force_login: prepare says force_login true; finalize 403 force_login."""
    if source == "queue":
        _queue(client, "force_login")
    else:
        _patch(client, force_login=True)
    challenge = _prepare(client)
    assert challenge["force_login"] is True
    refused = _finalize(client, challenge)
    assert refused.status == 403 and refused.json()["detail"]["code"] == "force_login"


def test_so_token_must_be_forwarded(client: Client) -> None:
    """issue_so_token: finalize returns so_token; the send needs it as OpenAI-Sentinel-SO-Token."""
    _patch(client, issue_so_token=True)
    challenge = _prepare(client)
    answer = _finalize(client, challenge).json()
    assert list(answer) == ["persona", "token", "expire_after", "so_token"]
    hdrs = dict(
        client.auth(),
        **{
            "OpenAI-Sentinel-Chat-Requirements-Token": answer["token"],
            "OpenAI-Sentinel-Proof-Token": solve_fnv(
                challenge["proofofwork"]["seed"], challenge["proofofwork"]["difficulty"]
            ),
            "X-Conduit-Token": client.conduit(),
        },
    )
    assert client.request("POST", SEND, e3_body("x"), hdrs).status == 403
    hdrs["OpenAI-Sentinel-SO-Token"] = answer["so_token"]
    reply = client.request("POST", SEND, e3_body("say exactly: with so"), hdrs)
    assert reply.status == 200 and v1_answer(reply.body) == "with so"


def test_no_pow_and_no_sentinel_modes(client: Client) -> None:
    """pow_required=False: no proof anywhere; require_sentinel=False: no tokens at all."""
    _patch(client, pow_required=False)
    challenge = _prepare(client)
    assert challenge["proofofwork"] == {"required": False, "seed": None, "difficulty": None}
    token = _finalize(client, challenge).json()["token"]
    hdrs = dict(
        client.auth(),
        **{"OpenAI-Sentinel-Chat-Requirements-Token": token, "X-Conduit-Token": client.conduit()},
    )
    assert client.request("POST", SEND, e3_body("say exactly: a"), hdrs).status == 200
    _patch(client, require_sentinel=False)
    bare = client.request("POST", SEND, e3_body("say exactly: b"), client.auth())
    assert bare.status == 200 and v1_answer(bare.body) == "b"


def test_given_up_proof_at_finalize(client: Client) -> None:
    """A given-up FNV answer is refused at finalize unless reject_given_up_proof is off."""
    given_up = "gAAAAABwQ8Lk5FbGpA2NcR9dShT6gYjU7VxZ4DImUi~S"
    assert _finalize(client, _prepare(client), proofofwork=given_up).status == 403
    _patch(client, reject_given_up_proof=False)
    assert _finalize(client, _prepare(client), proofofwork=given_up).status == 200


def test_resume_404(client: Client) -> None:
    """resume_404: the next f/conversation/resume answers 404 even for a resumable turn."""
    reply = client.e3_converse("say exactly: hi")
    cid = next(iter(client.server.state.turns.turns.values())).conversation_id
    assert reply.status == 200
    conduit = next(iter(client.server.state.turns.turns.values())).conduit_token
    _queue(client, "resume_404")
    hdrs = dict(client.auth(), **{"X-Conduit-Token": conduit})
    body = {"conversation_id": cid, "offset": 0}
    assert client.request("POST", RESUME, body, hdrs).status == 404
    assert client.request("POST", RESUME, body, hdrs).status == 200


def test_step_faults_are_not_directives(client: Client) -> None:
    """`#sim:fault=prepare_404` in a message is an unknown conversation fault (400)."""
    reply = client.request(
        "POST",
        "/backend-api/conversation",
        conversation_body("x #sim:fault=prepare_404"),
        client.sentinel(),
    )
    assert reply.status == 400


STEP_CALLS = {
    "prepare": ("POST", PREPARE, {"p": P_TOKEN}),
    "finalize": ("POST", FINALIZE, {"prepare_token": "x"}),
    "conduit": ("POST", CONDUIT, {}),
    "resume": ("POST", RESUME, {"conversation_id": "x", "offset": 0}),
    "stop": ("POST", "/backend-api/stop_conversation", {"conversation_id": "x"}),
}


@pytest.mark.parametrize("step", sorted(STEP_CALLS))
@pytest.mark.parametrize(
    ("kind", "status", "marker"),
    [
        ("server_error", 500, b"Hmm...something seems to have gone wrong"),
        ("rate_limited", 429, b'"model_cap_exceeded"'),
        ("expired", 401, b'"token_expired"'),
        ("unusual_activity", 403, b"Unusual activity"),
        ("cloudflare", 403, b"cf-please-wait"),
    ],
)
def test_step_edge_faults(client: Client, step: str, kind: str, status: int, marker: bytes) -> None:
    """`<step>:<fault>` answers that step once with the E2 fault's exact response."""
    _queue(client, f"{step}:{kind}")
    method, path, body = STEP_CALLS[step]
    hdrs = dict(client.auth(), **{"X-Conduit-Token": "no-token"})
    reply = client.request(method, path, body, hdrs)
    assert reply.status == status and marker in reply.body
    assert client.request(method, path, body, hdrs).status != status or step == "finalize"
    assert client.server.state.stats.faults_injected == 1


def test_step_reset_and_unknown_step_faults(client: Client) -> None:
    """`prepare:reset` resets the connection; an unknown step or kind is refused (400)."""
    _queue(client, "prepare:reset")
    with pytest.raises((ConnectionError, OSError)):
        client.request("POST", PREPARE, {"p": P_TOKEN}, client.auth())
    assert client.request("POST", PREPARE, {"p": P_TOKEN}, client.auth()).status == 200
    for name in ("send:server_error", "prepare:moderation", "prepare:"):
        assert client.request("POST", "/_sim/faults", {"fault": name}).status == 400


def test_require_client_headers(client: Client) -> None:
    """require_client_headers: E3 calls need the OAI-* headers and the home page's build id."""
    _patch(client, require_client_headers=True)
    bare = client.request("POST", PREPARE, {"p": P_TOKEN}, client.auth())
    assert bare.status == 403 and b"Unusual activity" in bare.body
    build = client.server.state.config.build_id
    assert f'data-build="{build}"'.encode() in client.request("GET", "/").body
    client.headers = {
        "OAI-Device-Id": "2d1f7a3c-5b9e-4c0d-8e7f-6a5b4c3d2e1f",
        "OAI-Language": "en-US",
        "OAI-Session-Id": "5a0e1c2d-3b4f-4a6e-8c7d-9e0f1a2b3c4d",
        "OAI-Client-Version": build,
    }
    reply = client.e3_converse("say exactly: with headers")
    assert reply.status == 200 and v1_answer(reply.body) == "with headers"
    hdrs = client.e3_headers()
    client.headers["OAI-Client-Version"] = "prod-" + "0" * 40
    refused = client.request("POST", SEND, e3_body("x"), hdrs)
    assert refused.status == 403 and b"Unusual activity" in refused.body
    assert client.converse("say exactly: e2 is not checked").status == 200
