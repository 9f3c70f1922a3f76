"""Parsing ``/app/...`` destinations into (room, action)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from gateway.chat.errors import ChatError
from gateway.errors import ErrorMessage

APP_PREFIX = "/app/"
ROOM_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DESTINATION = re.compile(r"/app/rooms/(?P<room>[^/]+)/(?P<action>messages|read|typing)")

Action = Literal["messages", "read", "typing"]


@dataclass(frozen=True, slots=True)
class AppDestination:
    room: str
    action: Action


def is_valid_room(room: str) -> bool:
    return ROOM_RE.fullmatch(room) is not None


def room_topic(room: str) -> str:
    """The topic every event of ``room`` is published to."""
    return f"/topic/room.{room}"


def parse_app_destination(destination: str) -> AppDestination:
    """``/app/rooms/general/messages`` -> AppDestination("general", "messages")."""
    m = _DESTINATION.fullmatch(destination)
    if m is None:
        raise ChatError(
            f"unknown application destination '{destination}'",
            message=ErrorMessage.UNKNOWN_DESTINATION,
        )
    room = m["room"]
    if not is_valid_room(room):
        raise ChatError(
            f"invalid room id '{room}'",
            "room ids are 1-64 characters from A-Z a-z 0-9 _ -",
            message=ErrorMessage.INVALID_DESTINATION,
        )
    action: Action = m["action"]  # type: ignore[assignment]
    return AppDestination(room, action)
