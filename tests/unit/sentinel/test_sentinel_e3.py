"""E3 sentinel pieces: the shared FNV fixture, the 25-element config, the ``~S`` tokens."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat2api.sentinel import BrowserProfile, ConfigTemplate, build_config, parse_home_page
from chat2api.sentinel.config import E3_HEAP_LIMIT
from chat2api.sentinel.jsjson import js_json, js_utf8
from chat2api.sentinel.pow import fnv1a_hex, search, solve_reference, verify_proof
from chat2api.sentinel.tokens import ConfigLayout, decode_token, requirements_token

FIXTURE = json.loads(
    (Path(__file__).parents[2] / "fixtures" / "fnv_vectors.json").read_text("utf-8")
)
EXAMPLE_B: dict[str, Any] = FIXTURE["example_b"]


@pytest.mark.parametrize("vector", FIXTURE["vectors"], ids=lambda v: repr(v["input"]))
def test_fnv_fixture_vectors(vector: dict[str, str]) -> None:
    """fnv1a_hex gives every FNV vector of the shared fixture."""
    assert fnv1a_hex(vector["input"]) == vector["fnv"]


def test_example_b_from_fixture() -> None:
    """The reference solver finds example B's nonce 554 and its exact ~S proof token."""
    token = solve_reference(
        EXAMPLE_B["seed"], EXAMPLE_B["difficulty"], EXAMPLE_B["config"], hash="fnv"
    )
    assert token == EXAMPLE_B["proof_token"]
    assert decode_token(token)[3] == EXAMPLE_B["nonce"]
    assert fnv1a_hex(EXAMPLE_B["seed"] + token[7:-2]) == EXAMPLE_B["hash"]


def test_example_b_requirements_token() -> None:
    """The E3 requirements token (index 3 = 1, ``~S``) is example B's byte for byte."""
    assert requirements_token(EXAMPLE_B["config"], suffix="~S") == EXAMPLE_B["requirements_token"]


def test_fast_search_answers_example_b_config() -> None:
    """The fast FNV search on the 25-element config gives a proof the spec's check accepts."""
    result = search(
        EXAMPLE_B["seed"], EXAMPLE_B["difficulty"], EXAMPLE_B["config"], hash="fnv", time_budget=20
    )
    assert result.token is not None and result.token.endswith("~S")
    assert verify_proof(EXAMPLE_B["seed"], EXAMPLE_B["difficulty"], result.token, hash="fnv")
    assert len(decode_token(result.token)) == 25


def test_e3_config_has_25_elements() -> None:
    """build_config(era="e3") is the 2026 array: heap 4294967296 and seven 0 probes."""
    profile = BrowserProfile(build_id="prod-abc")
    e2 = build_config(profile, now=1767636000.5)
    e3 = build_config(profile, now=1767636000.5, era="e3")
    assert len(e2) == 18 and len(e3) == 25
    assert e3[2] == E3_HEAP_LIMIT and e2[2] == profile.heap_limit
    assert e3[18:] == [0] * 7
    assert e3[:2] == e2[:2] and e3[3:18] == e2[3:18]


def test_home_page_gives_client_version_and_build_number() -> None:
    """The data-build value and a build number in the page are read for the E3 headers."""
    html = (
        '<html data-build="prod-0123456789abcdef0123456789abcdef01234567" '
        'data-build-number="6708908"><script src="https://cdn.oaistatic.com/x.js"></script>'
    )
    assets = parse_home_page(html)
    assert assets.client_version == "prod-0123456789abcdef0123456789abcdef01234567"
    assert assets.build_number == "6708908"
    embedded = parse_home_page('<html data-build="prod-1">{"buildNumber":"123"}</html>')
    assert embedded.build_number == "123"
    assert parse_home_page('<html data-build="prod-1">').build_number is None


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    now=st.floats(min_value=0, max_value=4e9, allow_nan=False),
    era=st.sampled_from(["e2", "e3"]),
    script=st.sampled_from(["https://cdn.oaistatic.com/a.js", 'x"é\\', None]),
    build_id=st.sampled_from(["prod-abc", "c/x/_", None, "ü\u2028"]),
)
def test_template_layout_is_build_config(
    seed: int, now: float, era: Literal["e2", "e3"], script: str | None, build_id: str | None
) -> None:
    """A template's layout has build_config's bytes at any time, for any script, both eras."""
    profile = replace(BrowserProfile.random(random.Random(seed)), build_id=build_id)
    template = ConfigTemplate(profile, era=era)
    config = build_config(
        profile if script is None else replace(profile, script_src=script), now=now, era=era
    )
    layout = template.layout(script, now=now)
    assert layout.json(1, 0) == js_utf8(js_json([*config[:3], 1, *config[4:]]))
    assert layout.json(77, 4) == ConfigLayout.of(config).json(77, 4)
    assert layout.requirements_token(suffix="~S") == requirements_token(config, suffix="~S")
    assert layout.requirements_token() == requirements_token(config)
    assert search("0.5", "0fffff", layout, hash="fnv", time_budget=10).token == (
        search("0.5", "0fffff", config, hash="fnv", time_budget=10).token
    )
