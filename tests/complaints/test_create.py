"""complaint_create on the demo city: validated, routed once, `assigned` with its history, deadline and codes."""
import re
import uuid
import zoneinfo
from datetime import date, datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from PIL import Image

from complaints import services
from complaints.errors import ComplaintError, OutsideCityError
from complaints.models import Complaint, ComplaintEvent, Photo, State
from complaints.selectors import complaint_by_tracking_code
from routing import deadlines
from routing.deadlines import add_working_days
from routing.models import Holiday, RoutingDecision

from .factories import MOSCOW, image_bytes


def stored_rows():
    return Complaint.objects.count(), ComplaintEvent.objects.count(), RoutingDecision.objects.count()


def test_create_routes_once_and_records_history(category):
    complaint = services.complaint_create(category=category, point=MOSCOW, description=" Broken swing ",
                                          email="r@example.org", address_string="Tverskaya 1")
    complaint.refresh_from_db()
    assert complaint.state == State.ASSIGNED
    assert complaint.description == "Broken swing" and complaint.email == "r@example.org"
    decision = complaint.decision
    assert complaint.department == decision.department and complaint.area == decision.area
    assert decision.area.level_id == "district" and "Тверской" in decision.area.name

    created, routed = ComplaintEvent.objects.filter(complaint=complaint)
    assert (created.kind, created.from_state, created.to_state, created.actor_label) == (
        "created", "", "new", "resident")
    assert (routed.kind, routed.from_state, routed.to_state, routed.actor_label) == (
        "routed", "new", "assigned", "system:routing")
    assert routed.decision == decision and routed.to_department == decision.department
    assert routed.reason == decision.explanation_ru
    assert created.at <= routed.at


def test_codes_and_lookup(category):
    complaint = services.complaint_create(category=category, point=MOSCOW)
    assert re.fullmatch(r"[2-9A-HJKMNP-TV-Z]{4}(-[2-9A-HJKMNP-TV-Z]{4}){2}", complaint.tracking_code)
    assert uuid.UUID(complaint.token).version == 4
    assert complaint_by_tracking_code(complaint.tracking_code.lower()) == complaint
    other = services.complaint_create(category=category, point=MOSCOW)
    assert (other.tracking_code, other.token) != (complaint.tracking_code, complaint.token)


def test_a_tracking_code_clash_runs_the_creation_again(category, monkeypatch):
    first = services.complaint_create(category=category, point=MOSCOW)
    fresh = services.new_tracking_code()
    codes = iter([first.tracking_code, fresh])
    monkeypatch.setattr(services, "new_tracking_code", lambda: next(codes))
    before = stored_rows()
    second = services.complaint_create(category=category, point=MOSCOW, description="second")
    assert second.tracking_code == fresh and Complaint.objects.get(tracking_code=fresh).description == "second"
    # Exactly one complaint, its two history lines and one decision: the clashing attempt left nothing.
    assert stored_rows() == (before[0] + 1, before[1] + 2, before[2] + 1)
    assert [e.kind for e in second.events.all()] == ["created", "routed"]


def test_a_code_that_always_clashes_gives_up_and_stores_nothing(category, monkeypatch):
    first = services.complaint_create(category=category, point=MOSCOW)
    calls = []
    monkeypatch.setattr(services, "new_tracking_code", lambda: calls.append(1) or first.tracking_code)
    before = stored_rows()
    with pytest.raises(IntegrityError):
        services.complaint_create(category=category, point=MOSCOW)
    assert len(calls) == services.CODE_ATTEMPTS and stored_rows() == before


def _holiday_reads(queries):
    return [q for q in queries if "routing_holiday h" in q["sql"]]


