"""Translation for the chat: providers behind one interface, and the machinery around them.

- providers.py: the `TranslationProvider` interface, `Translation`, the provider errors.
- apertium.py, deepl.py, libretranslate.py, papago.py: the providers (HTTP adapters).
- translator.py: `Translator`, a provider behind cache, limits, retries and a breaker,
  answering outcomes (outcomes.py) instead of raising.
- cache.py (Redis): its cache; the limits, breaker and backoff it uses are in
  `workers.resilience`, shared with the push providers.
- detect.py: the source language (sender's profile, else lingua's detection).
- languages.py: language tags; settings.py: `TranslateSettings` from `STOMPGATE_TRANSLATE_*`;
  factory.py: the configured provider and Translator.
- audience.py: which languages a room's messages go into (the room's, its members');
  worker.py: the translation worker (`python -m workers translate`) built on all of this.
"""

from workers.translate.detect import LanguageDetector, source_language
from workers.translate.factory import build_provider, build_translator
from workers.translate.outcomes import Delay, Outcome, RetryLater, Untranslatable
from workers.translate.providers import LanguagePair, Translation, TranslationProvider
from workers.translate.settings import ProviderLimits, TranslateSettings
from workers.translate.translator import Translator

__all__ = [
    "Delay",
    "LanguageDetector",
    "LanguagePair",
    "Outcome",
    "ProviderLimits",
    "RetryLater",
    "TranslateSettings",
    "Translation",
    "TranslationProvider",
    "Translator",
    "Untranslatable",
    "build_provider",
    "build_translator",
    "source_language",
]
