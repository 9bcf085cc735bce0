"""Look at the hand-ons now and fill the data-staff queue of registry corrections (staff.corrections); the
scheduler does the same every REGISTRY_CORRECTION_EVERY seconds (staff.tasks.corrections_find)."""
from django.core.management.base import BaseCommand

from staff.corrections import corrections_find


class Command(BaseCommand):
    help = "Fill the data-staff queue of registry corrections from the complaints handed on (/staff/registry/)."

    def handle(self, *args, **options):
        counts = corrections_find()
        self.stdout.write("registry corrections: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
