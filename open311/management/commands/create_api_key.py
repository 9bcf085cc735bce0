from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from geo_ourcity.env import RATE_RE
from open311.keys import api_key_issue, api_key_rotate
from open311.models import ApiKey


class Command(BaseCommand):
    help = ("Issue an Open311 API key to an integrator, or with --rotate replace the key of an existing name (the old "
            "key stops working at once). Prints the key once on stdout; only its SHA-256 is stored.")

    def add_arguments(self, parser):
        parser.add_argument("name", help="who the key is for (unique), e.g. 'fixmystreet'")
        parser.add_argument("--rate-limit", default=None,
                            help="POSTs this key may make, e.g. 120/m or 5000/h (default: OURCITY_LIMIT_OPEN311_POSTS; "
                                 "with --rotate, the key's own limit is kept unless this is given)")
        what = parser.add_mutually_exclusive_group()
        what.add_argument("--rotate", action="store_true",
                          help="the name may exist: give it a new key (reactivated if it was deactivated), or issue "
                               "one if there is none; the old key stops working")
        what.add_argument("--exists-ok", action="store_true",
                          help="a name that has a key already is left as it is (nothing printed on stdout, exit 0)")

    def handle(self, *args, **options):
        try:
            self.issue(**options)
        except IntegrityError:  # the same name issued by another process at the same moment
            raise CommandError(f"A key named {options['name'].strip()!r} was issued at the same moment by another "
                               "process: run again (with --rotate or --exists-ok).") from None

    def issue(self, *, name, rate_limit, rotate, exists_ok, **options):
        name = name.strip()
        rate_limit = rate_limit.strip() if rate_limit is not None else None
        if rate_limit and not RATE_RE.match(rate_limit):
            raise CommandError(f"--rate-limit must be a rate like 120/m, 5000/h or 10/5m, got {rate_limit!r}.")
        if not name or len(name) > ApiKey._meta.get_field("name").max_length:
            raise CommandError("NAME must be 1 to 100 characters.")
        if rotate:
            _key, raw, done = api_key_rotate(name=name, rate_limit=rate_limit)
            self.stdout.write(raw)
            old = " (the old key no longer works)" if done != "issued" else ""
            self.stderr.write(f"API key for {name!r} {done}{old}; shown only now: send it to the integrator over a "
                              "private channel.")
            return
        if ApiKey.objects.filter(name=name).exists():
            if exists_ok:
                self.stderr.write(f"A key named {name!r} exists already: left as it is (--rotate replaces it).")
                return
            raise CommandError(f"A key named {name!r} exists already: --rotate replaces it (the old key stops "
                               "working), --exists-ok leaves it; or deactivate it in the admin.")
        _key, raw = api_key_issue(name=name, rate_limit=rate_limit or "")
        self.stdout.write(raw)
        self.stderr.write(f"API key for {name!r} issued; shown only now: send it to the integrator over a private "
                          "channel.")
