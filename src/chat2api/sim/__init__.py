"""An offline simulator of the ChatGPT web backend (E2 era), independent of the client code.

Public surface: `create_sim_app`, `serve`, `SimServer`, `SimConfig`,
`mint_access_token`, `mint_refresh_token`, `reply_text`, `reasoning_text`. See docs/simulator.md.
"""

from chat2api.sim.app import create_sim_app
from chat2api.sim.config import SimConfig
from chat2api.sim.replies import reasoning_text, reply_text
from chat2api.sim.server import SimServer, serve
from chat2api.sim.tokens import mint_access_token, mint_refresh_token

__all__ = [
    "SimConfig",
    "SimServer",
    "create_sim_app",
    "mint_access_token",
    "mint_refresh_token",
    "reasoning_text",
    "reply_text",
    "serve",
]
