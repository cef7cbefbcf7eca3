"""Who is signed in and what they may use: `/api/auth/session`, `me` and the models list."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from chat2api.sim import faults, webapp
from chat2api.sim.common import identify, sim_state
from chat2api.sim.tokens import Account, mint_access_token, read_access_token


async def session(request: Request) -> Response:
    """GET /api/auth/session — `{}` without the NextAuth cookie, else a minimal session."""
    webapp.count_hit(request)
    if not request.cookies.get("__Secure-next-auth.session-token"):
        return faults.json_response(200, {})
    account_id = str(uuid.uuid4())
    token = mint_access_token(account_id=account_id)
    user_id = read_access_token(token).user_id
    body = {
        "user": {"id": user_id, "name": "Ada", "email": "ada@example.com", "idp": "auth0"},
        "expires": "2099-01-01T00:00:00.000Z",
        "account": {"id": account_id, "planType": "plus", "structure": "personal"},
        "accessToken": token,
        "authProvider": "auth0",
    }
    return faults.json_response(200, body)


async def me(request: Request) -> Response:
    """GET /backend-api/me — the user behind the bearer token (counted in `hits` first)."""
    webapp.count_hit(request)
    who = identify(request)
    if isinstance(who, Response):
        return who
    account = who or Account("user-anon", "", "free", "", 0, "valid", None)
    body: dict[str, Any] = {
        "object": "user",
        "id": account.user_id,
        "email": account.email,
        "name": "Ada",
        "picture": None,
        "created": 1700000000,
        "phone_number": None,
        "mfa_flag_enabled": False,
        "amr": [],
        "groups": [],
        "orgs": {
            "object": "list",
            "data": [
                {
                    "object": "organization",
                    "id": "org-sim",
                    "title": "Personal",
                    "personal": True,
                    "role": "owner",
                }
            ],
        },
        "has_payg_project_spend_limit": True,
    }
    return faults.json_response(200, body)


async def models(request: Request) -> Response:
    """GET /backend-api/models and /backend-anon/models — the configured catalogue."""
    state = sim_state(request)
    state.stats.models += 1
    who = identify(request)
    if isinstance(who, Response):
        return who
    cfg = state.config
    items = [
        {
            "slug": slug,
            "max_tokens": 32767,
            "title": slug,
            "description": f"Simulated model {slug}",
            "tags": ["gpt4o"] if slug != "auto" else [],
            "capabilities": {},
            "product_features": {
                "attachments": {
                    "type": "retrieval",
                    "accepted_mime_types": ["text/plain", "application/pdf"],
                    "image_mime_types": ["image/png", "image/jpeg", "image/gif", "image/webp"],
                    "can_accept_all_mime_types": True,
                }
            },
            "enabled_tools": [],
        }
        for slug in cfg.models
    ]
    body = {
        "models": items,
        "categories": [
            {
                "category": "gpt_4",
                "human_category_name": "GPT",
                "subscription_level": "free",
                "default_model": cfg.default_model_slug,
            }
        ],
        "default_model_slug": cfg.default_model_slug,
    }
    return faults.json_response(200, body)
