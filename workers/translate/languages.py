"""Language tags as the gateway speaks them: ISO 639-1 with an optional region or script.

`normalize("EN")` is "en", `normalize("pt_br")` is "pt-BR", `normalize("zh-hant")` is
"zh-Hant". `base("pt-BR")` is "pt". Anything else (empty, three letters, digits) is a
`ValueError`: a tag reaches a provider only in this one form, so each provider maps exactly one
spelling to its own codes.
"""

from __future__ import annotations

import re

_TAG = re.compile(r"^([A-Za-z]{2})(?:[-_]([A-Za-z]{2}|[A-Za-z]{4}))?$")


def normalize(tag: str) -> str:
    """The canonical spelling of a language tag; `ValueError` if it is not one."""
    match = _TAG.match(tag.strip())
    if match is None:
        raise ValueError(f"not a language tag (ISO 639-1, e.g. 'en' or 'pt-BR'): {tag!r}")
    language, sub = match.groups()
    if sub is None:
        return language.lower()
    sub = sub.upper() if len(sub) == 2 else sub.title()
    return f"{language.lower()}-{sub}"


def base(tag: str) -> str:
    """The language of a tag without its region or script."""
    return normalize(tag).partition("-")[0]
