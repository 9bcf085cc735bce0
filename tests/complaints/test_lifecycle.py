"""The complaint lifecycle end to end: history, answers with photos, hand-overs, duplicates, moderation."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from complaints import services
from complaints.errors import ComplaintError, ComplaintNotFound, TransitionNotAllowed
from complaints.models import Answer, ComplaintEvent, Photo, State
from complaints.tracking import confirmation_key
from complaints.selectors import complaint_by_tracking_code, complaint_history, complaints_public
from routing.models import RoutingDecision

from .factories import MOSCOW, image_bytes


def history(complaint):
    return [(e.kind, e.from_state, e.to_state, e.actor_label) for e in complaint_history(complaint)]


def test_full_history_with_a_denied_answer(make_complaint, staff, media):
    complaint = make_complaint()
    a = staff["a"]
    services.complaint_take(complaint=complaint, user=a)
    photo = SimpleUploadedFile("after.jpg", image_bytes("JPEG"), content_type="image/jpeg")
    services.complaint_answer(complaint=complaint, user=a, text="The bench is repaired.", photo=photo)
    services.complaint_deny(tracking_code=complaint.tracking_code, key=confirmation_key(complaint),
                            reason="It is still broken")
    services.complaint_take(complaint=complaint, user=a)
    services.complaint_answer(complaint=complaint, user=a, text="Replaced the whole bench.")
    done = services.complaint_confirm(tracking_code=complaint.tracking_code.lower().replace("-", " "),
                                      key=confirmation_key(complaint).lower())

    assert history(complaint) == [
        ("state", "assigned", "in_progress", a.username),
        ("answer", "in_progress", "answered", a.username),
        ("reopened", "answered", "reopened", "resident"),
        ("state", "reopened", "in_progress", a.username),
        ("answer", "in_progress", "answered", a.username),
        ("confirmed", "answered", "resolved", "resident"),
    ]
    events = list(complaint_history(complaint))
    assert all(e.at for e in events) and [e.at for e in events] == sorted(e.at for e in events)
    assert [e.actor for e in events] == [a, a, None, a, a, None]
    assert events[2].reason == "It is still broken"

    done.refresh_from_db()
    assert (done.state, done.reopen_count, done.department) == (State.RESOLVED, 1, complaint.department)
    assert done.answered_at and done.resolved_at
    answers = list(Answer.objects.filter(complaint=complaint))
    assert [x.text for x in answers] == ["The bench is repaired.", "Replaced the whole bench."]
    (stored,) = Photo.objects.filter(complaint=complaint)
    assert stored.answer == answers[0] and stored.content_type == "image/jpeg"
    path = media / stored.file.name
    assert path.is_file() and not Image.open(path).getexif()


def test_answer_and_reasons_must_not_be_empty(make_complaint, staff):
    complaint = make_complaint()
    with pytest.raises(ComplaintError, match="text"):
        services.complaint_answer(complaint=complaint, user=staff["a"], text="   ")
    with pytest.raises(ComplaintError, match="reason"):
        services.complaint_transfer(complaint=complaint, user=staff["a"], reason="")
    with pytest.raises(ComplaintError, match="reason"):
        services.complaint_hide(complaint=complaint, user=staff["a"], reason="")
    assert not ComplaintEvent.objects.filter(complaint=complaint).exists()


def test_answer_with_a_non_image_stores_nothing(make_complaint, staff, media):
    complaint = make_complaint(state=State.IN_PROGRESS)
    fake = SimpleUploadedFile("after.jpg", b"not an image", content_type="image/jpeg")
    with pytest.raises(ComplaintError, match="JPEG"):
        services.complaint_answer(complaint=complaint, user=staff["a"], text="Done", photo=fake)
    complaint.refresh_from_db()
    assert complaint.state == State.IN_PROGRESS and not Answer.objects.exists() and not Photo.objects.exists()


def test_transfer_to_a_named_department(make_complaint, staff, departments):
    complaint = make_complaint(state=State.IN_PROGRESS)
    moved = services.complaint_transfer(complaint=complaint, user=staff["a"], reason="The school owns this fence",
                                        department=departments["b"])
    assert (moved.state, moved.department) == (State.TRANSFERRED, departments["b"])
    decision = moved.decision
    assert decision.rule == RoutingDecision.Rule.MANUAL and decision.department == departments["b"]
    assert "The school owns this fence" in decision.explanation_en and "TA-b" in decision.explanation_en
    (event,) = complaint_history(complaint)
    assert (event.kind, event.from_department, event.to_department, event.decision) == (
        "transfer", departments["a"], departments["b"], decision)
    assert event.reason == "The school owns this fence" and event.public

    # Now it is department b's: a may no longer act, b may.
    with pytest.raises(services.ComplaintPermissionDenied):
        services.complaint_take(complaint=complaint, user=staff["a"])
    assert services.complaint_take(complaint=complaint, user=staff["b"]).state == State.IN_PROGRESS


def test_transfer_to_the_same_department_is_refused(make_complaint, staff, departments):
    complaint = make_complaint()
    with pytest.raises(ComplaintError, match="already"):
        services.complaint_transfer(complaint=complaint, user=staff["a"], reason="x", department=departments["a"])
    assert not ComplaintEvent.objects.filter(complaint=complaint).exists()


def test_transfer_without_a_department_is_rerouted(category, staff):
    """The engine sends it back to the same district council: it goes to city triage; from triage, the engine's
    answer (the council) is taken."""
    decisions_before = RoutingDecision.objects.count()
    complaint = services.complaint_create(category=category, point=MOSCOW, description="Broken swing")
    council = complaint.department
    assert not council.is_triage
    dispatcher = staff["dispatcher"]

    at_triage = services.complaint_transfer(complaint=complaint, user=dispatcher, reason="Not a yard matter")
    assert at_triage.department.is_triage and at_triage.state == State.TRANSFERRED
    assert at_triage.decision.rule == RoutingDecision.Rule.MANUAL

    back = services.complaint_transfer(complaint=complaint, user=dispatcher, reason="It is a yard matter")
    assert back.department == council and back.decision.rule == RoutingDecision.Rule.AREA
    moves = [(e.from_department, e.to_department) for e in complaint_history(complaint) if e.kind == "transfer"]
    assert moves == [(council, at_triage.department), (at_triage.department, council)]
    # Only decisions that the complaint used are kept: created, the hand-over to triage, the way back.
    assert RoutingDecision.objects.count() == decisions_before + 3


def test_mark_duplicate_points_at_the_original(make_complaint, staff):
    original, first, second = make_complaint(), make_complaint(), make_complaint()
    services.complaint_mark_duplicate(complaint=first, user=staff["a"], of=original)
    marked = services.complaint_mark_duplicate(complaint=second, user=staff["a"], of=first)
    assert (marked.state, marked.duplicate_of) == (State.DUPLICATE, original)
    (event,) = complaint_history(second)
    assert event.kind == "duplicate" and event.reason == f"#{original.pk}"
    assert original.tracking_code not in event.reason  # the code is the original resident's key


def test_mark_duplicate_refuses_cycles_and_hidden_originals(make_complaint, staff):
    x, y = make_complaint(), make_complaint()
    with pytest.raises(ComplaintError, match="itself"):
        services.complaint_mark_duplicate(complaint=x, user=staff["a"], of=x)
    services.complaint_mark_duplicate(complaint=x, user=staff["a"], of=y)
    x.refresh_from_db()
    with pytest.raises(ComplaintError):  # y -> x would close the circle: x is y's duplicate
        services.complaint_mark_duplicate(complaint=y, user=staff["a"], of=x)
    hidden = make_complaint(state=State.HIDDEN)
    with pytest.raises(TransitionNotAllowed, match="original"):
        services.complaint_mark_duplicate(complaint=y, user=staff["a"], of=hidden)
    y.refresh_from_db()
    assert y.state == State.ASSIGNED


def test_hidden_complaints_leave_the_public_view(make_complaint, staff):
    complaint = make_complaint()
    code = complaint.tracking_code
    assert complaint_by_tracking_code(code) == complaint
    services.complaint_hide(complaint=complaint, user=staff["a"], reason="Personal data in the text")
    assert not complaints_public().filter(pk=complaint.pk).exists()
    assert complaint_by_tracking_code(code) is None
    (event,) = complaint_history(complaint)
    assert not event.public and list(complaint_history(complaint, public_only=True)) == []


def test_tracking_code_lookups(make_complaint):
    complaint = make_complaint()
    code = complaint.tracking_code
    for typed in (code, code.lower(), code.replace("-", ""), " " + code.replace("-", " ").lower() + " "):
        assert complaint_by_tracking_code(typed) == complaint
    assert complaint_by_tracking_code("ZZZZ-ZZZZ-ZZZZ") is None
    assert complaint_by_tracking_code("nonsense") is None
    with pytest.raises(ComplaintNotFound):
        services.complaint_confirm(tracking_code="ZZZZ-ZZZZ-ZZZZ", key="")
    with pytest.raises(ComplaintNotFound):
        services.complaint_deny(tracking_code="", key="")
