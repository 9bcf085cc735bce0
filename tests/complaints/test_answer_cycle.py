"""Issue 10's answer cycle at the service level: the new actions from every state (allowed ones move the complaint
and append their event, the others change nothing), moderation (publish and return leave the deadline alone; the
public sees an answer only once published), the confirmation window closed and reminded by set-based passes, and
volunteers' checks scoped to their districts. The expected tables are written out here, not read from the code."""
import datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from complaints.photos import clean_photo  # stored photos are re-encoded ones only
from complaints import services
from complaints.cycle import confirmations_close, confirmations_remind
from complaints.errors import ComplaintNotFound, ComplaintPermissionDenied, TransitionNotAllowed
from complaints.mails import CONFIRM_REMINDER
from complaints.models import Answer, Complaint, ComplaintEvent, Outbox, Photo, State, Volunteer, VolunteerCheck
from complaints.roles import ensure_moderators_group
from complaints.selectors import complaints_for_volunteer, overdue_q
from facilities.models import AdminArea

from .factories import image_bytes, make_user

S = State
WORKABLE = {S.ASSIGNED, S.IN_PROGRESS, S.REOPENED, S.TRANSFERRED}
CHECKABLE = {S.ANSWERED, S.RESOLVED}


@pytest.fixture
def moderator(db):
    user = make_user("t-cmp-moderator")
    user.groups.add(ensure_moderators_group())
    return user


@pytest.fixture
def moderated(category):
    category.moderate_answers = True
    category.save(update_fields=["moderate_answers"])
    return category


@pytest.fixture
def district(db):
    return AdminArea.objects.get(level="district", name="Тверской")


@pytest.fixture
def other_district(db):
    return AdminArea.objects.get(level="district", name="Арбат")


@pytest.fixture
def volunteer(district):
    user = make_user("t-cmp-volunteer")
    user.is_staff = False
    user.save(update_fields=["is_staff"])
    v = Volunteer.objects.create(user=user, approved=True)
    v.districts.add(district)
    return v


def pending(make_complaint, **fields):
    """A complaint whose answer waits for a moderator, as complaint_answer leaves it."""
    complaint = make_complaint(state=S.MODERATION, **fields)
    Answer.objects.create(complaint=complaint, department=complaint.department, text="Починили скамейку",
                          state=Answer.State.MODERATION)
    return complaint


# --- the new actions from every state ---------------------------------------------------------------------

EXPECTED = {  # action -> {from state: to state}
    "submit_answer": {s: S.MODERATION for s in WORKABLE},
    "publish": {S.MODERATION: S.ANSWERED},
    "return_answer": {S.MODERATION: S.IN_PROGRESS},
}
KINDS = {"submit_answer": "moderation", "publish": "answer", "return_answer": "returned"}
PUBLIC = {"submit_answer": False, "publish": True, "return_answer": False}


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("action", list(EXPECTED))
def test_moderation_action_from_state(action, state, make_complaint, moderated, staff, moderator):
    complaint = make_complaint(state=state)
    if action != "submit_answer":
        Answer.objects.create(complaint=complaint, department=complaint.department, text="Починили",
                              state=Answer.State.MODERATION)
    deadline = complaint.deadline
    user = staff["a"] if action == "submit_answer" else moderator

    def run():
        if action == "submit_answer":
            return services.complaint_answer(complaint=complaint, user=user, text="Починили")
        if action == "publish":
            return services.complaint_answer_publish(complaint=complaint, user=user)
        return services.complaint_answer_return(complaint=complaint, user=user, reason="Нет фото")

    if state in EXPECTED[action]:
        after = run()
        after.refresh_from_db()
        assert after.state == EXPECTED[action][state]
        assert after.deadline == deadline  # the deadline keeps running: no action of moderation touches it
        (event,) = ComplaintEvent.objects.filter(complaint=complaint)
        assert (event.kind, event.from_state, event.to_state, event.public) == (
            KINDS[action], state, after.state, PUBLIC[action])
        assert event.actor == user
    else:
        with pytest.raises(TransitionNotAllowed):
            run()
        complaint.refresh_from_db()
        assert complaint.state == state
        assert not ComplaintEvent.objects.filter(complaint=complaint).exists()


