"""What makes a POST cheap must not change what it does: the key is checked against the database every time, the
service catalogue is reused only while its change stamp stays the same (whoever changes it, however).
"""
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.db.models.signals import post_save
from django.test.utils import CaptureQueriesContext

from complaints.models import Complaint, ComplaintEvent
from open311 import selectors
from open311.keys import api_key_check, api_key_check_with_catalogue
from open311.models import ApiKey
from routing.models import Category, CategoryAttribute

from .conftest import SERVICE, form, image_file

pytestmark = pytest.mark.django_db
URL = "/open311/v2/requests.json"
FORM = "application/x-www-form-urlencoded"


def post(client, data):
    return client.post(URL, urlencode(data, doseq=True), content_type=FORM)


def stamp():
    with connection.cursor() as cur:
        cur.execute("SELECT version FROM open311_catalogue_version")
        return cur.fetchone()[0]


def sql(statement, params=()):
    """A write that sends no signal, as the importers and other processes make them."""
    with connection.cursor() as cur:
        cur.execute(statement, params)


# ---- the key --------------------------------------------------------------------------------------------


def test_a_key_deactivated_without_signals_is_refused_at_once(client, service, api_key):
    assert post(client, form(api_key)).status_code == 201
    sql("UPDATE open311_apikey SET active = false")  # as the admin in another process would
    response = post(client, form(api_key))
    assert response.status_code == 403 and "api_key" in response.json()[0]["description"]
    sql("UPDATE open311_apikey SET active = true")
    assert post(client, form(api_key)).status_code == 201


def test_a_key_deleted_is_refused_and_the_check_returns_the_stamp(service, api_key):
    key, version = api_key_check_with_catalogue(api_key)
    assert key == ApiKey.objects.get() and key.name == "test-integrator" and version == stamp()
    assert api_key_check_with_catalogue("") == (None, version)
    assert api_key_check_with_catalogue(api_key + "x") == (None, version)
    ApiKey.objects.all().delete()
    assert api_key_check(api_key) is None


def test_the_key_check_refreshes_last_used_at_rarely(service, api_key):
    assert ApiKey.objects.get().last_used_at is None
    api_key_check(api_key)
    first = ApiKey.objects.get().last_used_at
    assert first is not None
    api_key_check(api_key)
    assert ApiKey.objects.get().last_used_at == first


# ---- the catalogue --------------------------------------------------------------------------------------


def test_every_write_of_the_catalogue_changes_the_stamp(service):
    seen = [stamp()]

    def changed():
        seen.append(stamp())
        return seen[-1] != seen[-2]

    service.name_i18n = {**service.name_i18n, "en": "Hole"}
    service.save()
    assert changed()
    attribute = CategoryAttribute.objects.create(category=service, code="extra", datatype="string", order=9)
    assert changed()
    sql("UPDATE routing_categoryattribute SET required = true WHERE id = %s", [attribute.pk])
    assert changed()
    attribute.delete()
    assert changed()
    sql("UPDATE routing_category SET active = false WHERE code = 'no-such-service'")  # a statement, even of 0 rows
    assert changed()
    assert len(set(seen)) == len(seen)  # never the same stamp twice


def test_the_service_is_read_once_while_the_catalogue_does_not_change(client, service, api_key):
    selectors._services.clear()
    assert post(client, form(api_key)).status_code == 201
    with CaptureQueriesContext(connection) as queries:
        assert post(client, form(api_key)).status_code == 201
    assert not [q for q in queries if "routing_categoryattribute" in q["sql"]]
    service.keywords = "яма, выбоина"
    service.save()
    with CaptureQueriesContext(connection) as queries:
        assert post(client, form(api_key)).status_code == 201
    assert len([q for q in queries if "routing_categoryattribute" in q["sql"]]) == 1


def test_a_service_deactivated_by_sql_is_refused_by_the_next_post(client, service, api_key):
    assert post(client, form(api_key)).status_code == 201  # the service is now cached
    sql("UPDATE routing_category SET active = false WHERE code = %s", [SERVICE])
    before = Complaint.objects.count()
    response = post(client, form(api_key))
    assert response.status_code == 400 and "service_code" in response.json()[0]["description"]
    assert Complaint.objects.count() == before


def test_a_new_required_attribute_applies_to_the_next_post(client, service, api_key):
    assert post(client, form(api_key)).status_code == 201
    sql("INSERT INTO routing_categoryattribute (category_id, code, datatype, required, variable, \"order\", "
        "description_i18n, datatype_description, \"values\") "
        "VALUES (%s, 'width', 'number', true, true, 8, '{}', '', '[]')", [service.pk])
    response = post(client, form(api_key))
    assert response.status_code == 400 and "width" in response.json()[0]["description"]
    assert post(client, form(api_key, **{"attribute[width]": "3"})).status_code == 201
    assert Complaint.objects.latest("pk").attributes["width"] == 3


def test_a_service_created_after_an_unknown_code_was_asked_for(client, service, api_key):
    assert post(client, form(api_key, service_code="o311-later")).status_code == 400  # None is cached
    Category.objects.create(code="o311-later", name_i18n={"ru": "Позже", "en": "Later"}, group_i18n={"ru": "Прочее",
                            "en": "Other"})
    assert post(client, form(api_key, service_code="o311-later", **{"attribute[kind]": None})).status_code == 201


def test_without_a_stamp_nothing_is_reused(service):
    selectors._services.clear()
    assert selectors.open311_service_current(SERVICE, None).code == SERVICE
    assert selectors._services == {}
    first = selectors.open311_service_current(SERVICE, 12345)
    assert selectors.open311_service_current(SERVICE, 12345) is first
    assert selectors.open311_service_current(SERVICE, 12346) is not first


# ---- validation and the answer --------------------------------------------------------------------------


def test_a_photo_goes_through_the_validation(client, service, api_key):
    response = client.post(URL, form(api_key, media=image_file()))
    assert response.status_code == 201, response.content
    assert Complaint.objects.get(pk=response.json()[0]["service_request_id"]).photos.count() == 1


# ---- storage ----------------------------------------------------------------------------------------------


def test_the_complaint_and_its_history_are_one_statement(client, service, api_key):
    post(client, form(api_key))  # the service read
    with CaptureQueriesContext(connection) as queries:
        body = post(client, form(api_key)).json()
    complaint_inserts = [q["sql"] for q in queries if '"complaints_complaint"' in q["sql"]
                         and "INSERT" in q["sql"].upper()]
    event_inserts = [q["sql"] for q in queries if '"complaints_complaintevent"' in q["sql"]
                     and "INSERT" in q["sql"].upper()]
    assert len(complaint_inserts) == 1 and event_inserts == complaint_inserts
    complaint = Complaint.objects.get(pk=body[0]["service_request_id"])
    created, routed = complaint.events.all()
    assert (created.kind, routed.kind) == ("created", "routed") and created.pk < routed.pk
    assert created.actor_label == "api:test-integrator" and routed.decision_id == complaint.decision_id


def test_a_listener_of_complaint_saves_gets_the_orms_saves(client, service, api_key):
    heard = []

    def listener(sender, instance, created, **kwargs):
        heard.append((instance.pk, created))

    post_save.connect(listener, sender=Complaint, dispatch_uid="test-listener")
    try:
        body = post(client, form(api_key)).json()
    finally:
        post_save.disconnect(dispatch_uid="test-listener", sender=Complaint)
    pk = int(body[0]["service_request_id"])
    assert heard == [(pk, True)]
    assert list(ComplaintEvent.objects.filter(complaint_id=pk).values_list("kind", flat=True)) == [
        "created", "routed"]
