"""Delta-encoding v1 ops (spec 5.3.1) applied to per-channel roots."""

from __future__ import annotations

from typing import Any

import pytest

from chat2api.protocol.delta import DeltaState, parse_pointer
from chat2api.protocol.errors import InvalidDelta, MalformedEvent


def root(text: str = "", **message: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "id": "m1",
        "author": {"role": "assistant"},
        "content": {"content_type": "text", "parts": [text]},
        "status": "in_progress",
        "end_turn": None,
        "metadata": {"model_slug": "gpt-5"},
    }
    msg.update(message)
    return {"message": msg, "conversation_id": "conv", "error": None}


def state_with_root(c: int = 0) -> DeltaState:
    state = DeltaState()
    state.apply({"p": "", "o": "add", "v": root(), "c": c})
    return state


def parts(state: DeltaState, c: int = 0) -> list[Any]:
    return state.roots[c]["message"]["content"]["parts"]  # type: ignore[no-any-return]


def test_add_at_root_replaces_channel_root() -> None:
    """`add` at "" installs a new root for the channel, replacing the old one."""
    state = state_with_root()
    state.apply({"p": "", "o": "add", "v": root("new"), "c": 0})
    assert parts(state) == ["new"]


def test_carry_forward_of_c_p_o() -> None:
    """Missing c, p and o are taken from the previous record."""
    state = DeltaState()
    state.apply({"p": "", "o": "add", "v": root(), "c": 0})
    state.apply({"v": root("second"), "c": 1})  # p="" o="add" carried
    state.apply({"p": "/message/content/parts/0", "o": "append", "v": "a"})  # c=1 carried
    state.apply({"v": "b"})
    assert parts(state, 1) == ["secondab"]
    assert parts(state, 0) == [""]


def test_v_is_never_carried_forward() -> None:
    """A record without `v` does not reuse the previous value."""
    state = state_with_root()
    state.apply({"p": "/message/content/parts/0", "o": "append", "v": "a"})
    with pytest.raises(InvalidDelta):
        state.apply({"p": "/message/content/parts/0"})


def test_append_semantics() -> None:
    """`append` concatenates strings, extends/pushes arrays, shallow-merges objects."""
    state = state_with_root()
    state.apply({"p": "/message/content/parts/0", "o": "append", "v": "x"})
    state.apply({"p": "/message/content/parts", "o": "append", "v": ["y"]})
    state.apply({"p": "/message/content/parts", "o": "append", "v": "z"})
    state.apply({"p": "/message/metadata", "o": "append", "v": {"is_complete": True}})
    message = state.roots[0]["message"]
    assert message["content"]["parts"] == ["x", "y", "z"]
    assert message["metadata"] == {"model_slug": "gpt-5", "is_complete": True}


def test_append_creates_missing_key() -> None:
    """Appending to a key that does not exist yet creates it."""
    state = state_with_root()
    state.apply({"p": "/message/metadata/citations", "o": "append", "v": [{"url": "u"}]})
    assert state.roots[0]["message"]["metadata"]["citations"] == [{"url": "u"}]


def test_replace_remove_truncate() -> None:
    """`replace` sets, `remove` deletes keys and array items, `truncate` cuts to length."""
    state = state_with_root()
    state.apply({"p": "/message/status", "o": "replace", "v": "finished_successfully"})
    state.apply({"p": "/message/content/parts", "o": "replace", "v": ["abcdef", "x"]})
    state.apply({"p": "/message/content/parts/1", "o": "remove"})
    state.apply({"p": "/message/end_turn", "o": "remove"})
    state.apply({"p": "/message/content/parts/0", "o": "truncate", "v": 3})
    message = state.roots[0]["message"]
    assert message["status"] == "finished_successfully"
    assert "end_turn" not in message
    assert message["content"]["parts"] == ["abc"]


def test_add_inserts_into_arrays() -> None:
    """`add` with a numeric index inserts; `-` appends."""
    state = state_with_root()
    state.apply({"p": "/message/content/parts/0", "o": "add", "v": "first"})
    state.apply({"p": "/message/content/parts/-", "o": "add", "v": "last"})
    assert parts(state) == ["first", "", "last"]


def test_patch_sub_ops_are_absolute_and_in_order() -> None:
    """`patch` applies its sub-ops in order with their own paths, on the record's channel."""
    state = state_with_root()
    state.apply(
        {
            "p": "",
            "o": "patch",
            "v": [
                {"p": "/message/content/parts/0", "o": "append", "v": "done"},
                {"p": "/message/status", "o": "replace", "v": "finished_successfully"},
                {"p": "/message/end_turn", "o": "replace", "v": True},
            ],
        }
    )
    message = state.roots[0]["message"]
    assert (message["content"]["parts"], message["status"], message["end_turn"]) == (
        ["done"],
        "finished_successfully",
        True,
    )


def test_bare_list_is_a_patch() -> None:
    """A list-valued `v` with no `o` is a patch even after an append."""
    state = state_with_root()
    state.apply({"p": "/message/content/parts/0", "o": "append", "v": "a"})
    state.apply({"v": [{"p": "/message/status", "o": "replace", "v": "finished_successfully"}]})
    assert state.roots[0]["message"]["status"] == "finished_successfully"
    assert parts(state) == ["a"]


def test_bare_string_after_patch_continues_text() -> None:
    """A bare string `v` after a patch appends to the last text path (the text cursor)."""
    state = state_with_root()
    state.apply({"p": "/message/content/parts/0", "o": "append", "v": "a"})
    state.apply(
        {"p": "", "o": "patch", "v": [{"p": "/message/content/parts/0", "o": "append", "v": "b"}]}
    )
    state.apply({"v": "c"})
    state.apply({"v": [{"p": "/message/metadata", "o": "append", "v": {"k": 1}}]})
    state.apply({"v": "d"})
    assert parts(state) == ["abcd"]