@pytest.mark.parametrize("state", list(State))
def test_window_close_from_state(state, make_complaint):
    """The scheduler's pass closes an ended window only from `answered`; every other state is left alone."""
    complaint = make_complaint(state=state, confirm_until=timezone.now() - datetime.timedelta(minutes=1))
    closed = confirmations_close()
    complaint.refresh_from_db()
    if state == S.ANSWERED:
        assert closed == 1 and complaint.state == S.RESOLVED and complaint.resolved_unconfirmed
        (event,) = ComplaintEvent.objects.filter(complaint=complaint)
        assert (event.kind, event.from_state, event.to_state, event.public, event.actor_label) == (
            "unconfirmed", S.ANSWERED, S.RESOLVED, True, "system:confirmation")
    else:
        assert closed == 0 and complaint.state == state and not complaint.resolved_unconfirmed
        assert not ComplaintEvent.objects.filter(complaint=complaint).exists()


@pytest.mark.parametrize("verdict", ["fixed", "not_fixed"])
@pytest.mark.parametrize("state", list(State))
def test_volunteer_check_from_state(state, verdict, make_complaint, volunteer, district):
    complaint = make_complaint(state=state, area=district, answered_at=timezone.now() - datetime.timedelta(days=1))

    def run():
        return services.complaint_volunteer_check(complaint_id=complaint.pk, user=volunteer.user, verdict=verdict,
                                                  note="Скамейка сломана")

    if state in CHECKABLE:
        check = run()
        complaint.refresh_from_db()
        (event,) = ComplaintEvent.objects.filter(complaint=complaint)
        assert event.actor == volunteer.user and event.actor_label == "volunteer" and event.public
        assert check.department == complaint.department and check.verdict == verdict
        if verdict == "not_fixed":
            assert complaint.state == S.REOPENED and complaint.reopen_count == 1
            assert (event.kind, event.from_state, event.to_state) == ("check_failed", state, S.REOPENED)
        else:
            assert complaint.state == state and complaint.reopen_count == 0
            assert (event.kind, event.from_state, event.to_state) == ("checked", "", "")
    else:  # outside what a volunteer may check: as if it did not exist
        with pytest.raises(ComplaintNotFound):
            run()
        complaint.refresh_from_db()
        assert complaint.state == state
        assert not ComplaintEvent.objects.filter(complaint=complaint).exists()
        assert not VolunteerCheck.objects.exists()


# --- moderation ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("setting", ["category", "authority", "none"])
def test_where_the_city_wants_moderation(setting, make_complaint, category, staff):
    complaint = make_complaint()
    if setting == "category":
        category.moderate_answers = True
        category.save()
    elif setting == "authority":
        authority = complaint.department.authority
        authority.moderate_answers = True
        authority.save()
    after = services.complaint_answer(complaint=complaint, user=staff["a"], text="Починили")
    answer = Answer.objects.get(complaint=complaint)
    if setting == "none":
        assert after.state == S.ANSWERED and answer.state == Answer.State.PUBLISHED
        assert after.answered_at is not None and after.confirm_until is not None
    else:
        assert after.state == S.MODERATION and answer.state == Answer.State.MODERATION
        assert after.answered_at is None and after.confirm_until is None


def test_publish_opens_the_window_and_keeps_the_deadline(make_complaint, moderator, category):
    category.confirm_days = 10
    category.save()
    complaint = pending(make_complaint)
    deadline = complaint.deadline
    after = services.complaint_answer_publish(complaint=complaint, user=moderator)
    after.refresh_from_db()
    answer = Answer.objects.get(complaint=complaint)
    assert answer.state == Answer.State.PUBLISHED and answer.moderated_by == moderator
    assert after.deadline == deadline
    assert after.confirm_until - after.answered_at == datetime.timedelta(days=10)
    event = ComplaintEvent.objects.get(complaint=complaint)
    assert event.public and event.reason == "Починили скамейку"  # the public answer's line carries its text


def test_return_keeps_the_deadline_and_the_department_answers_again(make_complaint, moderator, staff, moderated):
    complaint = pending(make_complaint, deadline=timezone.now() - datetime.timedelta(hours=2))
    deadline = complaint.deadline
    services.complaint_answer_return(complaint=complaint, user=moderator, reason="Нет фото результата")
    complaint.refresh_from_db()
    assert complaint.state == S.IN_PROGRESS and complaint.deadline == deadline
    answer = Answer.objects.get(complaint=complaint)
    assert answer.state == Answer.State.RETURNED and answer.return_reason == "Нет фото результата"
    assert Complaint.objects.filter(overdue_q(), pk=complaint.pk).exists()  # still past its deadline
    services.complaint_answer(complaint=complaint, user=staff["a"], text="Вот фото")
    complaint.refresh_from_db()
    assert complaint.state == S.MODERATION and complaint.deadline == deadline
    assert Complaint.objects.filter(overdue_q(), pk=complaint.pk).exists()  # moderation's time counts


