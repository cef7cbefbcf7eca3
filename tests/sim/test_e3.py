"""The E3 send path: prepare/finalize with FNV proofs, conduit tokens, `f/conversation`, eras."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from chat2api.sim import SimConfig, mint_access_token, reply_text
from chat2api.sim.proofs import Verdict, fnv_hex, verify_proof

from .conftest import (
    CONFIG25,
    DEVICE,
    P_TOKEN,
    Client,
    conversation_body,
    e3_body,
    fnv,
    solve,
    solve_fnv,
    sse_records,
    v1_answer,
)

VECTORS = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "fnv_vectors.json").read_text("utf-8")
)
PREPARE = "/backend-api/sentinel/chat-requirements/prepare"
FINALIZE = "/backend-api/sentinel/chat-requirements/finalize"
CONDUIT = "/backend-api/f/conversation/prepare"
SEND = "/backend-api/f/conversation"


def _prepare(client: Client, token: str | None = None) -> dict[str, object]:
    reply = client.request("POST", PREPARE, {"p": P_TOKEN}, client.auth(token))
    assert reply.status == 200, reply.body
    data: dict[str, object] = reply.json()
    return data


def _proof(challenge: dict[str, object]) -> str:
    pow_ = challenge["proofofwork"]
    assert isinstance(pow_, dict)
    return solve_fnv(pow_["seed"], pow_["difficulty"])


def _wrong_proof(seed: str, difficulty: str) -> str:
    """A well-formed proof that misses this seed (the first candidate that does)."""
    for i in range(1000):
        token = f"gAAAAABW{i}XQ==~S"
        if verify_proof(token, seed, difficulty, "fnv") is Verdict.WRONG:
            return token
    raise AssertionError("no wrong proof found")


# --------------------------------------------------------------------------- FNV


def test_fnv_vectors_from_the_shared_fixture() -> None:
    """The tests' own FNV (conftest) gives the shared vectors, as the simulator's does."""
    for vector in VECTORS["vectors"]:
        assert fnv(vector["input"]) == vector["fnv"]
    assert fnv_hex("\U0001f600x") == fnv("\U0001f600x")  # surrogate pairs count as two units


def test_worked_example_b_against_the_verifier() -> None:
    """Spec 3.5 example B: nonce 554, hash 0033591d, the exact proof token, passes; others fail."""
    b = VECTORS["example_b"]
    token = b["proof_token"]
    enc = token[len("gAAAAAB") : -len("~S")]
    assert fnv_hex(b["seed"] + enc) == b["hash"]
    assert verify_proof(token, b["seed"], b["difficulty"], "fnv") is Verdict.OK
    assert verify_proof(token[:-2], b["seed"], b["difficulty"], "fnv") is Verdict.OK
    assert verify_proof(token, b["seed"], "0033590", "fnv") is Verdict.WRONG
    assert verify_proof(token, "0.1", b["difficulty"], "fnv") is Verdict.WRONG
    assert verify_proof(b["given_up_token"], b["seed"], b["difficulty"], "fnv") is Verdict.GIVEN_UP
    assert solve_fnv(b["seed"], b["difficulty"]) != token  # other config: a different answer


# --------------------------------------------------------------------------- the flow


def test_e3_send_streams_the_e2_answer(client: Client) -> None:
    """prepare → finalize → conduit → f/conversation streams v1 with the same reply as E2."""
    reply = client.e3_converse("hello there #sim:words=6")
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == "text/event-stream; charset=utf-8"
    records = sse_records(reply.body)
    assert records[0] == ("delta_encoding", '"v1"') and records[-1] == (None, "[DONE]")
    assert v1_answer(reply.body) == reply_text("hello there", 6)
    stats = client.server.state.stats
    assert (stats.prepares, stats.finalizes, stats.conduits) == (1, 1, 1)
    assert (stats.e3_conversations, stats.streams_completed) == (1, 1)
    sent = client.server.state.requests[-1]
    assert sent["path"] == SEND and sent["body"]["parent_message_id"] == "client-created-root"


def test_prepare_answer_shape(client: Client) -> None:
    """prepare answers persona, prepare_token, FNV challenge, turnstile, so, force_login."""
    data = _prepare(client)
    assert list(data) == [
        "persona",
        "prepare_token",
        "proofofwork",
        "turnstile",
        "so",
        "force_login",
    ]
    assert data["persona"] == "chatgpt-paid"
    pow_ = data["proofofwork"]
    assert isinstance(pow_, dict) and pow_["required"] is True
    assert pow_["difficulty"] == "0fffff" and float(pow_["seed"]) < 1
    assert data["turnstile"] == {"required": False, "dx": None}
    assert data["so"] == {"required": False, "collector_dx": None, "snapshot_dx": None}
    assert data["force_login"] is False
    assert str(data["prepare_token"]).startswith("gAAAAAB")


def test_finalize_answer_and_proof_verification(client: Client) -> None:
    """finalize checks the FNV proof against its prepare's seed: wrong → 403 empty, else a token."""
    challenge = _prepare(client)
    pow_ = challenge["proofofwork"]
    assert isinstance(pow_, dict)
    wrong = _wrong_proof(pow_["seed"], pow_["difficulty"])
    body = {"prepare_token": challenge["prepare_token"], "proofofwork": wrong}
    refused = client.request("POST", FINALIZE, body, client.auth())
    assert (refused.status, refused.body) == (403, b"")
    # The prepare token was spent by that attempt: single use.
    body["proofofwork"] = _proof(challenge)
    again = client.request("POST", FINALIZE, body, client.auth())
    assert (again.status, again.body) == (403, b"")
    fresh = _prepare(client)
    ok = client.request(
        "POST",
        FINALIZE,
        {"prepare_token": fresh["prepare_token"], "proofofwork": _proof(fresh)},
        client.auth(),
    )
    assert ok.status == 200
    answer = ok.json()
    assert list(answer) == ["persona", "token", "expire_after"]
    assert answer["persona"] == "chatgpt-paid" and answer["expire_after"] == 540
    assert client.server.state.stats.rejected_sentinel == 2


