from django.core.management.base import BaseCommand

from geo_ourcity.demo import ensure_demo_users


class Command(BaseCommand):
    help = "Print the demo URLs and logins."

    def add_arguments(self, parser):
        parser.add_argument("--port", default="8000")

    def handle(self, *args, **options):
        base = f"http://127.0.0.1:{options['port']}"
        self.stdout.write("")
        self.stdout.write(f"geo_ourcity demo is starting on {base}")
        self.stdout.write(f"  residents' map:            {base}/")
        self.stdout.write(f"  statistics:                {base}/stats/")
        self.stdout.write(f"  staff workspace:           {base}/staff/")
        self.stdout.write(f"  admin (registry, imports): {base}/admin/")
        self.stdout.write(f"  data-staff upload page:    {base}/admin/importers/importrun/upload/")
        self.stdout.write(f"  Open311 GeoReport v2:      {base}/open311/v2/discovery.json")
        self.stdout.write(f"  REST API docs (OpenAPI):   {base}/api/docs/")
        for login, password, role in ensure_demo_users():
            self.stdout.write(f"  login {login:<10} password {password:<10} {role}")
        self.stdout.write("Stop with Ctrl-C; `make db-stop` stops the embedded database.")
        self.stdout.write("")
