"""Server-side sentinel checks on the conversation POST (spec 3.4, 3.6)."""

from __future__ import annotations

import base64

from chat2api.sim import SimConfig
from chat2api.sim.proofs import Verdict, verify_proof

from .conftest import Client, conversation_body


def _post(client: Client, headers: dict[str, str]) -> int:
    body = conversation_body("say exactly: ok")
    return client.request("POST", "/backend-api/conversation", body, headers).status


def test_valid_proof_passes_once(client: Client) -> None:
    """A correct proof is accepted; replaying it (same requirements token) is 403 empty."""
    headers = client.sentinel()
    assert _post(client, headers) == 200
    again = client.request("POST", "/backend-api/conversation", conversation_body("x"), headers)
    assert (again.status, again.body) == (403, b"")


def test_wrong_missing_and_given_up_proofs(client: Client) -> None:
    """Wrong, missing and given-up proofs are each refused with an empty 403."""
    headers = client.sentinel()
    issued = client.server.state.lookup(headers["OpenAI-Sentinel-Chat-Requirements-Token"])
    assert issued is not None
    # A fixed wrong answer passes an easy difficulty by chance (1 in 16 for "0fffff"):
    # take the first candidate that really misses this seed.
    wrong_token = next(
        token
        for i in range(100)
        if verify_proof(
            token := "gAAAAAB" + base64.b64encode(f"[{i}]".encode()).decode(),
            issued.seed,
            issued.difficulty,
            issued.algorithm,
        )
        is Verdict.WRONG
    )
    wrong = dict(headers, **{"OpenAI-Sentinel-Proof-Token": wrong_token})
    assert _post(client, wrong) == 403
    missing = {k: v for k, v in headers.items() if k != "OpenAI-Sentinel-Proof-Token"}
    assert _post(client, missing) == 403
    gave_up = dict(
        headers, **{"OpenAI-Sentinel-Proof-Token": "gAAAAABwQ8Lk5FbGpA2NcR9dShT6gYjU7VxZ4DImUi"}
    )
    assert _post(client, gave_up) == 403
    assert client.server.state.stats.rejected_sentinel == 3
    assert _post(client, headers) == 200  # the untouched proof still works


def test_unknown_requirements_token(client: Client) -> None:
    """An unknown or absent requirements token is 403; require_sentinel=False lets it pass."""
    assert (
        _post(client, dict(client.auth(), **{"OpenAI-Sentinel-Chat-Requirements-Token": "x"}))
        == 403
    )
    assert _post(client, client.auth()) == 403
    client.server.state.config = SimConfig(require_sentinel=False)
    assert _post(client, client.auth()) == 200


def test_pow_not_required_and_fnv(client: Client) -> None:
    """pow_required=False advertises no seed; pow_hash=fnv binds the FNV check to the token."""
    client.server.state.config = SimConfig(pow_required=False)
    headers = client.sentinel()
    assert "OpenAI-Sentinel-Proof-Token" not in headers and _post(client, headers) == 200
    client.server.state.config = SimConfig(pow_hash="fnv", pow_difficulty="0fffff")
    headers = client.sentinel()  # the test solver is SHA3: almost surely wrong under FNV
    issued = client.server.state.issued[headers["OpenAI-Sentinel-Chat-Requirements-Token"]]
    assert issued.algorithm == "fnv"


def test_turnstile_and_arkose_knobs(client: Client) -> None:
    """Required challenges show in requirements and refuse sends that lack their header."""
    client.server.state.config = SimConfig(turnstile_required=True, arkose_required=True)
    req = client.request(
        "POST", "/backend-api/sentinel/chat-requirements", {"p": None}, client.auth()
    ).json()
    assert req["turnstile"]["required"] is True and isinstance(req["turnstile"]["dx"], str)
    assert req["arkose"]["required"] is True
    headers = client.sentinel()
    refused = client.request("POST", "/backend-api/conversation", conversation_body("x"), headers)
    assert refused.status == 403 and refused.json()["detail"]["code"] == "turnstile_required"
    headers = client.sentinel()
    headers["OpenAI-Sentinel-Turnstile-Token"] = "t"
    refused = client.request("POST", "/backend-api/conversation", conversation_body("x"), headers)
    assert refused.json()["detail"]["code"] == "arkose_required"
    headers = client.sentinel()
    headers.update({"OpenAI-Sentinel-Turnstile-Token": "t", "OpenAI-Sentinel-Arkose-Token": "a"})
    assert _post(client, headers) == 200


def test_require_p(client: Client) -> None:
    """With require_p, a requirements body without a gAAAAAC token is refused."""
    client.server.state.config = SimConfig(require_p=True)
    reply = client.request(
        "POST", "/backend-api/sentinel/chat-requirements", {"p": "nope"}, client.auth()
    )
    assert (reply.status, reply.body) == (403, b"")
