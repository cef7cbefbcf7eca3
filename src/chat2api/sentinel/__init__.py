"""chat2api.sentinel: the requirements token and proof-of-work answers.

Pure code (``config``, ``tokens``, ``pow``, ``jsjson``) plus
:class:`PowSolver`, which runs the search in worker processes.
"""

from chat2api.sentinel.config import (
    DEFAULT_USER_AGENT,
    IMPERSONATE_TARGET,
    BrowserProfile,
    ConfigTemplate,
    PageAssets,
    build_config,
    parse_home_page,
)
from chat2api.sentinel.pow import (
    DEFAULT_DIFFICULTY_LIMIT,
    HashName,
    SearchResult,
    fnv1a_hex,
    is_too_hard,
    search,
    solve,
    solve_reference,
    verify_proof,
)
from chat2api.sentinel.solver import PowSolver
from chat2api.sentinel.tokens import ConfigLayout, decode_token, requirements_token

__all__ = [
    "DEFAULT_DIFFICULTY_LIMIT",
    "DEFAULT_USER_AGENT",
    "IMPERSONATE_TARGET",
    "BrowserProfile",
    "ConfigLayout",
    "ConfigTemplate",
    "HashName",
    "PageAssets",
    "PowSolver",
    "SearchResult",
    "build_config",
    "decode_token",
    "fnv1a_hex",
    "is_too_hard",
    "parse_home_page",
    "requirements_token",
    "search",
    "solve",
    "solve_reference",
    "verify_proof",
]