def test_proof_for_another_seed_and_sha3_proofs_fail(client: Client) -> None:
    """A proof solved for another prepare's seed, or without FNV, is refused."""
    other = _proof(_prepare(client))
    for _ in range(50):  # a proof passes another seed 1 time in 16: find a seed it misses
        second = _prepare(client)
        pow_ = second["proofofwork"]
        assert isinstance(pow_, dict)
        if verify_proof(other, pow_["seed"], pow_["difficulty"], "fnv") is Verdict.WRONG:
            break
    body = {"prepare_token": second["prepare_token"], "proofofwork": other}
    assert client.request("POST", FINALIZE, body, client.auth()).status == 403
    # A SHA3-era answer (no `~S`, hashed with SHA3) to a fresh FNV challenge.
    third = _prepare(client)
    pow_ = third["proofofwork"]
    assert isinstance(pow_, dict)
    sha3 = solve(pow_["seed"], pow_["difficulty"])
    if verify_proof(sha3, pow_["seed"], pow_["difficulty"], "fnv") is Verdict.WRONG:
        body = {"prepare_token": third["prepare_token"], "proofofwork": sha3}
        assert client.request("POST", FINALIZE, body, client.auth()).status == 403


def test_prepare_token_is_bound_to_the_account(client: Client) -> None:
    """Another account (or anonymous device) cannot finalize my prepare token."""
    challenge = _prepare(client)
    body = {"prepare_token": challenge["prepare_token"], "proofofwork": _proof(challenge)}
    other = client.request("POST", FINALIZE, body, client.auth(mint_access_token()))
    assert (other.status, other.body) == (403, b"")
    anon = client.request(
        "POST", FINALIZE.replace("-api", "-anon"), body, {"OAI-Device-Id": DEVICE}
    )
    assert anon.status == 403


def test_conduit_tokens_single_use_and_bound(client: Client) -> None:
    """A conduit token works for one send, of its own account; `no-token` is required first."""
    hdrs = client.e3_headers()
    body = e3_body("say exactly: one")
    assert client.request("POST", SEND, body, hdrs).status == 200
    # Same conduit again, with fresh sentinel tokens: refused, empty body.
    again = dict(hdrs, **client.e3_sentinel())
    replay = client.request("POST", SEND, body, again)
    assert (replay.status, replay.body) == (403, b"")
    # Someone else's conduit token: refused.
    stranger = mint_access_token()
    foreign = dict(client.e3_sentinel(), **{"X-Conduit-Token": client.conduit(stranger)})
    foreign["Accept"] = "text/event-stream"
    assert client.request("POST", SEND, body, foreign).status == 403
    # No header on prepare: 400; no conduit on the send: 403 empty.
    missing = client.request("POST", CONDUIT, {}, client.auth())
    assert missing.status == 400
    bare = client.e3_sentinel()
    assert client.request("POST", SEND, body, bare).status == 403


