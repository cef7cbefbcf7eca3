"""The gateway: a mirror of the upstream web app in front of the account pool.

Opt-in with ``ENABLE_GATEWAY=true``; ``gateway_routes`` are then mounted after
every other route. ``routes`` (login, logout, session, seed API, catch-all),
``identity`` (logins, sessions, seeds in the store), ``proxy`` (the reverse
proxy), ``blocked`` (the one table of endpoints never forwarded), ``page``
(the login form).
"""

from chat2api.gateway.routes import gateway_routes

__all__ = ["gateway_routes"]
