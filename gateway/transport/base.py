"""What a connection needs from its transport: write bytes now, say how much is queued, close."""

from __future__ import annotations

from typing import Protocol


class Outbound(Protocol):
    """The sending half of a client transport. ``write`` never blocks and never awaits."""

    def write(self, data: bytes) -> None: ...

    def buffered(self) -> int:
        """Bytes accepted by ``write`` but not yet handed to the kernel."""
        ...

    def close(self) -> None:
        """Close after what was written is flushed; idempotent."""
        ...

    def abort(self) -> None:
        """Close now, dropping anything still queued; idempotent."""
        ...