def test_conduit_prepare_retires_the_previous_token(client: Client) -> None:
    """Passing the previous conduit token to prepare retires it in favour of the new one."""
    first = client.conduit()
    second = client.conduit(previous=first)
    assert second != first
    hdrs = dict(client.e3_sentinel(), **{"X-Conduit-Token": first})
    assert client.request("POST", SEND, e3_body("x"), hdrs).status == 403
    hdrs = dict(client.e3_sentinel(), **{"X-Conduit-Token": second})
    assert client.request("POST", SEND, e3_body("x"), hdrs).status == 200


def test_requirements_token_only_from_finalize_and_single_use(client: Client) -> None:
    """f/conversation refuses an E2 chat-requirements token, a reused one, a missing proof."""
    e2 = client.sentinel()
    hdrs = dict(e2, **{"X-Conduit-Token": client.conduit()})
    assert client.request("POST", SEND, e3_body("x"), hdrs).status == 403
    sentinel = client.e3_sentinel()
    no_proof = {k: v for k, v in sentinel.items() if k != "OpenAI-Sentinel-Proof-Token"}
    no_proof["X-Conduit-Token"] = client.conduit()
    assert client.request("POST", SEND, e3_body("x"), no_proof).status == 403
    # Not spent by the refusal: the same tokens with the proof go through, once.
    ok = dict(sentinel, **{"X-Conduit-Token": no_proof["X-Conduit-Token"]})
    assert client.request("POST", SEND, e3_body("x"), ok).status == 200
    ok["X-Conduit-Token"] = client.conduit()
    assert client.request("POST", SEND, e3_body("x"), ok).status == 403


def test_finalize_token_is_refused_on_the_e2_path(client: Client) -> None:
    """An E3 token on `POST /backend-api/conversation` is 403 empty: eras do not mix."""
    hdrs = client.e3_sentinel()
    reply = client.request("POST", "/backend-api/conversation", conversation_body("x"), hdrs)
    assert (reply.status, reply.body) == (403, b"")


def test_anonymous_e3_send(client: Client) -> None:
    """`/backend-anon` E3: persona chatgpt-noauth, tokens bound to the device id."""
    reply = client.e3_converse("say exactly: hi anon", prefix="/backend-anon")
    assert reply.status == 200
    assert v1_answer(reply.body) == "hi anon"
    hdrs = client.e3_headers(prefix="/backend-anon")
    hdrs["OAI-Device-Id"] = "another-device"
    refused = client.request("POST", "/backend-anon/f/conversation", e3_body("x"), hdrs)
    assert (refused.status, refused.body) == (403, b"")


def test_legacy_encoding_on_e3_when_not_asked_for_v1(client: Client) -> None:
    """An E3 body with `supported_encodings: []` gets legacy snapshots (encoding follows body)."""
    reply = client.e3_converse("say exactly: old style", extra={"supported_encodings": []})
    records = sse_records(reply.body)
    assert all(event is None for event, _ in records) and records[-1] == (None, "[DONE]")
    final = json.loads(records[-3][1])["message"]
    assert final["content"]["parts"] == ["old style"] and final["end_turn"] is True


def test_e3_body_checks(client: Client) -> None:
    """A bad `thinking_effort` is 422; E3 fields are otherwise accepted and recorded."""
    bad = client.e3_converse("x", extra={"thinking_effort": "huge"})
    assert bad.status == 422
    assert bad.json() == {"detail": "Invalid conversation body"}
    good = client.e3_converse("say exactly: ok", extra={"thinking_effort": "max"})
    assert good.status == 200


def test_e3_follow_up_in_a_kept_conversation(client: Client) -> None:
    """A kept E3 conversation (root `client-created-root`) takes a follow-up on its answer."""
    first = client.e3_converse("say exactly: first", extra={"history_and_training_disabled": False})
    roots = [json.loads(d) for e, d in sse_records(first.body) if e == "delta"]
    cid = roots[0]["v"]["conversation_id"]
    detail = client.request("GET", f"/backend-api/conversation/{cid}", headers=client.auth())
    assert detail.status == 200
    answer_id = detail.json()["current_node"]
    follow = e3_body(
        "say exactly: second",
        {
            "conversation_id": cid,
            "parent_message_id": answer_id,
            "history_and_training_disabled": False,
        },
    )
    follow["messages"][0]["id"] = "0e0e0e0e-77a1-4f0e-b2d4-6e5f1a3c2b99"
    reply = client.request("POST", SEND, follow, client.e3_headers())
    assert reply.status == 200, reply.body
    assert v1_answer(reply.body) == "second"


