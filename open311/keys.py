"""API keys for integrators: issued once in clear text, stored only as a SHA-256 digest."""
import datetime
import hashlib
import secrets

from django.db import transaction
from django.utils import timezone

from .models import ApiKey

# last_used_at is informative: refreshing it at most this often keeps concurrent POSTs from queueing on one row.
LAST_USED_RESOLUTION = datetime.timedelta(minutes=5)


def key_digest(raw):
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def new_secret(key):
    """Give an unsaved ApiKey a fresh secret (prefix and digest); return the clear key."""
    raw = secrets.token_urlsafe(32)
    key.prefix, key.key_hash = raw[:8], key_digest(raw)
    return raw


@transaction.atomic
def api_key_issue(*, name):
    """Create a key; return (ApiKey, the clear key). The clear key is not stored and can't be shown again."""
    key = ApiKey(name=name)
    raw = new_secret(key)
    key.save()
    return key, raw


def api_key_check(raw):
    """The active ApiKey for a clear key, or None."""
    if not raw:
        return None
    key = ApiKey.objects.filter(key_hash=key_digest(raw), active=True).first()
    if key is not None:
        now = timezone.now()
        if key.last_used_at is None or key.last_used_at < now - LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key
