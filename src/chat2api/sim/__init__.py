"""An offline simulator of the ChatGPT web backend (eras E2 and E3), independent of the client.

Public surface: `create_sim_app`, `serve`, `SimServer`, `SimConfig`,
`mint_access_token`, `mint_refresh_token`, `reply_text`, `reasoning_text`, and the generated
content helpers (`generated_png`, `image_request`, `image_reply_text`, `sandbox_csv`,
`sandbox_reply`, `cite_text`). See docs/simulator.md.
"""

from chat2api.sim.app import create_sim_app
from chat2api.sim.config import SimConfig
from chat2api.sim.generated import (
    cite_text,
    generated_png,
    image_reply_text,
    image_request,
    sandbox_csv,
    sandbox_reply,
)
from chat2api.sim.replies import reasoning_text, reply_text
from chat2api.sim.server import SimServer, serve
from chat2api.sim.tokens import mint_access_token, mint_refresh_token

__all__ = [
    "SimConfig",
    "SimServer",
    "cite_text",
    "create_sim_app",
    "generated_png",
    "image_reply_text",
    "image_request",
    "mint_access_token",
    "mint_refresh_token",
    "reasoning_text",
    "reply_text",
    "sandbox_csv",
    "sandbox_reply",
    "serve",
]
