"""Shared values of spec 3.5 (worked examples)."""

from __future__ import annotations

from typing import Any

import pytest

UA_131 = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)


def example_a_config() -> list[Any]:
    return [
        3000,
        "Mon Jan 05 2026 10:00:00 GMT-0800 (Pacific Standard Time)",
        4294705152,
        0,
        UA_131,
        "https://cdn.oaistatic.com/assets/app-example.js",
        "prod-0123456789abcdef0123456789abcdef01234567",
        "en-US",
        "en-US,en",
        0,
        "webdriver−false",
        "location",
        "onfocus",
        1234.5,
        "11111111-2222-4333-8444-555555555555",
        "",
        8,
        1767636000123.4,
    ]


def example_b_config() -> list[Any]:
    config = example_a_config()
    config[2] = 4294967296
    config[5] = "https://chatgpt.com/backend-api/sentinel/sdk.js"
    config[11] = "_reactListeningabc123def45"
    return config + [0] * 7


@pytest.fixture
def config_a() -> list[Any]:
    return example_a_config()


@pytest.fixture
def config_b() -> list[Any]:
    return example_b_config()
