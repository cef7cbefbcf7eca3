"""The endpoints the gateway never forwards: ONE table, first matching row wins.

Everyone logged in to the gateway acts as a shared pool account (or as the
account whose token they gave). Whatever would show that account's owner
(email, phone, payment details), act on the account itself (deletion,
logout everywhere, settings, MFA, invites, data export), or change what
every other user of the account sees (memories, custom instructions, shared
links) is answered here and never reaches the upstream. Reads the web app
needs in order to start get a harmless stub instead of a 403, so the app
still loads. docs/gateway.md shows this table; a test keeps
the two in step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

FORBIDDEN: dict[str, Any] = {"detail": "Forbidden by chat2api gateway"}
ANY = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
READS = frozenset({"GET", "HEAD"})

FAKE_USER: dict[str, Any] = {
    "object": "user",
    "id": "user-chat2api",
    "email": "user@chat2api.local",
    "name": "chat2api",
    "picture": None,
    "created": 0,
    "phone_number": None,
    "mfa_flag_enabled": False,
    "amr": [],
    "groups": [],
    "orgs": {"object": "list", "data": []},
    "has_payg_project_spend_limit": None,
}
FREE_SUBSCRIPTION: dict[str, Any] = {
    "id": "chat2api",
    "plan_type": "free",
    "seats_in_use": 1,
    "seats_entitled": 1,
    "active_until": None,
    "billing_period": None,
    "will_renew": False,
    "non_profit_org_discount_applied": None,
    "billing_currency": None,
}
ACCOUNT_CHECK: dict[str, Any] = {
    "accounts": {
        "default": {
            "account": {
                "account_user_role": "account-owner",
                "account_user_id": "user-chat2api",
                "processor": {},
                "account_id": "chat2api",
                "organization_id": None,
                "is_most_recent_expired_subscription_gratis": False,
                "has_previously_paid_subscription": False,
                "name": None,
                "profile_picture_id": None,
                "profile_picture_url": None,
                "structure": "personal",
                "plan_type": "free",
                "is_deactivated": False,
                "promo_data": {},
            },
            "features": [],
            "entitlement": {
                "subscription_id": None,
                "has_active_subscription": False,
                "subscription_plan": "chatgptfreeplan",
                "expires_at": None,
            },
            "last_active_subscription": None,
        }
    },
    "account_ordering": ["default"],
}
NO_MEMORIES: dict[str, Any] = {"memories": [], "memory_max_tokens": 10000, "memory_num_tokens": 0}
NO_INSTRUCTIONS: dict[str, Any] = {
    "object": "user_system_message_detail",
    "enabled": False,
    "about_user_message": "",
    "about_model_message": "",
}


@dataclass(frozen=True, slots=True)
class Rule:
    """Requests with one of ``methods`` whose path matches ``pattern`` get ``body``."""

    methods: frozenset[str]
    pattern: str
    status: int
    reason: str
    body: dict[str, Any] = field(default_factory=lambda: FORBIDDEN)

    def matches(self, method: str, path: str) -> bool:
        return method in self.methods and _compiled(self.pattern).fullmatch(path) is not None


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        compiled = _PATTERNS[pattern] = re.compile(pattern, re.IGNORECASE)
    return compiled


# fmt: off
RULES: tuple[Rule, ...] = (
    Rule(READS, r"/backend-api/me", 200,
         "the real user's email, name, phone and organisations", FAKE_USER),
    Rule(ANY, r"/backend-api/me(/.*)?", 403,
         "edits of the real user's profile"),
    Rule(READS, r"/backend-api/accounts/check(/.*)?", 200,
         "the real account's owner, workspace names and billing state", ACCOUNT_CHECK),
    Rule(ANY, r"/backend-api/accounts/deactivate(/.*)?", 403,
         "deletes the shared account"),
    Rule(ANY, r"/backend-api/accounts/logout_all(/.*)?", 403,
         "logs the real account out everywhere (the pool's tokens with it)"),
    Rule(ANY, r"/backend-api/accounts/mfa.*", 403,
         "MFA enrolment of the real account"),
    Rule(ANY, r"/backend-api/accounts/[^/]+/(invites|users)(/.*)?", 403,
         "workspace members and invites (emails; inviting strangers)"),
    Rule(ANY, r"/backend-api/(accounts/)?data_export(/.*)?", 403,
         "mails every conversation of the account to its owner"),
    Rule(WRITES, r"/backend-api/settings(/.*)?", 403,
         "settings are the account's, shared by every user (incl. clearing memory)"),
    Rule(ANY, r"/backend-api/(shared_conversations|share)(/.*)?", 403,
         "shared links publish under the real account and list everyone's links"),
    Rule(READS, r"/backend-api/memories", 200,
         "memories are personal to the account's owner", NO_MEMORIES),
    Rule(ANY, r"/backend-api/memories(/.*)?", 403,
         "memory edits would change what every user of the account gets"),
    Rule(READS, r"/backend-api/user_system_messages", 200,
         "custom instructions are the owner's", NO_INSTRUCTIONS),
    Rule(ANY, r"/backend-api/user_system_messages(/.*)?", 403,
         "custom-instruction edits would apply to every user of the account"),
    Rule(READS, r"/backend-api/subscriptions", 200,
         "billing details of the real account", FREE_SUBSCRIPTION),
    Rule(ANY, r"/backend-api/(subscriptions|payments|billing)(/.*)?", 403,
         "payment and subscription pages act on the owner's card"),
    Rule(WRITES, r"/backend-api/conversations", 403,
         "bulk delete/archive of every conversation of the shared account"),
    Rule(ANY, r"/(api-keys|dashboard|admin|account/(manage|billing))(/.*)?", 403,
         "API keys, platform dashboard and admin pages of the real account"),
    Rule(ANY, r"/api/auth/(?!session$).*", 403,
         "NextAuth sign-in/out acts on the upstream login; the gateway has its own"),
)
# fmt: on


def blocked(method: str, path: str) -> Rule | None:
    """The rule answering ``method path`` instead of the upstream, if any.

    ``path`` is normalised (``gateway.paths``). Matching ignores case, a
    trailing slash and ``;`` parameters, which some servers ignore too: when
    in doubt, a path is blocked.
    """
    method = method.upper()
    path = path.split(";", 1)[0].rstrip("/") or "/"
    for rule in RULES:
        if rule.matches(method, path):
            return rule
    return None
