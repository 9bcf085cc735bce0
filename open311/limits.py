"""Per-client limits of Open311's guessable inputs, in the shared cache (geo_ourcity.limits): POSTs with a missing
or wrong api_key (settings.LIMIT_OPEN311_BAD_KEYS: failures counted, and refused before the next key is even
checked once they are used up) and token lookups (settings.LIMIT_OPEN311_TOKEN_LOOKUPS: every lookup counts).
Past either: 429 with Retry-After in Open311's error format (open311.errors)."""
from django.conf import settings
from rest_framework.exceptions import Throttled

from geo_ourcity.limits import client_key, rate_limited

BAD_KEYS = "open311-bad-key"
TOKENS = "open311-token"


def bad_keys_check(request):
    """Before a POST's api_key is checked: 429 if this client has used up its failures."""
    wait = rate_limited(request, group=BAD_KEYS, rate=settings.LIMIT_OPEN311_BAD_KEYS, key=client_key(request),
                        count=False)
    if wait is not None:
        raise Throttled(wait, "Too many requests with a missing or wrong api_key from this address.")


def bad_key_count(request):
    """A POST's api_key was missing or wrong: one failure of this client."""
    rate_limited(request, group=BAD_KEYS, rate=settings.LIMIT_OPEN311_BAD_KEYS, key=client_key(request))


def token_lookup_check(request):
    wait = rate_limited(request, group=TOKENS, rate=settings.LIMIT_OPEN311_TOKEN_LOOKUPS, key=client_key(request))
    if wait is not None:
        raise Throttled(wait, "Too many token lookups from this address.")
