"""API keys for integrators: issued once in clear text, stored only as a SHA-256 digest."""
import datetime
import functools
import hashlib
import secrets

from django.db import connection, transaction
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
def api_key_issue(*, name, rate_limit=""):
    """Create a key; return (ApiKey, the clear key). The clear key is not stored and can't be shown again.
    `rate_limit` (e.g. "120/m") overrides the default limit of its POSTs (settings.LIMIT_OPEN311_POSTS)."""
    key = ApiKey(name=name, rate_limit=rate_limit)
    raw = new_secret(key)
    key.save()
    return key, raw


@transaction.atomic
def api_key_rotate(*, name, rate_limit=None):
    """Give the key named `name` a new secret, or issue it if there is none: (ApiKey, the clear key, what was done:
    "issued", "rotated" or "rotated and reactivated"). The old secret stops working when this commits.
    `rate_limit` None keeps the key's limit."""
    key = ApiKey.objects.select_for_update().filter(name=name).first()
    if key is None:
        key, raw = api_key_issue(name=name, rate_limit=rate_limit or "")
        return key, raw, "issued"
    done = "rotated" if key.active else "rotated and reactivated"
    raw = new_secret(key)
    key.active = True
    if rate_limit is not None:
        key.rate_limit = rate_limit
    key.save(update_fields=["prefix", "key_hash", "active", "rate_limit"])
    return key, raw, done


def api_key_check(raw):
    """The active ApiKey for a clear key, or None."""
    return api_key_check_with_catalogue(raw)[0]


def api_key_check_with_catalogue(raw):
    """(the active ApiKey for a clear key or None, the service catalogue's change stamp or None), in one statement.

    A POST needs both: the key, checked against the database on every request (a deactivated key is refused at
    once), and the stamp that tells whether the catalogue it read before is still current (open311.selectors).
    """
    with connection.cursor() as cur:
        # A plain parameterised statement: nothing prepared on the connection, so it holds behind a transaction-mode
        # pooler (docs/database.md); planning it costs a few tens of microseconds.
        cur.execute(_check_sql(), [key_digest(raw) if raw else None])
        *key_row, version = cur.fetchone()
    key = None
    if key_row[0] is not None:
        key = ApiKey.from_db(connection.alias, _KEY_FIELDS, key_row)
        now = timezone.now()
        if key.last_used_at is None or key.last_used_at < now - LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key, version


_KEY_FIELDS = [f.attname for f in ApiKey._meta.concrete_fields]


# Process-local memo: SQL built from the models, which never change while the process lives.
@functools.cache
def _check_sql():
    quote = connection.ops.quote_name
    columns = ", ".join(f"k.{quote(f.column)}" for f in ApiKey._meta.concrete_fields)
    # One row always: the key's columns (NULLs when there is no such active key) and the stamp. Hand-written:
    # the ORM spends more time building a query than PostgreSQL spends running this one.
    return (f"SELECT {columns}, (SELECT v.version FROM open311_catalogue_version v WHERE v.id = 1) "
            f"FROM (SELECT 1) one LEFT JOIN {quote(ApiKey._meta.db_table)} k "
            f"ON k.{quote('key_hash')} = %s AND k.{quote('active')}")
