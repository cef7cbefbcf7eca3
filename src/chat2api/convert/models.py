"""The model table: OpenAI-style names a client sends → ChatGPT model slugs.

This table is the single source for ``GET /v1/models`` and for routing; the
docs/api.md ("Models") renders the same rows. Resolution, in order:

1. an exact name in ``MODEL_TABLE``;
2. ``gpt-4-gizmo-<gizmo id>`` → a custom GPT (gizmo conversation mode) on
   ``GIZMO_BASE_SLUG``;
3. a family match: ``<name>-<anything>`` (e.g. ``gpt-4o-2024-08-06``) takes the
   longest table name it starts with;
4. anything else that looks like a slug is passed through unchanged, so new
   upstream models work before this table knows them (the upstream decides;
   the slug it actually served is returned in the ``X-Chat2API-Model-Slug``
   response header).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from chat2api.errors import InvalidRequest

Encoding = Literal["o200k_base", "cl100k_base"]

GIZMO_PREFIX = "gpt-4-gizmo-"
GIZMO_BASE_SLUG = "gpt-4o"

# (OpenAI-style name, ChatGPT slug). Order only matters for docs/api.md.
MODEL_TABLE: tuple[tuple[str, str], ...] = (
    ("auto", "auto"),
    ("gpt-5", "gpt-5"),
    ("gpt-5-thinking", "gpt-5-thinking"),
    ("gpt-5-mini", "gpt-5-mini"),
    ("gpt-5-pro", "gpt-5-pro"),
    ("gpt-5.1", "gpt-5-1"),
    ("gpt-5.2", "gpt-5-2"),
    ("gpt-5.3", "gpt-5-3"),
    ("gpt-4.5", "gpt-4-5"),
    ("gpt-4.1", "gpt-4-1"),
    ("gpt-4.1-mini", "gpt-4-1-mini"),
    ("gpt-4o", "gpt-4o"),
    ("gpt-4o-mini", "gpt-4o-mini"),
    ("gpt-4o-canmore", "gpt-4o-canmore"),
    ("gpt-4", "gpt-4"),
    ("gpt-4-mobile", "gpt-4-mobile"),
    ("gpt-3.5-turbo", "text-davinci-002-render-sha"),
    ("o1", "o1"),
    ("o1-mini", "o1-mini"),
    ("o1-preview", "o1-preview"),
    ("o1-pro", "o1-pro"),
    ("o3", "o3"),
    ("o3-mini", "o3-mini"),
    ("o3-mini-high", "o3-mini-high"),
    ("o3-pro", "o3-pro"),
    ("o4-mini", "o4-mini"),
    ("o4-mini-high", "o4-mini-high"),
)

_EXACT = dict(MODEL_TABLE)
_CL100K_SLUGS = frozenset({"gpt-4", "gpt-4-mobile", "text-davinci-002-render-sha"})
_BY_LENGTH = sorted(_EXACT, key=len, reverse=True)
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$")
_GIZMO_ID = re.compile(r"^g-[A-Za-z0-9_\-]{1,64}$")


@dataclass(frozen=True, slots=True)
class ModelRoute:
    """Where a requested model name goes upstream."""

    requested: str
    slug: str
    gizmo_id: str | None = None

    @property
    def encoding(self) -> Encoding:
        """The tokenizer for usage counts: cl100k for the GPT-4/3.5 era, else o200k."""
        if self.slug in _CL100K_SLUGS or self.requested.startswith("gpt-3.5"):
            return "cl100k_base"
        return "o200k_base"


def resolve_model(name: str) -> ModelRoute:
    """Map a client's model name to its upstream route (see module docstring)."""
    if name in _EXACT:
        return ModelRoute(name, _EXACT[name])
    if name.startswith(GIZMO_PREFIX):
        gizmo_id = name[len(GIZMO_PREFIX) :]
        if not _GIZMO_ID.match(gizmo_id):
            raise InvalidRequest(
                f"{name!r} does not name a GPT: use gpt-4-gizmo-g-<id>",
                param="model",
                code="model_not_found",
            )
        return ModelRoute(name, GIZMO_BASE_SLUG, gizmo_id)
    for alias in _BY_LENGTH:
        if name.startswith(alias + "-"):
            return ModelRoute(name, _EXACT[alias])
    if not _SLUG.match(name):
        raise InvalidRequest(f"{name!r} is not a valid model name", param="model")
    return ModelRoute(name, name)


def listed_models() -> list[str]:
    """Names shown by ``GET /v1/models``."""
    return [name for name, _ in MODEL_TABLE]


def known_model(name: str) -> bool:
    """Whether ``name`` is in the table: exactly, as a GPT, or as a dated family member."""
    if name in _EXACT:
        return True
    if name.startswith(GIZMO_PREFIX):
        return bool(_GIZMO_ID.match(name[len(GIZMO_PREFIX) :]))
    return any(name.startswith(alias + "-") for alias in _BY_LENGTH)


def model_card(name: str, created: int = 0) -> dict[str, object] | None:
    """The ``model`` object of ``GET /v1/models/{name}``; None for a name not in the table."""
    if not known_model(name):
        return None
    return {"id": name, "object": "model", "created": created, "owned_by": "chat2api"}
