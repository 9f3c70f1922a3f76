"""Source language: the sender's profile wins; else lingua, restricted to the candidates."""

from __future__ import annotations

import pytest

from workers.translate import LanguageDetector, source_language

CANDIDATES = ("en", "es", "fr", "de", "it", "pt", "nl", "ru", "ja", "ko", "zh")


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector(CANDIDATES)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Hello world, see you tomorrow", "en"),
        ("¿Dónde está la reunión?", "es"),
        ("Bonjour tout le monde", "fr"),
        ("Guten Morgen zusammen", "de"),
        ("Привет, как дела?", "ru"),
        ("안녕하세요", "ko"),
        ("おはようございます", "ja"),
        ("Llego tarde, hay mucho tráfico", "es"),
    ],
)
def test_detects_chat_sized_text(detector: LanguageDetector, text: str, language: str) -> None:
    assert detector.detect(text) == language


def test_no_letters_no_language(detector: LanguageDetector) -> None:
    assert detector.detect("👍 1234 !!") is None
    assert detector.detect("") is None


def test_low_confidence_is_unknown() -> None:
    strict = LanguageDetector(CANDIDATES, min_confidence=0.99)
    assert strict.detect("ok") is None


def test_the_profile_wins_over_detection(detector: LanguageDetector) -> None:
    assert source_language("Hello world, see you tomorrow", "es", detector) == "es"
    assert source_language("Hello world, see you tomorrow", None, detector) == "en"
    assert source_language("Hello world, see you tomorrow", "not a tag", detector) == "en"


def test_candidates_are_checked() -> None:
    with pytest.raises(ValueError, match="does not know"):
        LanguageDetector(["en", "xx"])
    with pytest.raises(ValueError, match="at least two"):
        LanguageDetector(["en", "en-GB"])
