"""Per-client and per-key limits of Open311's inputs, in the shared cache (geo_ourcity.limits):

- POSTs per API key (the key's own `rate_limit`, else settings.LIMIT_OPEN311_POSTS);
- POSTs with a missing or wrong api_key, per client (settings.LIMIT_OPEN311_BAD_KEYS): failures are counted, and
  once they are used up every POST of that client is refused, a right key's too, so a guesser learns nothing;
- token lookups per client (settings.LIMIT_OPEN311_TOKEN_LOOKUPS: every lookup counts).

Past any: 429 with Retry-After in Open311's error format (open311.errors). A POST costs one round trip to Redis
for all its limits, whichever way its key went.
"""
from django.conf import settings
from rest_framework.exceptions import Throttled

from geo_ourcity.limits import Limit, client_key, rate_limited, rate_limits

POSTS = "open311-post"
BAD_KEYS = "open311-bad-key"
TOKENS = "open311-token"
BAD_KEYS_MESSAGE = "Too many requests with a missing or wrong api_key from this address."


def post_limits_check(request, key):
    """After a POST's api_key was checked (`key`: the ApiKey, or None when it was missing or wrong): 429 if this
    client has used up its failures (whatever the key), or a right key its POSTs; a wrong key counts one failure."""
    bad_keys = Limit(BAD_KEYS, settings.LIMIT_OPEN311_BAD_KEYS, client_key(request), count=key is None)
    if key is None:
        wait = rate_limits(request, [bad_keys])[0]
        posts_wait = None
    else:
        wait, posts_wait = rate_limits(request, [
            bad_keys, Limit(POSTS, key.rate_limit or settings.LIMIT_OPEN311_POSTS, key.pk)])
    if wait is not None:
        raise Throttled(wait, BAD_KEYS_MESSAGE)
    if posts_wait is not None:
        raise Throttled(posts_wait, "Too many requests for this api_key.")


def token_lookup_check(request):
    wait = rate_limited(request, group=TOKENS, rate=settings.LIMIT_OPEN311_TOKEN_LOOKUPS, key=client_key(request))
    if wait is not None:
        raise Throttled(wait, "Too many token lookups from this address.")
