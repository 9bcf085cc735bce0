"""Mail residents their complaints' tracking codes (complaints.mail), by hand: the task queue sends each one once its
complaint is filed, and its scheduler sweeps what is still due every minute. This runs the same function."""
import time

from django.core.management.base import BaseCommand, CommandError

from complaints.mail import tracking_mail_send_pending


class Command(BaseCommand):
    help = ("Mail the tracking code of each recent complaint that came with an e-mail address and has not had it. "
            "Exits 1 if some could not be sent (they are tried again on the next run).")

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=500, help="at most this many per run (default 500)")
        parser.add_argument("--loop", type=float, metavar="SECONDS",
                            help="keep running, a round every SECONDS (a worker process instead of cron)")

    def handle(self, *args, **options):
        if options["limit"] < 1:
            raise CommandError("--limit must be at least 1")
        while True:
            run = tracking_mail_send_pending(limit=options["limit"])
            if run.sent or run.failed or run.skipped_busy or not options["loop"]:
                busy = f", {run.skipped_busy} held by another sender" if run.skipped_busy else ""
                self.stdout.write(f"{run.sent} sent, {run.failed} failed{busy}.")
            if not options["loop"]:
                break
            time.sleep(options["loop"])
        if run.failed:
            raise CommandError(f"{run.failed} tracking-code mails could not be sent; see the TrackingMail records "
                               "in the admin (they are tried again on the next run)")
