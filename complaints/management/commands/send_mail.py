"""Send the outbox's due mails (complaints.outbox) by hand: the task queue sends each one once the transaction that
wrote it commits, and its scheduler sweeps what is still due every minute. This runs the same function."""
import time

from django.core.management.base import BaseCommand, CommandError

from complaints.outbox import outbox_send_due


class Command(BaseCommand):
    help = ("Send every mail of the outbox that is due. Exits 1 if some could not be sent (they are tried again "
            "after their backoff).")

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=500, help="at most this many per run (default 500)")
        parser.add_argument("--loop", type=float, metavar="SECONDS",
                            help="keep running, a round every SECONDS (a worker process instead of cron)")

    def handle(self, *args, **options):
        if options["limit"] < 1:
            raise CommandError("--limit must be at least 1")
        if options["loop"] is not None and options["loop"] <= 0:
            raise CommandError("--loop must be more than 0 seconds")
        while True:
            run = outbox_send_due(limit=options["limit"])
            if run.sent or run.failed or run.skipped_busy or not options["loop"]:
                busy = f", {run.skipped_busy} held by another sender" if run.skipped_busy else ""
                self.stdout.write(f"{run.sent} sent, {run.failed} failed, {run.cancelled} cancelled{busy}.")
            if not options["loop"]:
                break
            time.sleep(options["loop"])
        if run.failed:
            raise CommandError(f"{run.failed} mails could not be sent; see the outbox in the admin (they are tried "
                               "again after their backoff)")
