from django.core.management.base import BaseCommand, CommandError

from importers.errors import ImportFailure
from importers.generations import dataset_rollback, generations_for


class Command(BaseCommand):
    requires_system_checks = []
    help = ("List a facilities dataset's generations (id, created, state, counts, the import run and who ran it), "
            "or roll the dataset back to its previous generation (--rollback; a dry run unless --commit).")

    def add_arguments(self, parser):
        parser.add_argument("dataset", help="the dataset's code")
        parser.add_argument("--rollback", action="store_true",
                            help="make the previous generation active again (re-routes what that moves)")
        parser.add_argument("--commit", action="store_true", help="with --rollback: apply it (default: dry run)")

    def handle(self, *args, **options):
        try:
            if options["rollback"]:
                from importers.core import _os_user

                result = dataset_rollback(dataset_code=options["dataset"], actor=_os_user(),
                                          commit=options["commit"])
                self.stdout.write(result.report_text, ending="")
                return
            if options["commit"]:
                raise CommandError("--commit goes with --rollback")
            rows = generations_for(options["dataset"])
        except ImportFailure as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{'id':>6}  {'created':<19}  {'state':<8}  {'rows':>9}  {'created':>8}  {'updated':>8}  "
                          f"{'unchanged':>9}  {'retired':>8}  {'run':>6}  by")
        for g in rows:
            c = g.counts or {}
            self.stdout.write(
                f"{g.pk:>6}  {g.created_at:%Y-%m-%d %H:%M:%S}  {g.state:<8}  {c.get('rows', ''):>9}  "
                f"{c.get('created', ''):>8}  {c.get('updated', ''):>8}  {c.get('unchanged', ''):>9}  "
                f"{c.get('retired', ''):>8}  {'#' + str(g.run_id) if g.run_id else '':>6}  {g.actor}")