@pytest.mark.parametrize("change", ["admin", "raw SQL"])
def test_the_deadline_reuses_the_holidays_and_sees_a_change_at_once(category, monkeypatch, change):
    """Two complaints on one day read the holidays once; a holiday changed anyhow (the admin's ORM, or SQL as an
    import or another app server's process writes it, which no signal of this process hears) counts for the very
    next complaint: the stamp read with the INSERT shows the reused date is stale."""
    msk = zoneinfo.ZoneInfo("Europe/Moscow")
    friday = datetime(2031, 11, 28, 10, 0, tzinfo=msk)
    category.deadline_days = 3
    category.save()
    deadlines._memo.clear()
    monkeypatch.setattr(timezone, "now", lambda: friday)
    with CaptureQueriesContext(connection) as first:
        assert services.complaint_create(category=category, point=MOSCOW).deadline == datetime(2031, 12, 3, 10, 0,
                                                                                               tzinfo=msk)
    later = friday.replace(hour=17, minute=45)
    monkeypatch.setattr(timezone, "now", lambda: later)
    with CaptureQueriesContext(connection) as second:
        reused = services.complaint_create(category=category, point=MOSCOW)
    assert len(_holiday_reads(first.captured_queries)) == 1 and _holiday_reads(second.captured_queries) == []
    assert reused.deadline == add_working_days(later, 3) == datetime(2031, 12, 3, 17, 45, tzinfo=msk)
    if change == "admin":
        Holiday.objects.create(date=date(2031, 12, 2), name="test holiday")
    else:
        with connection.cursor() as cur:
            cur.execute("INSERT INTO routing_holiday (date, name) VALUES ('2031-12-02', 'test holiday')")
    moved = services.complaint_create(category=category, point=MOSCOW)
    assert moved.deadline == datetime(2031, 12, 4, 17, 45, tzinfo=msk)
    moved.refresh_from_db()
    assert moved.deadline == datetime(2031, 12, 4, 17, 45, tzinfo=msk)
    with connection.cursor() as cur:
        cur.execute("UPDATE routing_holiday SET date = '2031-12-05' WHERE date = '2031-12-02'")
    assert Complaint.objects.get(pk=services.complaint_create(category=category, point=MOSCOW).pk).deadline == \
        datetime(2031, 12, 3, 17, 45, tzinfo=msk)


def test_deadline_counts_the_categorys_working_days_from_submission(category):
    category.deadline_days = 3
    category.save()
    complaint = services.complaint_create(category=category, point=MOSCOW)
    assert complaint.deadline == add_working_days(complaint.submitted_at, 3)
    assert complaint.deadline > complaint.submitted_at


def test_deadline_skips_weekends_and_holidays(category, monkeypatch):
    """Filed on Friday 10:00 with 3 working days and a holiday on Tuesday: due on Thursday 10:00."""
    msk = zoneinfo.ZoneInfo("Europe/Moscow")
    friday = datetime(2026, 11, 27, 10, 0, tzinfo=msk)
    Holiday.objects.get_or_create(date=date(2026, 12, 1), defaults={"name": "test holiday"})
    category.deadline_days = 3
    category.save()
    monkeypatch.setattr(timezone, "now", lambda: friday)
    complaint = services.complaint_create(category=category, point=MOSCOW)
    complaint.refresh_from_db()
    assert complaint.submitted_at == friday
    assert complaint.deadline == datetime(2026, 12, 3, 10, 0, tzinfo=msk)


def test_actor_labels(category, staff):
    api = services.complaint_create(category=category, point=MOSCOW, source="civic-app")
    by_staff = services.complaint_create(category=category, point=MOSCOW, actor=staff["a"])
    assert ComplaintEvent.objects.get(complaint=api, kind="created").actor_label == "api:civic-app"
    created = ComplaintEvent.objects.get(complaint=by_staff, kind="created")
    assert (created.actor, created.actor_label) == (staff["a"], staff["a"].username)
    assert api.source == "civic-app"


