"""The ChatGPT web backend over HTTP: transport, sessions, the conversation, files."""

__all__ = [
    "auth",
    "browser",
    "catalog",
    "chatgpt",
    "curl",
    "downloads",
    "e3",
    "eras",
    "errors",
    "files",
    "http",
    "multi",
    "requirements",
    "transport",
]
