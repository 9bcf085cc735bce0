"""The outbox relay (complaints.outbox.outbox_relay): the request that writes a mail publishes nothing to the broker;
a worker's relay claims each committed outbox row once, however many relays run at once, and queues its task."""
import threading
from urllib.parse import urlencode

import pytest
from celery.signals import before_task_publish
from django.db import connection, transaction

from complaints.models import Outbox
from complaints.outbox import outbox_relay, outbox_write
from tests.open311.conftest import form

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def published():
    """The names and first arguments of the tasks published while the test runs (Celery's own signal)."""
    seen = []

    def record(sender=None, body=None, **_kwargs):
        seen.append((sender, (body[0] if isinstance(body, (list, tuple)) else body.get("args", [None]))[0]))

    before_task_publish.connect(record, weak=False)
    yield seen
    before_task_publish.disconnect(record)


def write_mails(n, prefix):
    with transaction.atomic():
        for i in range(n):
            outbox_write(kind="tracking", recipient=f"r{i}@example.org", dedupe_key=f"{prefix}:{i}")


@pytest.mark.parametrize("extra", [{"email": "ivan@example.org"}, {"email": "ivan@example.org", "locale": "en"}])
def test_an_open311_post_with_an_address_writes_its_mail_and_publishes_nothing(demo_city, service, api_key, client,
                                                                             published, extra):
    response = client.post("/open311/v2/requests.json", urlencode(form(api_key, **extra)),
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 201, response.content
    entry = Outbox.objects.get(complaint_id=response.json()[0]["service_request_id"])
    assert entry.queued_at is None and entry.state == "pending"
    assert published == []
    assert outbox_relay() == [entry.dedupe_key]
    assert published == [("complaints.tasks.outbox_deliver", entry.dedupe_key)]


@pytest.mark.parametrize("n", [1, 7])
def test_the_relay_queues_each_committed_row_once(demo_city, published, n):
    write_mails(n, "relay-once")
    keys = outbox_relay()
    assert sorted(keys) == sorted(f"relay-once:{i}" for i in range(n))
    assert sorted(arg for _name, arg in published) == sorted(keys)
    assert outbox_relay() == [] and len(published) == n  # a second pass finds nothing more
    assert not Outbox.objects.filter(queued_at__isnull=True).exists()


def test_a_row_not_yet_committed_is_not_relayed(demo_city, published):
    seen_inside = []
    with transaction.atomic():
        outbox_write(kind="tracking", recipient="r@example.org", dedupe_key="relay-uncommitted")
        # another connection's relay (as a worker's): the row is not committed yet, so it is not there
        thread = threading.Thread(target=lambda: (seen_inside.extend(outbox_relay()), connection.close()))
        thread.start()
        thread.join()
    assert seen_inside == [] and published == []
    assert outbox_relay() == ["relay-uncommitted"]


def test_a_broker_failure_undoes_the_claim(demo_city, published, monkeypatch):
    from complaints import tasks

    write_mails(2, "relay-broker-down")

    def broker_down(*_args, **_kwargs):
        raise OSError("broker unreachable")

    monkeypatch.setattr(tasks.outbox_deliver, "delay", broker_down)
    with pytest.raises(OSError):
        outbox_relay()
    assert Outbox.objects.filter(queued_at__isnull=True).count() == 2  # the next pass tries again
    monkeypatch.undo()
    assert sorted(outbox_relay()) == ["relay-broker-down:0", "relay-broker-down:1"]


def test_relays_running_at_once_hand_every_row_over_exactly_once(demo_city, published):
    write_mails(300, "relay-race")
    results, start = [], threading.Barrier(3)

    def relay():
        start.wait()
        try:
            while keys := outbox_relay(limit=20):
                results.extend(keys)
        finally:
            connection.close()

    threads = [threading.Thread(target=relay) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 300 and len(set(results)) == 300
    assert len(published) == 300


@pytest.mark.parametrize("first", ["the change's task", "the relay"])
def test_a_changes_own_task_and_the_relay_never_both_hand_a_mail_over(demo_city, service, api_key, client, published,
                                                                       mailoutbox, first):
    from complaints.outbox import outbox_send_for

    response = client.post("/open311/v2/requests.json", urlencode(form(api_key, email="ivan@example.org")),
                           content_type="application/x-www-form-urlencoded")
    complaint_id = int(response.json()[0]["service_request_id"])
    entry = Outbox.objects.get(complaint_id=complaint_id)
    if first == "the relay":
        assert outbox_relay() == [entry.dedupe_key]
        assert outbox_send_for([complaint_id]).sent == 0  # the relay's task sends it
        assert Outbox.objects.get(pk=entry.pk).state == "pending" and mailoutbox == []
    else:
        assert outbox_send_for([complaint_id]).sent == 1
        assert outbox_relay() == [] and published == []  # nothing left to queue
        assert Outbox.objects.get(pk=entry.pk).state == "sent" and len(mailoutbox) == 1
        assert outbox_send_for([complaint_id]).sent == 0 and len(mailoutbox) == 1  # once