def test_attributes_are_validated_and_stored(category_with_attributes):
    complaint = services.complaint_create(category=category_with_attributes, point=MOSCOW,
                                          attributes={"kind": "k2", "floor": "2", "extras": ["k1"]})
    complaint.refresh_from_db()
    assert complaint.attributes == {"kind": "k2", "floor": 2, "extras": ["k1"]}


@pytest.mark.parametrize("kwargs, field", [
    ({"attributes": {}}, "kind"),
    ({"attributes": {"kind": "nope"}}, "kind"),
    ({"attributes": {"kind": "k1", "floor": "NaN"}}, "floor"),
    ({"attributes": {"kind": "k1", "seen_at": "tomorrow"}}, "seen_at"),
    ({"attributes": {"kind": "k1", "unknown": "1"}}, "unknown"),
    ({"attributes": {"kind": "k1"}, "description": "x" * 4001}, "description"),
    ({"attributes": {"kind": "k1"}, "point": (37.6, 91)}, "location"),
    ({"attributes": {"kind": "k1"}, "point": (181, 55.7)}, "location"),
    ({"attributes": {"kind": "k1"}, "point": (float("nan"), 55.7)}, "location"),
    ({"attributes": {"kind": "k1"}, "email": "no-at-sign"}, "email"),
    ({"attributes": {"kind": "k1"}, "photos": [SimpleUploadedFile("a.jpg", b"text")]}, "photo"),
])
def test_bad_input_stores_nothing(category_with_attributes, media, kwargs, field):
    before = stored_rows()
    with pytest.raises(ComplaintError) as error:
        services.complaint_create(category=category_with_attributes, **{"point": MOSCOW, **kwargs})
    assert error.value.field == field
    assert stored_rows() == before
    assert not media.exists() or not any(media.rglob("*.*"))


def test_outside_the_city_stores_nothing(category):
    before = stored_rows()
    with pytest.raises(OutsideCityError) as error:
        services.complaint_create(category=category, point=(30.3158, 59.9391))  # Saint Petersburg
    assert str(error.value) and error.value.field == "location"
    assert isinstance(error.value, ComplaintError)
    assert stored_rows() == before


def test_inactive_category_is_refused(category):
    category.active = False
    category.save()
    with pytest.raises(ComplaintError):
        services.complaint_create(category=category, point=MOSCOW)


def test_photos_are_stored_clean_under_media_root(category, media, settings):
    files = [SimpleUploadedFile("a.jpg", image_bytes("JPEG")), SimpleUploadedFile("b.png", image_bytes("PNG")),
             SimpleUploadedFile("c", image_bytes("WEBP"))]
    complaint = services.complaint_create(category=category, point=MOSCOW, photos=files)
    photos = list(Photo.objects.filter(complaint=complaint).order_by("id"))
    assert [p.content_type for p in photos] == ["image/jpeg", "image/png", "image/webp"]
    for photo in photos:
        path = media / photo.file.name
        assert path.is_file() and path.is_relative_to(media) and photo.answer is None
        assert Image.open(path).size == (photo.width, photo.height) == (64, 48)
    settings.PHOTO_MAX_PER_COMPLAINT = 2
    with pytest.raises(ComplaintError, match="2"):
        services.complaint_create(category=category, point=MOSCOW, photos=files)


def test_only_a_clash_of_codes_is_retried():
    class Diag:
        def __init__(self, name):
            self.constraint_name = name

    def error(constraint=None):
        exc = IntegrityError("x")
        if constraint is not None:
            cause = Exception()
            cause.diag = Diag(constraint)
            exc.__cause__ = cause
        return exc

    assert services._is_code_clash(error("complaints_complaint_tracking_code_key"))
    assert services._is_code_clash(error("complaints_complaint_token_key"))
    assert not services._is_code_clash(error("complaints_complaint_category_id_9eb66f7d_fk_routing_c"))
    assert not services._is_code_clash(error("complaints_complaintevent_pkey"))
    assert services._is_code_clash(error())  # a driver that does not name the constraint: retried, as before
