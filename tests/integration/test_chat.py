"""Chat completions through chat2api and the simulator, with the official SDK."""

from __future__ import annotations

import toktok

from chat2api.sim import SimServer, reasoning_text, reply_text
from servers import ServiceServer, sdk

ALL_ERAS = True  # each test runs against the simulator in every era (conftest.ERAS)


def _prompt_tokens(turns: list[tuple[str, str]], encoding: str) -> int:
    # OpenAI's published accounting: 3 per message + role + content, 3 to prime the reply.
    counts = toktok.batch_count([t for turn in turns for t in turn], encoding)
    return sum(counts) + 3 * len(turns) + 3


def _tokens(text: str, encoding: str = "o200k_base") -> int:
    return toktok.batch_count([text], encoding)[0] if text else 0


def _conversations(sim: SimServer) -> list[dict]:
    return [r for r in sim.state.requests if r["path"].endswith("/conversation")]


def test_non_stream_exact_shape(service: ServiceServer, token: str) -> None:
    """A non-stream completion carries the exact upstream text in OpenAI's shape."""
    client = sdk(service, token)
    result = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "say exactly: Hello, world!"}]
    )
    assert result.id.startswith("chatcmpl-") and len(result.id) == len("chatcmpl-") + 29
    assert result.object == "chat.completion"
    assert result.model == "gpt-4o"
    assert result.choices[0].message.role == "assistant"
    assert result.choices[0].message.content == "Hello, world!"
    assert result.choices[0].finish_reason == "stop"
    assert result.usage is not None
    prompt = _prompt_tokens([("user", "say exactly: Hello, world!")], "o200k_base")
    assert result.usage.prompt_tokens == prompt
    assert result.usage.completion_tokens == _tokens("Hello, world!")
    assert result.usage.total_tokens == prompt + result.usage.completion_tokens


def test_stream_chunks_in_order(service: ServiceServer, token: str) -> None:
    """A stream has the role first only, the text in order, a stop chunk, no usage chunk;
    what the upstream sends apart (5 ms apart here) reaches the client apart."""
    client = sdk(service, token)
    prompt = "tell me something #sim:words=20 #sim:delay_ms=5"
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": prompt}], stream=True
        )
    )
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    assert all(c.object == "chat.completion.chunk" and c.model == "gpt-4o" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in chunks[1:])
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == reply_text("tell me something", 20)
    assert len(chunks) >= 20  # one chunk per upstream delta, not one blob at the end
    assert [c.choices[0].finish_reason for c in chunks[-1:]] == ["stop"]
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert all(c.usage is None for c in chunks)


def test_long_answer_same_text_streamed_or_not(service: ServiceServer, token: str) -> None:
    """Hundreds of upstream records sent at once (their text is folded per read of the
    body): the answer, whole or streamed, is the simulator's reply."""
    client = sdk(service, token)
    prompt = "a long answer #sim:words=300"
    expected = reply_text("a long answer", 300)
    result = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": prompt}]
    )
    assert result.choices[0].message.content == expected
    assert result.choices[0].finish_reason == "stop"
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": prompt}], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == expected
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks[-1:]] == ["stop"]


def test_stream_include_usage(service: ServiceServer, token: str) -> None:
    """include_usage adds one last chunk with empty choices and the token counts."""
    client = sdk(service, token)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "say exactly: Fine, thanks."},
            ],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    prompt = _prompt_tokens(
        [("system", "Be brief."), ("user", "say exactly: Fine, thanks.")], "cl100k_base"
    )
    assert last.usage.prompt_tokens == prompt
    assert last.usage.completion_tokens == _tokens("Fine, thanks.", "cl100k_base")
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_max_tokens_cuts_the_answer(service: ServiceServer, token: str) -> None:
    """max_tokens cuts the text at that many tokens and reports finish_reason length."""
    client = sdk(service, token)
    full = reply_text("a long one", 60)
    expected, _ = toktok.truncate(full, 7, "o200k_base")
    result = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "a long one #sim:words=60"}],
        max_tokens=7,
    )
    assert result.choices[0].message.content == expected
    assert result.choices[0].finish_reason == "length"
    assert result.usage is not None and result.usage.completion_tokens == 7
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "a long one #sim:words=60"}],
            max_completion_tokens=7,
            stream=True,
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == expected
    assert chunks[-1].choices[0].finish_reason == "length"


