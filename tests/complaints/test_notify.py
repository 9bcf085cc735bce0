"""Hearing back, on the complaints side (complaints.notify): each public change writes one `event` outbox row per
address (the reporter, active followers; once each; not pending or unsubscribed addresses), from the history's
one trigger, whatever wrote the event (a service, a bulk INSERT, a kind this module has never heard of); a
duplicate's reporter and followers follow the original; the mails say what changed, in the row's language, and
their headers stay one line whatever the data holds. (Sending over real SMTP through a worker:
tests/queue/test_event_mails.py.)"""
import email
import email.policy

import pytest
from django.db import connection
from django.utils import translation

from complaints.models import ComplaintEvent, Follow, Outbox, State, Subscription
from complaints.notify import EVENT, unsubscribe, unsubscribe_token
from complaints.outbox import _kinds
from complaints.services import (complaint_answer, complaint_confirm, complaint_deny, complaint_mark_duplicate,
                                 complaint_take, complaint_transfer)
from complaints.tracking import confirmation_key

pytestmark = pytest.mark.django_db


def render(entry):
    with translation.override(entry.language or "ru"):
        return _kinds()[entry.kind](entry)


def event_rows(complaint):
    return list(Outbox.objects.filter(kind=EVENT, complaint=complaint).order_by("id"))


def follow(complaint, email, state=Subscription.ACTIVE, language="en"):
    return Follow.objects.create(complaint=complaint, email=email, state=state, language=language)


@pytest.fixture
def reported(make_complaint):
    return make_complaint(email="Reporter@Example.org", language="ru")


def test_each_public_change_is_one_mail_per_address(reported, staff, departments):
    follow(reported, "fan@example.org")
    follow(reported, "reporter@example.org")  # the reporter follows too: still one mail for that address
    follow(reported, "pending@example.org", Subscription.PENDING)  # not confirmed: nothing
    follow(reported, "gone@example.org", Subscription.STOPPED)  # unsubscribed: nothing
    complaint_take(complaint=reported, user=staff["a"])
    rows = event_rows(reported)
    assert sorted(r.recipient for r in rows) == ["fan@example.org", "reporter@example.org"]
    assert {r.context["reporter"] for r in rows if r.recipient == "reporter@example.org"} == {True}
    assert {r.language for r in rows} == {"ru", "en"}
    complaint_transfer(complaint=reported, user=staff["a"], reason="не наш двор", department=departments["b"])
    assert len(event_rows(reported)) == 4
    # Staff-only lines are not mailed (a hiding's reason is not public).
    ComplaintEvent.objects.create(complaint=reported, kind="state", actor_label="t", public=False)
    assert len(event_rows(reported)) == 4


def test_filing_writes_no_event_mail(report_in_city):
    complaint = report_in_city(email="new@example.org")
    assert event_rows(complaint) == []
    assert Outbox.objects.filter(complaint=complaint).values_list("kind", flat=True).get() == "tracking"


@pytest.fixture
def report_in_city(db):
    from complaints.services import complaint_create
    from routing.models import Category

    from .factories import MOSCOW

    def make(**fields):
        return complaint_create(category=Category.objects.get(code="yard-rubbish"), point=MOSCOW,
                                description="Мусор", **fields)

    return make


def test_the_whole_cycle_is_mailed_with_what_changed(reported, staff, departments):
    fan = follow(reported, "fan@example.org", language="en")
    complaint_take(complaint=reported, user=staff["a"])
    complaint_answer(complaint=reported, user=staff["a"], text="Убрали мусор во дворе")
    complaint_deny(tracking_code=reported.tracking_code, key=confirmation_key(reported), reason="Не убрали")
    complaint_answer(complaint=reported, user=staff["a"], text="Теперь убрали")
    complaint_confirm(tracking_code=reported.tracking_code, key=confirmation_key(reported))
    mails = {(r.recipient, r.context["event"]): render(r) for r in event_rows(reported)}
    assert len(mails) == 2 * 5
    fan_bodies = [m.body for (to, _e), m in sorted(mails.items()) if to == fan.email]
    assert "has taken it into work" in fan_bodies[0]
    assert "has answered it" in fan_bodies[1] and "Убрали мусор во дворе" in fan_bodies[1]
    assert "reopened" in fan_bodies[2] and "Не убрали" in fan_bodies[2]
    assert "It is resolved." in fan_bodies[4]
    reporter_bodies = [m.body for (to, _e), m in sorted(mails.items()) if to == "reporter@example.org"]
    assert "ответ" in reporter_bodies[1].lower() and "Убрали мусор во дворе" in reporter_bodies[1]  # in Russian
    for (to, _e), message in mails.items():
        assert message.to == [to]
        assert "/unsubscribe/" in message.body and message.extra_headers["List-Unsubscribe"].startswith("<http")
        # A follower's link is the public page by number: the tracking code is the reporter's alone.
        assert (reported.tracking_code in message.body) == (to == "reporter@example.org")
        assert f"/n/{reported.pk}/" in message.body or to == "reporter@example.org"


def test_links_point_at_the_site_url(reported, staff, settings):
    settings.SITE_URL = "http://city.example:8123"
    follow(reported, "fan@example.org")
    complaint_take(complaint=reported, user=staff["a"])
    for row in event_rows(reported):
        body = render(row).body
        links = [w for w in body.split() if "://" in w]
        assert links and all(w.startswith("http://city.example:8123/") for w in links)


