"""Property tests: serialize/parse round trips and chunking independence."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.stomp import Frame, serialize

from .helpers import frames_only, parse_all, parse_chunks
from .strategies import frames, versions


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_parse_serialize_roundtrip(data: st.DataObject) -> None:
    version = data.draw(versions)
    frame = data.draw(frames(version))
    assert parse_all(serialize(frame, version), version) == [frame]


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_arbitrary_split_points_give_same_frames(data: st.DataObject) -> None:
    version = data.draw(versions)
    sent = data.draw(st.lists(frames(version), min_size=1, max_size=4))
    eols = data.draw(
        st.lists(
            st.sampled_from([b"", b"\n", b"\r\n", b"\n\n"]), min_size=len(sent), max_size=len(sent)
        )
    )
    stream = b"".join(serialize(f, version) + eol for f, eol in zip(sent, eols, strict=True))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    expected: list[Frame] = list(sent)
    assert frames_only(parse_chunks(chunks, version)) == expected
    assert frames_only(parse_all(stream, version)) == expected


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_byte_at_a_time_equals_one_chunk(data: st.DataObject) -> None:
    version = data.draw(versions)
    frame = data.draw(frames(version))
    stream = serialize(frame, version)
    chunks = [stream[i : i + 1] for i in range(len(stream))]
    assert parse_chunks(chunks, version) == [frame]