def test_turns_reach_upstream_as_chatgpt_messages(
    service: ServiceServer, token: str, sim: SimServer
) -> None:
    """System, user and assistant turns (string or text parts) arrive as a message list."""
    client = sdk(service, token)
    client.chat.completions.create(
        model="gpt-4o",
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
            {"role": "assistant", "content": "Hello."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "say exactly:"},
                    {"type": "text", "text": "ok"},
                ],
            },
        ],
    )
    (sent,) = _conversations(sim)
    body = sent["body"]
    assert [m["author"]["role"] for m in body["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
    ]
    assert [m["content"]["parts"] for m in body["messages"]] == [
        ["You are terse."],
        ["Hi"],
        ["Hello."],
        ["say exactly:\nok"],
    ]
    assert body["model"] == "gpt-4o"
    assert body["action"] == "next"
    assert body["history_and_training_disabled"] is True
    expected_encodings = ["v1"] if service.settings.upstream_encoding == "v1" else []
    assert body["supported_encodings"] == expected_encodings


def test_reasoning_is_kept_apart(service: ServiceServer, token: str) -> None:
    """A reasoning model's thoughts come as reasoning_content, never in content."""
    client = sdk(service, token)
    prompt = "why is the sky blue"
    result = client.chat.completions.create(
        model="o3", messages=[{"role": "user", "content": prompt}]
    )
    message = result.choices[0].message
    assert message.content == reply_text(prompt, 30)
    assert message.model_extra is not None
    assert message.model_extra["reasoning_content"] == reasoning_text(prompt)
    assert result.usage is not None and result.usage.completion_tokens_details is not None
    assert result.usage.completion_tokens_details.reasoning_tokens == _tokens(
        reasoning_text(prompt)
    )
    chunks = list(
        client.chat.completions.create(
            model="o3", messages=[{"role": "user", "content": prompt}], stream=True
        )
    )
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content") or "" for c in chunks
    )
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert reasoning == reasoning_text(prompt)
    assert content == reply_text(prompt, 30)
    first_content = next(i for i, c in enumerate(chunks) if c.choices[0].delta.content)
    last_reasoning = max(
        i
        for i, c in enumerate(chunks)
        if (c.choices[0].delta.model_extra or {}).get("reasoning_content")
    )
    assert last_reasoning < first_content


def test_unknown_fields_are_ignored(service: ServiceServer, token: str) -> None:
    """Fields chat2api does not know are ignored rather than refused."""
    client = sdk(service, token)
    result = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "say exactly: fine"}],
        temperature=0.2,
        extra_body={"some_future_option": {"x": 1}, "seed": 7, "logit_bias": {}},
    )
    assert result.choices[0].message.content == "fine"


def test_models_and_served_slug(service: ServiceServer, token: str) -> None:
    """/v1/models lists the table; the slug the upstream served comes back in a header."""
    client = sdk(service, token)
    ids = [m.id for m in client.models.list()]
    assert {"auto", "gpt-4o", "gpt-4o-mini", "o3", "gpt-3.5-turbo"} <= set(ids)
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "say exactly: x"}]
    )
    assert raw.headers["x-chat2api-model-slug"] == "gpt-5-3"
    assert raw.parse().model == "auto"


def test_upstream_length_finish(service: ServiceServer, token: str) -> None:
    """An answer the upstream cut for length ends with finish_reason length."""
    client = sdk(service, token)
    result = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "go on #sim:fault=max_tokens"}]
    )
    assert result.choices[0].finish_reason == "length"
    assert result.choices[0].message.content
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "go on #sim:fault=max_tokens"}],
            stream=True,
        )
    )
    assert chunks[-1].choices[0].finish_reason == "length"


def test_moderation_block(service: ServiceServer, token: str) -> None:
    """A blocked turn answers a refusal with finish_reason content_filter."""
    client = sdk(service, token)
    result = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "bad #sim:fault=moderation"}]
    )
    assert result.choices[0].finish_reason == "content_filter"
    assert result.choices[0].message.content == "I'm sorry, but I can't help with that request."