@pytest.mark.parametrize("who", ["a", "dispatcher", "b"])
def test_only_moderators_moderate(who, make_complaint, staff):
    complaint = pending(make_complaint)
    with pytest.raises(ComplaintPermissionDenied):
        services.complaint_answer_publish(complaint=complaint, user=staff[who])
    with pytest.raises(ComplaintPermissionDenied):
        services.complaint_answer_return(complaint=complaint, user=staff[who], reason="нет")
    complaint.refresh_from_db()
    assert complaint.state == S.MODERATION and not ComplaintEvent.objects.filter(complaint=complaint).exists()


@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
def test_a_return_needs_a_reason(reason, make_complaint, moderator):
    complaint = pending(make_complaint)
    with pytest.raises(services.ComplaintError):
        services.complaint_answer_return(complaint=complaint, user=moderator, reason=reason)
    complaint.refresh_from_db()
    assert complaint.state == S.MODERATION


def test_the_public_sees_an_answer_only_once_published(make_complaint, moderator, media):
    complaint = pending(make_complaint)
    answer = Answer.objects.get(complaint=complaint)
    photo = Photo.objects.create(complaint=complaint, answer=answer, content_type="image/png", width=1, height=1,
                                 file=clean_photo(SimpleUploadedFile("a.png", image_bytes("PNG"))))
    client = Client()
    page = client.get(f"/c/{complaint.tracking_code}/").content.decode()
    assert "Починили скамейку" not in page
    assert client.get(f"/photos/{photo.pk}/").status_code == 404
    services.complaint_answer_publish(complaint=complaint, user=moderator)
    page = client.get(f"/c/{complaint.tracking_code}/").content.decode()
    assert "Починили скамейку" in page
    assert client.get(f"/photos/{photo.pk}/").status_code == 200


# --- the confirmation window ------------------------------------------------------------------------------

def test_the_window_closes_once_and_only_when_ended(make_complaint):
    now = timezone.now()
    ended = make_complaint(state=S.ANSWERED, confirm_until=now - datetime.timedelta(seconds=1))
    running = make_complaint(state=S.ANSWERED, confirm_until=now + datetime.timedelta(hours=1))
    assert confirmations_close() == 1
    assert confirmations_close() == 0  # idempotent
    ended.refresh_from_db()
    running.refresh_from_db()
    assert ended.state == S.RESOLVED and ended.resolved_unconfirmed and ended.resolved_at is not None
    assert running.state == S.ANSWERED
    assert ComplaintEvent.objects.filter(complaint=ended).count() == 1


def test_a_confirmed_fix_is_not_unconfirmed(make_complaint):
    from complaints.tracking import confirmation_key

    complaint = make_complaint(state=S.ANSWERED, confirm_until=timezone.now() + datetime.timedelta(days=1))
    services.complaint_confirm(tracking_code=complaint.tracking_code, key=confirmation_key(complaint))
    Complaint.objects.filter(pk=complaint.pk).update(confirm_until=timezone.now() - datetime.timedelta(days=1))
    assert confirmations_close() == 0
    complaint.refresh_from_db()
    assert complaint.state == S.RESOLVED and not complaint.resolved_unconfirmed


@pytest.mark.parametrize("case,due", [
    ("ends within the reminder days", True),
    ("ends later", False),
    ("ended", False),
    ("no address", False),
    ("not answered", False),
    ("already reminded", False),
])
def test_reminders_are_written_once_for_due_windows(case, due, make_complaint, settings):
    settings.CONFIRM_REMINDER_DAYS = 3
    now = timezone.now()
    fields = {"state": S.ANSWERED, "email": "resident@example.org", "confirm_until": now + datetime.timedelta(days=2)}
    if case == "ends later":
        fields["confirm_until"] = now + datetime.timedelta(days=5)
    elif case == "ended":
        fields["confirm_until"] = now - datetime.timedelta(minutes=1)
    elif case == "no address":
        fields["email"] = ""
    elif case == "not answered":
        fields["state"] = S.IN_PROGRESS
    elif case == "already reminded":
        fields["confirm_reminded_at"] = now - datetime.timedelta(hours=1)
    complaint = make_complaint(**fields)
    assert confirmations_remind() == int(due)
    assert confirmations_remind() == 0  # idempotent
    mails = Outbox.objects.filter(complaint=complaint, kind=CONFIRM_REMINDER)
    assert mails.count() == int(due)
    if due:
        assert mails.get().recipient == "resident@example.org"


