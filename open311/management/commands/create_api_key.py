from django.core.management.base import BaseCommand, CommandError

from geo_ourcity.env import RATE_RE
from open311.keys import api_key_issue
from open311.models import ApiKey


class Command(BaseCommand):
    help = "Issue an Open311 API key to an integrator. Prints the key once; only its SHA-256 is stored."

    def add_arguments(self, parser):
        parser.add_argument("name", help="who the key is for (unique), e.g. 'fixmystreet-moscow'")
        parser.add_argument("--rate-limit", default="",
                            help="POSTs this key may make, e.g. 120/m or 5000/h (default: OURCITY_LIMIT_OPEN311_POSTS)")

    def handle(self, *args, name, rate_limit, **options):
        name, rate_limit = name.strip(), rate_limit.strip()
        if rate_limit and not RATE_RE.match(rate_limit):
            raise CommandError(f"--rate-limit must be a rate like 120/m, 5000/h or 10/5m, got {rate_limit!r}.")
        if not name or len(name) > ApiKey._meta.get_field("name").max_length:
            raise CommandError("NAME must be 1 to 100 characters.")
        if ApiKey.objects.filter(name=name).exists():
            raise CommandError(f"A key named {name!r} exists already; deactivate it in the admin or pick another name.")
        _key, raw = api_key_issue(name=name, rate_limit=rate_limit)
        self.stdout.write(raw)
        self.stderr.write(f"API key for {name!r} (shown only now; send it to the integrator over a private channel).")
