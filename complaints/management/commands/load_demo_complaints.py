"""Synthetic complaints for the demo city, so `make demo` shows a living map. Never run by the tests.

They go through the same services as real ones (routing, history, deadlines), on real districts and school
buildings, in a spread of states. Nothing happens when complaints already exist.
"""
import random

from django.contrib.auth import get_user_model
from django.contrib.gis.db.models.functions import PointOnSurface
from django.core.management.base import BaseCommand
from django.utils import timezone

from complaints import services
from complaints.errors import ComplaintError
from complaints.models import Complaint
from complaints.tracking import confirmation_key
from facilities.models import AdminArea, Facility
from routing.models import Category

TEXTS = [
    "Большая яма во дворе, после дождя не пройти.",
    "Не вывозят мусор уже неделю.",
    "Сломана скамейка у подъезда.",
    "Не горит фонарь, вечером темно.",
    "Двор не убран от снега, скользко.",
    "Брошенный автомобиль занимает место на парковке.",
    "На территории школы разбита дорожка.",
    "У входа в школу не убран снег.",
]
ANSWER = "Работы выполнены, спасибо за обращение."


def answers(category):
    """Plausible answers to a category's required questions (the first choice of each list)."""
    out = {}
    for attribute in category.attributes.all():
        if not (attribute.required and attribute.variable):
            continue
        first = str(attribute.values[0]["key"]) if attribute.values else ""
        out[attribute.code] = {"singlevaluelist": first, "multivaluelist": [first], "number": "1",
                               "datetime": timezone.now().isoformat()}.get(attribute.datatype, "—")
    return out


class Command(BaseCommand):
    help = "Create demo complaints (one per district and one per sample school building) when there are none."

    def handle(self, *args, **options):
        if Complaint.objects.exists():
            self.stdout.write("demo complaints: already there")
            return
        rng = random.Random(20261123)
        categories = list(Category.objects.filter(active=True).prefetch_related("attributes"))
        by_area = [c for c in categories if c.rule == "area"]
        by_school = [c for c in categories if c.code.startswith("school-")]
        places = [(p.point, rng.choice(by_area)) for p in AdminArea.objects.active().filter(level="district")
                  .annotate(point=PointOnSurface("geom")).order_by("okato")]
        if by_school:
            places += [(f.point, rng.choice(by_school)) for f in Facility.objects.active().filter(type__code="school")
                       .annotate(point=PointOnSurface("geom")).order_by("source_key")[:60]]
        dispatcher = get_user_model().objects.get(username="dispatcher")
        made = 0
        for i, (point, category) in enumerate(places):
            try:
                complaint = services.complaint_create(category=category, point=point, description=rng.choice(TEXTS),
                                                      attributes=answers(category), source="demo")
                step = i % 5  # a spread of states: assigned, in progress, answered, resolved, reopened
                if step >= 1:
                    complaint = services.complaint_take(complaint=complaint, user=dispatcher)
                if step >= 2:
                    complaint = services.complaint_answer(complaint=complaint, user=dispatcher, text=ANSWER)
                if step == 3:
                    services.complaint_confirm(tracking_code=complaint.tracking_code,
                                               key=confirmation_key(complaint))
                if step == 4:
                    services.complaint_deny(tracking_code=complaint.tracking_code, key=confirmation_key(complaint),
                                            reason="Проблема осталась.")
                made += 1
            except ComplaintError as exc:
                self.stderr.write(f"skipped a demo complaint: {exc}")
        self.stdout.write(f"demo complaints: {made} created")
