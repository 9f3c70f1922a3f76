"""Hypothesis strategies for STOMP frames."""

from __future__ import annotations

from hypothesis import strategies as st

from gateway.stomp import Frame
from gateway.stomp.frames import CLIENT_COMMANDS, SERVER_COMMANDS, UNESCAPED_COMMANDS

COMMANDS = sorted(CLIENT_COMMANDS | SERVER_COMMANDS)

# Any text a header can hold (no NUL: no version can write one), including the characters
# escaping exists for.
_chars = st.characters(codec="utf-8", exclude_characters="\x00")
any_text = st.text(st.one_of(_chars, st.sampled_from(":\\\n\r")), max_size=20)
# Text representable without escaping (STOMP 1.0; CONNECT/CONNECTED in any version).
raw_value = st.text(st.characters(codec="utf-8", exclude_characters="\n\r\x00"), max_size=20)
raw_name = st.text(
    st.characters(codec="utf-8", exclude_characters="\n\r:\x00"),
    min_size=1,
    max_size=12,
)


def _names(base: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return base.filter(lambda name: name and name != "content-length")


@st.composite
def frames(draw: st.DrawFn, version: str) -> Frame:
    """A frame that serialize(frame, version) can represent exactly."""
    command = draw(st.sampled_from(COMMANDS))
    if version == "1.0" or command in UNESCAPED_COMMANDS:
        pairs = st.tuples(_names(raw_name), raw_value)
    else:
        pairs = st.tuples(_names(any_text), any_text)
    headers = draw(st.lists(pairs, max_size=6))
    body = draw(st.binary(max_size=64))
    if b"\x00" in body or draw(st.booleans()):
        position = draw(st.integers(0, len(headers)))
        headers.insert(position, ("content-length", str(len(body))))
    return Frame(command, tuple(headers), body)


versions = st.sampled_from(["1.0", "1.1", "1.2"])
