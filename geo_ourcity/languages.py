"""Which language content is shown in, when the active language has none of its own (the city's profile).

The translated model fields (category names, groups, explanations ...) exist today in CONTENT_LANGUAGES (their
_ru and _en suffixes). A configured language without fields of its own (de, pt-br ...) shows the city's default
language's, else English: the same fall-back as the UI's gettext, whose msgids are English.
"""
from django.conf import settings
from django.utils.translation import get_language

CONTENT_LANGUAGES = ("ru", "en")


def content_language(code=None):
    """The content language for `code` (default: the active language): its own, else the default's, else "en"."""
    for candidate in (code or get_language() or "", settings.LANGUAGE_CODE):
        prefix = candidate.strip().lower().replace("_", "-").split("-")[0]
        if prefix in CONTENT_LANGUAGES:
            return prefix
    return "en"


def default_content_language():
    """The content language of the city's default language (LANGUAGE_CODE): Open311 notices and mail use it."""
    return content_language(settings.LANGUAGE_CODE)
