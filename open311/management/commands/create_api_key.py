from django.core.management.base import BaseCommand, CommandError

from open311.keys import api_key_issue
from open311.models import ApiKey


class Command(BaseCommand):
    help = "Issue an Open311 API key to an integrator. Prints the key once; only its SHA-256 is stored."

    def add_arguments(self, parser):
        parser.add_argument("name", help="who the key is for (unique), e.g. 'fixmystreet-moscow'")

    def handle(self, *args, name, **options):
        name = name.strip()
        if not name or len(name) > ApiKey._meta.get_field("name").max_length:
            raise CommandError("NAME must be 1 to 100 characters.")
        if ApiKey.objects.filter(name=name).exists():
            raise CommandError(f"A key named {name!r} exists already; deactivate it in the admin or pick another name.")
        _key, raw = api_key_issue(name=name)
        self.stdout.write(raw)
        self.stderr.write(f"API key for {name!r} (shown only now; send it to the integrator over a private channel).")
