"""A worker killed (SIGKILL) in mid-task loses nothing: the task was not acknowledged, so once its visibility
timeout passes the broker gives it to the next worker, which sends the mail; the mail is delivered exactly once and
the outbox row records one attempt (the killed one's transaction rolled back, releasing the row lock)."""
from urllib.parse import urlencode

import pytest

from complaints.models import Complaint, Outbox
from tests.open311.conftest import form

from .conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_worker_killed_mid_send_loses_nothing_and_sends_nothing_twice(start_worker, smtp, demo_city, service,
                                                                         api_key, client):
    smtp.reset()
    smtp.stall = True  # the mail server holds DATA: the worker is in mid-task, holding the row lock
    first = start_worker()
    response = client.post("/open311/v2/requests.json", urlencode(form(api_key, email="ivan@example.org")),
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 201, response.content
    complaint = Complaint.objects.get(pk=response.json()[0]["service_request_id"])
    wait_until(lambda: smtp.data_seen == 1, what="the worker to be in mid-send")
    first.kill()
    smtp.stall = False
    # nothing of the killed attempt was committed: the row is as the POST wrote it
    assert list(Outbox.objects.filter(complaint=complaint).values_list("state", "attempts")) == [("pending", 0)]
    assert smtp.delivered == []

    second = start_worker()
    try:
        wait_until(lambda: Outbox.objects.filter(complaint=complaint, sent_at__isnull=False).exists(),
                   seconds=90, what="the second worker to run the task again")
        record = Outbox.objects.get(complaint=complaint)
        assert record.attempts == 1
        assert len(smtp.delivered) == 1 and complaint.tracking_code in smtp.delivered[0]
        assert smtp.data_seen == 2
    finally:
        second.stop()
        smtp.reset()
