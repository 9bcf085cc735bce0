"""Learn the category-suggestion model from the city's history (routing.suggest_model) and store it as the next
version; the scheduler runs the same thing (routing.tasks.suggestion_model_train)."""
from django.core.management.base import BaseCommand, CommandError

from routing.suggest_model import NotEnoughHistory, model_train


class Command(BaseCommand):
    help = ("Train the category-suggestion model on the complaints' descriptions and the categories they ended "
            "with; store it as the next version (it answers from then on).")

    def add_arguments(self, parser):
        parser.add_argument("--no-evaluate", action="store_true",
                            help="skip the held-out top-1/top-3 measurement (one fit instead of two)")

    def handle(self, *args, **options):
        try:
            row = model_train(evaluate_first=not options["no_evaluate"])
        except NotEnoughHistory as exc:
            raise CommandError(str(exc)) from None
        metrics = row.metrics
        scores = (f"; held out {metrics['held_out']}: top-1 {metrics['top1']:.3f}, top-3 {metrics['top3']:.3f}"
                  if "top1" in metrics else "")
        self.stdout.write(f"history-v{row.version}: {row.samples} complaints, {len(row.classes)} categories, "
                          f"{row.train_seconds} s, {metrics['size_bytes']} bytes{scores}")
