"""Transports: thin adapters that move bytes between sockets and a :class:`Connection`.

``ws`` serves STOMP over WebSocket inside the aiohttp app; ``tcp`` is the plain STOMP
listener for backend services. Both feed the same sans-I/O session through
:class:`gateway.connection.Connection`; neither knows anything about STOMP.
"""
