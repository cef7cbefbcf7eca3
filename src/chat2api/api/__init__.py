"""The HTTP API: each module parses its requests and formats its answers (``routes``).

The answer itself comes from ``chat2api.answering``.
"""

__all__ = [
    "auth",
    "bindings",
    "chat",
    "cors",
    "downloads",
    "errors",
    "health",
    "images",
    "origin",
    "requestlog",
    "responses",
    "routing",
    "sse",
    "streaming",
]
