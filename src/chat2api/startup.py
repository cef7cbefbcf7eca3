"""What chat2api tells at start: one log block with everything a deployment decided.

The version, every setting as it took effect (secrets as fingerprints,
passwords in URLs likewise), the store, the upstream protocol and the base
URLs, in one record, so that a support question can start from one paste
that holds no secret.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from chat2api import __version__
from chat2api.settings import Settings
from chat2api.store.base import fingerprint

SECRETS = frozenset({"authorization", "auth_key", "admin_key"})
URLS = frozenset({"proxy_url", "export_proxy_url", "redis_url", "chatgpt_base_url"})


def shown_url(url: str) -> str:
    """``url`` with its user info (a proxy's or Redis' credentials) as a fingerprint."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{fingerprint(userinfo)}@{host}"))


def _shown(name: str, value: object) -> str:
    values = value if isinstance(value, list) else [value]
    if value is None or value == []:
        return "-"
    if name in SECRETS:
        return ", ".join(fingerprint(str(v)) for v in values)
    if name in URLS:
        return ", ".join(shown_url(str(v)) for v in values)
    return ", ".join(str(v) for v in values)


def effective_settings(settings: Settings) -> dict[str, str]:
    """Every setting by its environment name, as shown in the log (no secret)."""
    out: dict[str, str] = {}
    for name, field in sorted(Settings.model_fields.items(), key=lambda item: item[1].alias or ""):
        out[field.alias or name.upper()] = _shown(name, getattr(settings, name))
    return out


def startup_block(settings: Settings, store: object) -> str:
    """The start-up log block (several lines, one record)."""
    lines = [
        f"chat2api {__version__} starting",
        f"  store: {store!r}",
        f"  upstream: {', '.join(shown_url(u) for u in settings.chatgpt_base_url)} "
        f"(protocol {settings.upstream_protocol}, encoding {settings.upstream_encoding})",
        f"  routes: API at {settings.prefix_path or ''}/v1, health at /health and /ready"
        + (", gateway at /" if settings.enable_gateway else ""),
        "  settings:",
    ]
    lines += [f"    {name}={value}" for name, value in effective_settings(settings).items()]
    return "\n".join(lines)
