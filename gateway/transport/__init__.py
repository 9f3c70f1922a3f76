"""Transports: thin adapters that move bytes between sockets and a :class:`Connection`.

``ws`` serves STOMP over WebSocket inside the aiohttp app; ``tcp`` is the plain STOMP
listener for backend services. Both implement :class:`gateway.ports.Outbound` and feed the
same sans-I/O session through the :class:`gateway.connection.Connection` that
:class:`~gateway.transport.base.OpenConnection` makes for each socket; neither knows anything
about STOMP beyond the one ERROR frame that refuses a socket before it has a session.
"""