@pytest.mark.parametrize("language", ["ru", "en"])
def test_a_due_reminder_is_sent_in_its_language_with_the_link(language, make_complaint, mailoutbox):
    from complaints.outbox import outbox_send

    complaint = make_complaint(state=S.ANSWERED, email="resident@example.org",
                               confirm_until=timezone.now() + datetime.timedelta(days=1))
    confirmations_remind()
    entry = Outbox.objects.get(complaint=complaint, kind=CONFIRM_REMINDER)
    Outbox.objects.filter(pk=entry.pk).update(language=language)
    assert outbox_send(entry.pk) == "sent"
    mail = mailoutbox[-1]
    assert mail.to == ["resident@example.org"] and f"/c/{complaint.tracking_code}/" in mail.body
    assert complaint.category.name_i18n[language] in mail.body


def test_a_reminder_no_longer_due_is_cancelled(make_complaint):
    from complaints.outbox import outbox_send
    from complaints.tracking import confirmation_key

    complaint = make_complaint(state=S.ANSWERED, email="resident@example.org",
                               confirm_until=timezone.now() + datetime.timedelta(days=1))
    confirmations_remind()
    services.complaint_confirm(tracking_code=complaint.tracking_code, key=confirmation_key(complaint))
    entry = Outbox.objects.get(complaint=complaint, kind=CONFIRM_REMINDER)
    assert outbox_send(entry.pk) == "cancelled"


# --- volunteers ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["other district", "not approved", "answered long ago", "no district", "revoked"])
def test_volunteers_see_only_their_districts_recent_answers(case, make_complaint, volunteer, district,
                                                            other_district, settings):
    settings.VOLUNTEER_RECENT_DAYS = 30
    fields = {"state": S.ANSWERED, "area": district, "answered_at": timezone.now() - datetime.timedelta(days=2)}
    if case == "other district":
        fields["area"] = other_district
    elif case == "answered long ago":
        fields["answered_at"] = timezone.now() - datetime.timedelta(days=31)
    elif case == "no district":
        fields["area"] = None
    elif case in ("not approved", "revoked"):
        Volunteer.objects.filter(pk=volunteer.pk).update(approved=False)
    complaint = make_complaint(**fields)
    visible = make_complaint(state=S.ANSWERED, area=district, answered_at=timezone.now())
    ids = set(complaints_for_volunteer(volunteer.user).values_list("pk", flat=True))
    assert complaint.pk not in ids
    assert (visible.pk in ids) == (case not in ("not approved", "revoked"))
    with pytest.raises(ComplaintNotFound):
        services.complaint_volunteer_check(complaint_id=complaint.pk, user=volunteer.user, verdict="not_fixed",
                                           note="нет")
    complaint.refresh_from_db()
    assert complaint.state == S.ANSWERED and not VolunteerCheck.objects.filter(complaint=complaint).exists()


@pytest.mark.parametrize("verdict,note", [("", "x"), ("maybe", "x"), ("not_fixed", ""), ("not_fixed", "   ")])
def test_a_check_needs_a_verdict_and_a_failed_one_a_note(verdict, note, make_complaint, volunteer, district):
    complaint = make_complaint(state=S.RESOLVED, area=district, answered_at=timezone.now())
    with pytest.raises(services.ComplaintError):
        services.complaint_volunteer_check(complaint_id=complaint.pk, user=volunteer.user, verdict=verdict,
                                           note=note)
    complaint.refresh_from_db()
    assert complaint.state == S.RESOLVED and not VolunteerCheck.objects.exists()


def test_a_failed_check_of_a_resolved_complaint_reopens_it_to_its_department(make_complaint, volunteer, district):
    complaint = make_complaint(state=S.RESOLVED, area=district, answered_at=timezone.now(),
                               resolved_at=timezone.now(), resolved_unconfirmed=True)
    department = complaint.department
    services.complaint_volunteer_check(complaint_id=complaint.pk, user=volunteer.user, verdict="not_fixed",
                                       note="Яма на месте")
    complaint.refresh_from_db()
    assert complaint.state == S.REOPENED and complaint.department == department
    assert complaint.resolved_at is None and not complaint.resolved_unconfirmed
    assert VolunteerCheck.objects.get().department == department
