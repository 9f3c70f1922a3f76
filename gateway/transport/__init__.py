"""Transports: thin adapters that move bytes between sockets and a :class:`Connection`.

``lean_ws`` serves STOMP over WebSocket on a bare asyncio protocol (framing in ``wsframe``),
taking upgrades from the HTTP guard (``http_guard``) before aiohttp sees them; ``ws`` serves it
inside the aiohttp app (``--ws-impl aiohttp``, and what the lean path leaves to aiohttp);
``tcp`` is the plain STOMP listener for backend services. All implement
:class:`gateway.ports.Outbound` and feed the same sans-I/O session through the
:class:`gateway.connection.Connection` that :class:`~gateway.transport.base.OpenConnection`
makes for each socket; none knows anything about STOMP beyond the one ERROR frame that
refuses a socket before it has a session.
"""
