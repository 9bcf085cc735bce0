"""The complaints' clock (complaints.clock): the real time unless a back-dated history is written inside
clock.at(); the services' history lines, answers and filing times follow it, and leave it as they found it."""
import datetime

import pytest
from django.utils import timezone

from complaints import clock
from complaints.models import ComplaintEvent
from complaints.services import complaint_answer, complaint_create, complaint_take
from routing.models import Category
from tests.complaints.factories import MOSCOW, make_user
from tests.staff.corrections_helpers import answers


def test_outside_at_it_is_the_real_time():
    before = timezone.now()
    assert before <= clock.now() <= timezone.now()


@pytest.mark.parametrize("moment", [None, datetime.datetime(2026, 1, 5, 10, 0)], ids=["none", "naive"])
def test_at_wants_an_aware_moment(moment):
    with pytest.raises(ValueError):
        with clock.at(moment):
            pass


def test_at_nests_and_restores():
    a = timezone.now() - datetime.timedelta(days=30)
    b = a + datetime.timedelta(days=1)
    with clock.at(a):
        assert clock.now() == a
        with clock.at(b):
            assert clock.now() == b
        assert clock.now() == a
    assert clock.now() > b


@pytest.mark.django_db
def test_the_services_write_their_history_at_the_clock():
    category = Category.objects.get(code="yard-rubbish")
    filed = timezone.now() - datetime.timedelta(days=40)
    with clock.at(filed):
        c = complaint_create(category=category, point=MOSCOW, description="Мусор во дворе",
                             attributes=answers(category, filed))
    assert c.submitted_at == filed and c.deadline > filed
    user = make_user("t-clock", superuser=True)
    taken, answered = filed + datetime.timedelta(hours=5), filed + datetime.timedelta(days=2)
    with clock.at(taken):
        complaint_take(complaint=c, user=user)
    with clock.at(answered):
        c = complaint_answer(complaint=c, user=user, text="Убрано")
    assert c.answered_at == answered and c.answers.get().created_at == answered
    stamps = list(ComplaintEvent.objects.filter(complaint=c).order_by("id").values_list("at", flat=True))
    assert stamps == [filed, filed, taken, answered]
    c2 = complaint_create(category=category, point=MOSCOW, description="Мусор", attributes=answers(category, filed))
    assert c2.submitted_at > answered + datetime.timedelta(days=30)  # outside at(): now
