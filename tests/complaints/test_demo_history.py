"""The demo city's year of history (manage.py load_demo_complaints, issue 11 §5), run small on the test city: filed
over the year at different times (not in one minute), through the services with back-dated times that keep the
history's order, texts that fit their categories, answers on time and late, hand-ons with reasons, disputes and
confirmations, open and overdue ones; every demo department login has tickets of its own; the planted registry errors
come to the data-staff queue; the same seed draws the same history."""
import datetime
import io

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from complaints.management.commands.load_demo_complaints import HISTORY_FILE, History
from complaints.models import Complaint, ComplaintEvent, State
from complaints.selectors import tickets_for_user
from staff.corrections import corrections_find
from staff.models import RegistryCorrection

pytestmark = pytest.mark.django_db

PLAN = yaml.safe_load(HISTORY_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def history(django_db_setup, django_db_blocker):
    """The command, once for the module, in a transaction rolled back at the end."""
    from django.db import transaction

    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            before = timezone.now()
            out = io.StringIO()
            call_command("load_demo_complaints", "--count", "90", "--jobs", "1", "--seed", "7", stdout=out)
            yield {"out": out.getvalue(), "before": before, "after": timezone.now()}
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def test_a_year_of_complaints_not_one_minute(history):
    complaints = list(Complaint.objects.all())
    assert len(complaints) >= 90 and "demo complaints:" in history["out"]
    times = sorted(c.submitted_at for c in complaints)
    assert times[0] < history["before"] - datetime.timedelta(days=250)
    assert times[-1] > history["before"] - datetime.timedelta(days=30) and times[-1] <= history["after"]
    assert len({t.replace(second=0, microsecond=0) for t in times}) > 0.9 * len(times)
    assert len({t.month for t in times}) == 12


def test_the_history_is_back_dated_in_order(history):
    for c in Complaint.objects.all():
        events = list(ComplaintEvent.objects.filter(complaint=c).order_by("id"))
        stamps = [e.at for e in events]
        assert stamps == sorted(stamps) and stamps[0] == c.submitted_at and stamps[-1] <= history["after"], c.pk
        assert c.deadline > c.submitted_at
        for answer in c.answers.all():
            assert c.submitted_at < answer.created_at <= history["after"]


def test_texts_fit_their_categories(history):
    for c in Complaint.objects.select_related("category"):
        problems = PLAN["categories"][c.category.code]["problems"]
        assert any(p in c.description for p in problems), (c.category.code, c.description)


def test_answers_on_time_and_late_hand_ons_disputes_confirmations_and_open_ones(history):
    answered = Complaint.objects.filter(answered_at__isnull=False)
    late = [c for c in answered if c.answered_at > c.deadline]
    assert late and len(late) < answered.count()
    transfers = ComplaintEvent.objects.filter(kind=ComplaintEvent.Kind.TRANSFER)
    assert transfers.exists() and all(t.reason for t in transfers)
    assert ComplaintEvent.objects.filter(kind=ComplaintEvent.Kind.REOPENED).exists()
    assert Complaint.objects.filter(state=State.RESOLVED, resolved_at__isnull=False).exists()
    open_ones = Complaint.objects.filter(state__in=[State.ASSIGNED, State.IN_PROGRESS, State.REOPENED,
                                                    State.TRANSFERRED])
    assert open_ones.filter(deadline__lt=timezone.now()).exists()  # overdue
    assert open_ones.filter(deadline__gte=timezone.now()).exists()


@pytest.mark.parametrize("login", ["council", "school", "hospital"])
def test_every_demo_department_login_has_tickets_of_its_own(history, login):
    user = get_user_model().objects.get(username=login)
    assert tickets_for_user(user).exists()


def test_the_planted_registry_errors_come_to_the_queue(history):
    corrections_find()
    assert RegistryCorrection.objects.filter(kind="facility", state="pending").count() >= 1


def test_the_same_seed_draws_the_same_history(db):
    now = timezone.now()

    def draw(seed):
        return History(PLAN, seed=seed, days=365, now=now, out=io.StringIO()).draw(200)

    first = draw(11)
    assert first == draw(11) and first != draw(12)
    assert len({code for _, code, *_ in first}) > 10


def test_a_second_run_changes_nothing(history):
    before = Complaint.objects.count()
    out = io.StringIO()
    call_command("load_demo_complaints", "--jobs", "1", stdout=out)
    assert "already there" in out.getvalue() and Complaint.objects.count() == before


@pytest.mark.parametrize("args", [["--count", "0"], ["--days", "0"], ["--days", "99999"],
                                  ["--file", "/nonexistent.yaml"]])
def test_bad_arguments_are_one_clear_line(db, args):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("load_demo_complaints", "--jobs", "1", *args)
