"""Area alerts (complaints.notify): confirmed by a link; then each new complaint in the district, within the radius
or of the category group is one mail (the immediate sweep: one statement for every alert), or one daily digest;
complaints filed before the confirmation, elsewhere or hidden are not news; unsubscribed alerts get nothing."""
import pytest
from django.contrib.gis.geos import Point
from django.utils import translation

from complaints.models import Alert, Complaint, Outbox, Subscription
from complaints.notify import (ALERT, ALERT_DIGEST, alert_confirm, alert_request, alert_token, alerts_digest,
                               alerts_sweep, unsubscribe, unsubscribe_token)
from complaints.outbox import _kinds
from complaints.services import complaint_create
from facilities.models import AdminArea
from routing.models import Category

from .factories import MOSCOW

pytestmark = pytest.mark.django_db
FAR = (37.75, 55.65)  # another district of the demo city


def file(point=MOSCOW, code="yard-rubbish"):
    return complaint_create(category=Category.objects.get(code=code), point=point, description="проблема")


def render(row):
    with translation.override(row.language or "ru"):
        return _kinds()[row.kind](row)


def confirmed(**kwargs):
    alert = alert_request(email="watcher@example.org", language="en", **kwargs)
    return alert_confirm(alert_token(alert))


@pytest.fixture
def district():
    here = file()
    return AdminArea.objects.get(pk=here.area_id)


@pytest.mark.parametrize("where", ["district", "radius", "group", "group in English"])
def test_each_new_matching_complaint_is_one_mail(district, where):
    group = Category.objects.get(code="yard-rubbish").group_i18n  # a group by its name in any configured language
    kwargs = {"district": {"area": district}, "radius": {"point": Point(*MOSCOW, srid=4326), "radius_m": 300},
              "group": {"group": group["ru"]}, "group in English": {"group": group["en"]}}[where]
    before = file()  # filed before the alert: not news
    alert = confirmed(**kwargs)
    news = [file(), file()]
    elsewhere = file(FAR, "road-snow")  # another district, another group, far away
    hidden = file()
    Complaint.objects.filter(pk=hidden.pk).update(state="hidden")
    assert alerts_sweep() == 2
    rows = list(Outbox.objects.filter(kind=ALERT).order_by("complaint_id"))
    assert [r.complaint_id for r in rows] == [c.pk for c in news]
    assert before.pk not in [r.complaint_id for r in rows] and elsewhere.pk not in [r.complaint_id for r in rows]
    message = render(rows[0])
    assert message.to == ["watcher@example.org"] and f"/n/{news[0].pk}/" in message.body
    assert news[0].tracking_code not in message.body and "/unsubscribe/" in message.body
    assert alerts_sweep() == 0  # swept once
    Alert.objects.filter(pk=alert.pk).update(seen_up_to=alert.seen_up_to)  # as if the sweep ran twice at once
    assert alerts_sweep() == 0  # a second sweep over the same complaints writes no second mail (dedupe)


def test_the_sweep_is_one_statement_however_many_alerts(district, django_assert_max_num_queries):
    for i in range(20):
        alert = alert_request(email=f"w{i}@example.org", area=district)
        alert_confirm(alert_token(alert))
    file()
    with django_assert_max_num_queries(4):  # savepoint, the statement, release (and no query per alert)
        assert alerts_sweep() == 20


def test_a_pending_or_unsubscribed_alert_gets_nothing(district):
    alert_request(email="pending@example.org", area=district)  # never confirmed
    alert = confirmed(area=district)
    unsubscribe(unsubscribe_token(alert_id=alert.pk))
    assert Alert.objects.get(pk=alert.pk).state == Subscription.STOPPED
    file()
    assert alerts_sweep() == 0


def test_the_daily_digest_is_one_mail_listing_the_news(district):
    alert = confirmed(area=district, frequency=Alert.Frequency.DAILY)
    news = [file() for _ in range(3)]
    assert alerts_sweep() == 0  # not an immediate alert
    assert alerts_digest() == 1
    [row] = Outbox.objects.filter(kind=ALERT_DIGEST)
    body = render(row).body
    assert all(f"/n/{c.pk}/" in body for c in news) and ": 3." in body
    assert alerts_digest() == 0  # nothing new since
    assert Alert.objects.get(pk=alert.pk).seen_up_to >= news[-1].pk


@pytest.mark.parametrize("kwargs", [
    {}, {"area": None, "group": ""}, {"point": Point(*MOSCOW, srid=4326)},
    {"point": Point(*MOSCOW, srid=4326), "radius_m": 10}, {"point": Point(*MOSCOW, srid=4326), "radius_m": 10 ** 6},
    {"group": "Дворы", "point": Point(*MOSCOW, srid=4326), "radius_m": 100}, {"group": "x", "frequency": "hourly"},
])
def test_a_bad_alert_is_refused_and_nothing_stored(kwargs):
    from complaints.errors import ComplaintError

    with pytest.raises(ComplaintError):
        alert_request(email="w@example.org", **kwargs)
    assert not Alert.objects.exists() and not Outbox.objects.exists()


def test_the_alerts_page_asks_for_one_and_mails_its_confirmation(client, district):
    response = client.post("/alerts/", {"where": "district", "district": district.pk, "frequency": "immediate",
                                        "email": "page@example.org"})
    assert response.status_code == 200
    alert = Alert.objects.get(email="page@example.org")
    assert alert.state == Subscription.PENDING and alert.area_id == district.pk
    [row] = Outbox.objects.filter(kind="alert-confirm")
    link = next(w for w in render(row).body.split() if "/alerts/" in w)
    assert client.get(link.split("8000", 1)[1]).status_code == 200
    assert Alert.objects.get(pk=alert.pk).state == Subscription.ACTIVE
    for bad in ({"where": "district", "district": "x"}, {"where": "point", "lat": "nan", "lon": "1"},
                {"where": "group", "group": "<script>"}, {"where": "nowhere"}):
        assert client.post("/alerts/", {**bad, "email": "page@example.org", "frequency": "daily"}).status_code == 400
    assert Alert.objects.count() == 1