def test_bare_string_after_metadata_merge_continues_text() -> None:
    """A bare string after a non-text append goes to the text cursor, not the metadata."""
    state = state_with_root()
    state.apply({"p": "/message/content/parts/0", "o": "append", "v": "a"})
    state.apply({"p": "/message/metadata", "o": "append", "v": {"k": 1}})
    state.apply({"v": "b"})
    assert parts(state) == ["ab"]


def test_json_pointer_escapes() -> None:
    """`~1` stands for `/` and `~0` for `~` in path tokens, decoded in that order."""
    assert parse_pointer("/a~1b/c~0d/~01") == ["a/b", "c~d", "~1"]
    state = state_with_root()
    state.apply({"p": "/message/metadata/a~1b", "o": "add", "v": 1})
    state.apply({"p": "/message/metadata/c~0d", "o": "add", "v": 2})
    metadata = state.roots[0]["message"]["metadata"]
    assert metadata["a/b"] == 1
    assert metadata["c~d"] == 2


@pytest.mark.parametrize(
    "record",
    [
        pytest.param("not an object", id="not-object"),
        pytest.param({"p": "/message/nope/x", "o": "replace", "v": 1}, id="missing-key"),
        pytest.param({"p": "message", "o": "replace", "v": 1}, id="no-leading-slash"),
        pytest.param({"p": "/message/content/parts/9", "o": "replace", "v": 1}, id="index-range"),
        pytest.param({"p": "/message/content/parts/x", "o": "replace", "v": 1}, id="bad-index"),
        pytest.param({"p": "/message/status", "o": "append", "v": 1}, id="append-type"),
        pytest.param({"p": "/message/status/x", "o": "add", "v": 1}, id="through-string"),
        pytest.param({"p": "/message/status", "o": "frobnicate", "v": 1}, id="unknown-op"),
        pytest.param({"p": "/message/status", "o": "truncate", "v": -1}, id="truncate-neg"),
        pytest.param({"p": "/message/status", "o": "replace", "v": 1, "c": "0"}, id="c-string"),
        pytest.param({"p": "/message/status", "o": "replace", "v": 1, "c": 5}, id="no-root"),
        pytest.param({"p": "", "o": "patch", "v": "x"}, id="patch-not-list"),
        pytest.param({"p": "", "o": "patch", "v": [{"o": "add"}]}, id="patch-sub-op"),
    ],
)
def test_invalid_ops_raise_invalid_delta(record: object) -> None:
    """Ops that cannot be applied raise InvalidDelta, a MalformedEvent."""
    state = state_with_root()
    with pytest.raises(InvalidDelta) as info:
        state.apply(record)
    assert isinstance(info.value, MalformedEvent)


def test_first_record_needs_an_op() -> None:
    """With nothing to carry forward, a record without `o` is invalid."""
    with pytest.raises(InvalidDelta):
        DeltaState().apply({"v": {"message": None}})


def test_released_channel_drops_its_root_and_skips_its_ops() -> None:
    """A released channel keeps no root; ops on it are skipped, not errors."""
    state = state_with_root(0)
    state.apply({"p": "", "o": "add", "v": root("answer"), "c": 1})
    state.release(0)
    assert list(state.roots) == [1]
    assert state.apply({"p": "/message/status", "o": "replace", "v": "done", "c": 0}) is None
    assert state.apply({"p": "/message/content/parts/0", "o": "append", "v": "x", "c": 0}) is None
    assert list(state.roots) == [1]
    assert parts(state, 1) == ["answer"]
    # a later op on another, never-added channel is still an error
    with pytest.raises(InvalidDelta):
        state.apply({"p": "/message/status", "o": "replace", "v": "x", "c": 5})


def test_released_channel_takes_a_new_root() -> None:
    """A new root on a released channel is kept and receives ops again."""
    state = state_with_root(0)
    state.release(0)
    state.apply({"p": "", "o": "add", "v": root("again"), "c": 0})
    state.apply({"p": "/message/content/parts/0", "o": "append", "v": "!", "c": 0})
    assert parts(state) == ["again!"]
    assert state.channel == 0


def test_bare_text_after_its_container_was_replaced_goes_to_the_new_one() -> None:
    """A bare {"v"} appends at the cursor as the path resolves now, not where it did before."""
    state = state_with_root()
    state.apply({"p": "/message/content/parts/0", "o": "append", "v": "a"})
    state.apply({"v": "b"})
    state.apply(
        {"p": "/message/content", "o": "replace", "v": {"content_type": "text", "parts": ["X"]}}
    )
    state.apply({"v": "c"})
    state.apply({"v": "d"})
    assert parts(state) == ["Xcd"]
    assert state.appended == (0, "/message/content/parts/0", "d")


def test_bare_text_after_a_patch_and_a_new_root() -> None:
    """Ops between bare appends (a patch, a new root on the channel) are all honoured."""
    state = state_with_root()
    state.apply({"p": "/message/content/parts/0", "o": "append", "v": "a"})
    state.apply(
        {
            "v": [
                {"p": "/message/content/parts/0", "o": "append", "v": "b"},
                {"p": "/message/status", "o": "replace", "v": "x"},
            ]
        }
    )
    state.apply({"v": "c"})
    assert parts(state) == ["abc"]
    state.apply({"p": "", "o": "add", "v": root("new"), "c": 0})
    state.apply({"v": "!"})
    assert parts(state) == ["new!"]