# --------------------------------------------------------------------------- eras


def test_era_e2_hides_every_e3_endpoint(client: Client) -> None:
    """era=e2: prepare, finalize, conduit, f/conversation, resume, stop, stream_status 404."""
    assert client.request("POST", "/_sim/config", {"era": "e2"}).status == 200
    for method, path in [
        ("POST", PREPARE),
        ("POST", FINALIZE),
        ("POST", CONDUIT),
        ("POST", SEND),
        ("POST", "/backend-api/f/conversation/resume"),
        ("POST", "/backend-api/stop_conversation"),
        ("GET", "/backend-api/conversation/abc/stream_status"),
        ("POST", "/backend-anon/sentinel/chat-requirements/prepare"),
    ]:
        reply = client.request(method, path, {}, client.auth())
        assert (reply.status, reply.json()) == (404, {"detail": "Not Found"}), path
    assert client.converse("say exactly: e2 still works").status == 200


def test_era_e3_strict_refuses_the_e2_send(client: Client) -> None:
    """era=e3-strict: both conversation POSTs of E2 answer 403 unusual activity; E3 works."""
    client.server.state.config = client.server.state.config.patched({"era": "e3-strict"})
    for prefix in ("/backend-api", "/backend-anon"):
        reply = client.converse("x", prefix=prefix)
        assert reply.status == 403
        assert reply.headers["content-type"] == "application/json"
        assert reply.json() == {
            "detail": "Unusual activity has been detected from your device. Try again later."
        }
    assert client.e3_converse("say exactly: e3 ok").status == 200


def test_era_default_serves_both_and_is_validated(client: Client) -> None:
    """The default era is e3 (both paths); an unknown era or a long E3 difficulty is 400."""
    assert SimConfig().era == "e3"
    assert client.converse("say exactly: a").status == 200
    assert client.e3_converse("say exactly: b").status == 200
    assert client.request("POST", "/_sim/config", {"era": "e4"}).status == 400
    too_long = client.request("POST", "/_sim/config", {"pow_difficulty": "000000fff"})
    assert too_long.status == 400
    e2_only = client.request("POST", "/_sim/config", {"era": "e2", "pow_difficulty": "000000fff"})
    assert e2_only.status == 200


def test_finalize_accepts_example_b_for_its_seed(client: Client) -> None:
    """Given example B's seed and difficulty, finalize accepts its proof token over HTTP, once."""
    b = VECTORS["example_b"]
    state = client.server.state
    statuses = []
    for _ in range(2):  # the second time the same proof for the same seed is a reuse
        token = str(_prepare(client)["prepare_token"])
        state.prepared[token] = dataclasses.replace(
            state.prepared[token], seed=b["seed"], difficulty=b["difficulty"]
        )
        body = {"prepare_token": token, "proofofwork": b["proof_token"]}
        reply = client.request("POST", FINALIZE, body, client.auth())
        statuses.append((reply.status, reply.body == b""))
    assert statuses == [(200, False), (403, True)]


def test_send_checks_its_own_proof_against_the_finalized_seed(client: Client) -> None:
    """The send's proof header may differ from finalize's if it passes the same seed; else 403."""
    challenge = _prepare(client)
    pow_ = challenge["proofofwork"]
    assert isinstance(pow_, dict)
    body = {"prepare_token": challenge["prepare_token"], "proofofwork": _proof(challenge)}
    token = client.request("POST", FINALIZE, body, client.auth()).json()["token"]
    other = solve_fnv(pow_["seed"], pow_["difficulty"], [*CONFIG25[:13], 99.5, *CONFIG25[14:]])
    assert other != body["proofofwork"]
    hdrs = dict(client.auth(), **{"OpenAI-Sentinel-Chat-Requirements-Token": token})
    hdrs["OpenAI-Sentinel-Proof-Token"] = _wrong_proof(pow_["seed"], pow_["difficulty"])
    hdrs["X-Conduit-Token"] = client.conduit()
    assert client.request("POST", SEND, e3_body("x"), hdrs).status == 403
    hdrs["OpenAI-Sentinel-Proof-Token"] = other
    assert client.request("POST", SEND, e3_body("say exactly: ok"), hdrs).status == 200
