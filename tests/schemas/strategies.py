"""Hypothesis strategies derived from msgspec Struct types (via ``msgspec.inspect``)."""

from __future__ import annotations

from typing import Any

import msgspec
import msgspec.inspect as mi
from hypothesis import strategies as st


def _bounded_text(t: mi.StrType) -> st.SearchStrategy[str]:
    if t.pattern is not None:
        base = st.from_regex(t.pattern, fullmatch=True)
        lo, hi = t.min_length or 0, t.max_length
        return base.filter(lambda s: len(s) >= lo and (hi is None or len(s) <= hi))
    return st.text(min_size=t.min_length or 0, max_size=min(t.max_length or 50, 200))


def _int(t: mi.IntType) -> st.SearchStrategy[int]:
    lo = t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else -(2**63))
    hi = t.le if t.le is not None else (t.lt - 1 if t.lt is not None else 2**63 - 1)
    return st.integers(min_value=lo, max_value=hi)


def strategy_for(t: mi.Type) -> st.SearchStrategy[Any]:
    """A strategy producing plain JSON-able Python values that the msgspec type accepts."""
    if isinstance(t, mi.Metadata):
        return strategy_for(t.type)
    if isinstance(t, mi.StrType):
        return _bounded_text(t)
    if isinstance(t, mi.IntType):
        return _int(t)
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.NoneType):
        return st.none()
    if isinstance(t, mi.LiteralType):
        return st.sampled_from(t.values)
    if isinstance(t, mi.UnionType):
        return st.one_of([strategy_for(x) for x in t.types])
    if isinstance(t, mi.ListType):
        return st.lists(
            strategy_for(t.item_type),
            min_size=t.min_length or 0,
            max_size=min(t.max_length or 3, 3),
        )
    if isinstance(t, mi.DictType):
        return st.dictionaries(
            strategy_for(t.key_type),
            strategy_for(t.value_type),
            min_size=t.min_length or 0,
            max_size=min(t.max_length or 5, 5),
        )
    if isinstance(t, mi.ListType):
        return st.lists(
            strategy_for(t.item_type),
            min_size=t.min_length or 0,
            max_size=min(t.max_length or 5, 5),
        )
    if isinstance(t, mi.StructType):
        return struct_dicts(t)
    raise NotImplementedError(f"no strategy for {t!r}")


def struct_dicts(t: mi.StructType) -> st.SearchStrategy[dict[str, Any]]:
    required = {f.encode_name: strategy_for(f.type) for f in t.fields if f.required}
    optional = {f.encode_name: strategy_for(f.type) for f in t.fields if not f.required}
    return st.fixed_dictionaries(required, optional=optional)


def instances(struct_type: type[msgspec.Struct]) -> st.SearchStrategy[msgspec.Struct]:
    """Struct instances, built through ``msgspec.convert`` so every constraint is checked."""
    info = mi.type_info(struct_type)
    assert isinstance(info, mi.StructType)
    return struct_dicts(info).map(lambda d: msgspec.convert(d, struct_type))
