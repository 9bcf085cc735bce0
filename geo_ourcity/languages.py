"""Which language content is shown in (the city's profile).

Two kinds of content:
- The city's translated data (category names, groups, descriptions, questions and their values, area levels):
  {language code: text} mappings with one value per configured language (settings.LANGUAGES), of which only the
  default language's (settings.LANGUAGE_CODE) is required. `translated()` picks the active language's value,
  else the default language's, else the first of the configured languages that has one.
- The texts the service itself writes in two languages (routing explanations: their _ru and _en fields), like the
  UI's gettext catalogues: CONTENT_LANGUAGES. A configured language without one of its own (de, pt-br ...) shows
  the city's default language's, else English, whose msgids are English.
"""
from django.conf import settings
from django.utils.translation import get_language

CONTENT_LANGUAGES = ("ru", "en")


def _norm(code):
    return (code or "").strip().lower().replace("_", "-")


def content_language(code=None):
    """The content language for `code` (default: the active language): its own, else the default's, else "en"."""
    for candidate in (code or get_language() or "", settings.LANGUAGE_CODE):
        prefix = _norm(candidate).split("-")[0]
        if prefix in CONTENT_LANGUAGES:
            return prefix
    return "en"


def default_content_language():
    """The content language of the city's default language (LANGUAGE_CODE): Open311 notices and mail use it."""
    return content_language(settings.LANGUAGE_CODE)


def configured_languages():
    """The configured languages' codes, the default first (Django's codes: en, de, pt-br ...)."""
    default = _norm(settings.LANGUAGE_CODE)
    return list(dict.fromkeys([default, *(_norm(code) for code, _ in settings.LANGUAGES)]))


def default_language():
    return _norm(settings.LANGUAGE_CODE)


def language_order(code=None):
    """The languages a translated value is looked up in, best first: `code` (default: the active language), its
    general language (pt for pt-br), the default language, then the other configured ones."""
    active = _norm(code or get_language() or "")
    return list(dict.fromkeys([c for c in (active, active.split("-")[0]) if c] + configured_languages()))


def translated(values, code=None):
    """The text of a translated value ({language code: text}) in `code` (default: the active language), falling
    back to the default language's (language_order); '' when it has none. A plain string is returned as it is."""
    if isinstance(values, str):
        return values
    if not isinstance(values, dict):
        return ""
    for lang in language_order(code):
        text = values.get(lang)
        if text:
            return str(text)
    return next((str(v) for v in values.values() if v), "")
