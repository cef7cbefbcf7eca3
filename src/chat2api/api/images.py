"""``POST /v1/images/generations``: images drawn by the web app's image generation.

Each image is one conversation with the ``picture_v2`` hint (spec §1.10) on
a leased account; its answer ends while the image is still being drawn, so
the image is waited for (polling the conversation) and then returned as a
chat2api download link (``response_format: url``) or as base64.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chat2api.answering import Ask, draw_image, image_bytes
from chat2api.api.auth import account_source
from chat2api.api.errors import parse_request
from chat2api.api.routing import public_base
from chat2api.api.streaming import cancel_on_disconnect
from chat2api.convert.models import resolve_model
from chat2api.errors import InvalidRequest
from chat2api.state import AppState
from chat2api.values import PromptTurn

IMAGE_MODEL = "auto"  # the upstream picks its image model itself (spec §1.10)


class ImageRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    prompt: str = Field(min_length=1, max_length=32000)
    n: int = Field(1, ge=1, le=4)
    size: str | None = None
    response_format: Literal["url", "b64_json"] = "url"
    model: str | None = None


def _size(size: str | None) -> str | None:
    if size in (None, "auto"):
        return None
    if not re.fullmatch(r"\d{2,4}x\d{2,4}", size):
        raise InvalidRequest("size must look like 1024x1024 (or auto).", param="size")
    return size


async def generate_images(request: Request) -> Response:
    """Create images from a prompt (the OpenAI images API)."""
    state: AppState = request.app.state.chat2api
    accounts = await account_source(request, state)  # the key before the body
    wanted = parse_request(await request.body(), ImageRequest)
    size = _size(wanted.size)
    prompt = wanted.prompt if size is None else f"{wanted.prompt} size={size}"
    base = public_base(request, state.settings.prefix_path)
    results = await asyncio.gather(
        *(
            draw_image(
                Ask(
                    state=state,
                    accounts=accounts,
                    route=resolve_model(IMAGE_MODEL),
                    turns=[PromptTurn("user", prompt)],
                    history_disabled=state.settings.history_disabled,
                    system_hints=("picture_v2",),
                ),
                base,
            )
            for _ in range(wanted.n)
        )
    )
    out: list[dict[str, Any]] = []
    for drawn in results:
        item: dict[str, Any] = {"revised_prompt": wanted.prompt}
        image = drawn.image
        if wanted.response_format == "url":
            item["url"] = await drawn.links.image(image, drawn.conversation_id)
        else:
            data = await image_bytes(
                state.downloader, drawn.lease.credentials, drawn.conversation_id, image
            )
            item["b64_json"] = base64.b64encode(data).decode()
        out.append(item)
    payload = {"created": int(time.time()), "data": out}
    return Response(orjson.dumps(payload), media_type="application/json")


routes = [Route("/v1/images/generations", cancel_on_disconnect(generate_images), methods=["POST"])]
