"""The demo's synthetic complaints: made through the services, a spread of states, once."""
import pytest
from django.core.management import call_command
from django.db.models import Count

from complaints.models import Complaint, ComplaintEvent

pytestmark = pytest.mark.django_db


def test_demo_complaints_cover_the_districts_in_every_working_state(capsys):
    call_command("load_demo_complaints")
    assert "created" in capsys.readouterr().out
    states = dict(Complaint.objects.values_list("state").annotate(n=Count("id")))
    assert set(states) == {"assigned", "in_progress", "answered", "resolved", "reopened"}
    assert Complaint.objects.count() >= 146
    assert Complaint.objects.values("area").distinct().count() == 146
    # every one went through complaint_create: created and routed, with a decision
    assert ComplaintEvent.objects.filter(kind="created").count() == Complaint.objects.count()
    assert not Complaint.objects.filter(decision__isnull=True).exists()
    call_command("load_demo_complaints")
    assert "already there" in capsys.readouterr().out