@pytest.mark.parametrize("kind", ["moderation", "disputed", "volunteer_check", "x" * 16])
def test_a_kind_of_change_added_elsewhere_is_mailed_by_the_fallback(reported, kind):
    """Kinds that other modules write (moderation, a dispute window, volunteer checks) need no code here."""
    ComplaintEvent.objects.create(complaint=reported, kind=kind, actor_label="system:other", from_state="answered",
                                  to_state="reopened", reason="причина <b>видна</b>")
    [row] = event_rows(reported)
    message = render(row)
    assert "reopened" in message.subject or "открыт" in message.subject.lower()
    assert "причина <b>видна</b>" in message.body


def test_a_bulk_insert_of_events_is_one_statement_of_mails(make_complaint, django_assert_max_num_queries):
    complaints = [make_complaint(email=f"r{i}@example.org") for i in range(30)]
    with django_assert_max_num_queries(1):
        ComplaintEvent.objects.bulk_create([ComplaintEvent(complaint=c, kind="routed", actor_label="system:reroute",
                                                           reason="moved") for c in complaints])
    assert Outbox.objects.filter(kind=EVENT).count() == 30


def test_a_reroute_writes_its_mails_in_its_own_statements(django_assert_max_num_queries):
    from complaints.services import complaints_reroute
    from facilities.models import Facility
    from tests.routing.conftest import make_complaint as routed_complaint
    from tests.routing.test_reroute import inside, two_schools

    school, other = two_schools()
    moving = [routed_complaint(inside(school), "school-territory") for _ in range(40)]
    from complaints.models import Complaint

    Complaint.objects.filter(pk__in=[c.pk for c in moving]).update(email="parent@example.org")
    Facility.objects.filter(pk=school.pk).update(owner=other.owner)
    with django_assert_max_num_queries(15):  # as many statements as without mails (tests/routing)
        assert complaints_reroute().moved == 40
    assert Outbox.objects.filter(kind=EVENT, complaint__in=moving).count() == 40


def test_an_unsubscribed_reporter_is_not_mailed_and_a_queued_mail_is_cancelled(reported, staff):
    complaint_take(complaint=reported, user=staff["a"])
    [queued] = event_rows(reported)
    assert unsubscribe(unsubscribe_token(complaint_id=reported.pk, email="REPORTER@example.org")) == \
        ("complaint", reported.pk)
    assert render(queued) is None  # no longer due: the outbox cancels it
    complaint_answer(complaint=reported, user=staff["a"], text="Готово")
    assert len(event_rows(reported)) == 1


def test_a_duplicates_reporter_and_followers_follow_the_original_and_are_told(make_complaint, staff):
    original = make_complaint()
    duplicate = make_complaint(email="second@example.org", language="en")
    follow(duplicate, "fan@example.org")
    follow(duplicate, "waiting@example.org", Subscription.PENDING)
    follow(original, "gone@example.org", Subscription.STOPPED)
    follow(duplicate, "gone@example.org")  # unsubscribed from the original: stays so
    complaint_mark_duplicate(complaint=duplicate, user=staff["a"], of=original)
    told = {r.recipient: render(r) for r in event_rows(duplicate)}
    assert set(told) == {"second@example.org", "fan@example.org", "gone@example.org"}
    for message in told.values():
        assert f"No. {original.pk}" in message.body and f"/n/{original.pk}/" in message.body
    active = set(Follow.objects.filter(complaint=original, state=Subscription.ACTIVE).values_list("email", flat=True))
    assert active == {"second@example.org", "fan@example.org"}
    assert Follow.objects.get(complaint=original, email="gone@example.org").state == Subscription.STOPPED
    complaint_take(complaint=original, user=staff["a"])  # the original's next change reaches them
    assert {r.recipient for r in event_rows(original)} == {"second@example.org", "fan@example.org"}


@pytest.mark.parametrize("name", ["Отдел\r\nBcc: victim@example.org", "Dept\nSubject: spoofed", "Dept\u2028X: y",
                                  "Dept\x85Bcc: v@example.org"])
def test_headers_stay_one_line_whatever_the_data_holds(make_complaint, staff, departments, name):
    departments["a"].name = name
    departments["a"].save()
    complaint = make_complaint(email="r@example.org")
    complaint_take(complaint=complaint, user=staff["a"])
    [row] = event_rows(complaint)
    parsed = email.message_from_string(render(row).message().as_string(), policy=email.policy.default)
    assert sorted(parsed.keys()) == sorted(["Content-Type", "MIME-Version", "Content-Transfer-Encoding", "Subject",
                                            "From", "To", "Date", "Message-ID", "List-Unsubscribe",
                                            "List-Unsubscribe-Post"])
    assert parsed["To"] == "r@example.org" and "\n" not in str(parsed["Subject"])
    assert str(parsed["Subject"]).strip().startswith(f"Обращение № {complaint.pk}: ")  # the city’s language


def test_a_hidden_complaints_queued_mails_are_cancelled(reported, staff):
    from complaints.services import complaint_hide

    complaint_take(complaint=reported, user=staff["a"])
    [queued] = event_rows(reported)
    complaint_hide(complaint=reported, user=staff["admin"], reason="оскорбления")
    queued.refresh_from_db()
    assert render(queued) is None
    assert len(event_rows(reported)) == 1  # the hiding itself is not public, so not mailed


def test_the_trigger_is_in_place():
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_trigger WHERE tgname = 'complaints_event_mails'")
        assert cur.fetchone()[0] == 1
    assert State.HIDDEN == "hidden"
