"""The tracking mail goes through the outbox and the real queue: a complaint filed with an address gets one outbox
row, which the worker's relay puts on the queue (the request publishes nothing: test_outbox_relay.py); a real worker
sends it to a real SMTP server, once; a failing server is retried with backoff until it recovers, and the sweep
afterwards sends nothing more."""
from urllib.parse import urlencode

import pytest
from django.conf import settings

from complaints.models import Complaint, Outbox
from complaints.tasks import outbox_sweep
from geo_ourcity.celery import app
from tests.open311.conftest import form

from .conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _clean_mailbox(smtp):
    smtp.reset()
    yield
    smtp.reset()


def post(client, api_key, **extra):
    response = client.post("/open311/v2/requests.json", urlencode(form(api_key, **extra)),
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 201, response.content
    return Complaint.objects.get(pk=response.json()[0]["service_request_id"])


def sent_count():
    return Outbox.objects.filter(sent_at__isnull=False).count()


def test_no_eager_mode_stands_in_for_the_queue():
    assert settings.CELERY_TASK_ALWAYS_EAGER is False
    assert app.conf.task_always_eager is False
    assert app.conf.task_acks_late is True and app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1 and app.conf.accept_content == ["json"]


@pytest.mark.parametrize("n", [1, 3])
def test_one_mail_per_complaint_through_the_worker(worker, smtp, demo_city, service, api_key, client, n):
    complaints = [post(client, api_key, email=f"r{i}@example.org") for i in range(n)]
    post(client, api_key, email="")  # no address: no mail
    wait_until(lambda: len(smtp.delivered) == n and sent_count() == n, what=f"{n} mails")
    outbox_sweep.delay().get(timeout=60)  # the scheduler's sweep finds nothing more to send
    assert len(smtp.delivered) == n
    for complaint in complaints:
        assert sum(complaint.tracking_code in m for m in smtp.delivered) == 1
        record = Outbox.objects.get(complaint=complaint)
        assert record.attempts == 1 and record.sent_at is not None and record.recipient == complaint.email


@pytest.mark.parametrize("failures", [1, 2])
def test_a_failing_mail_server_is_retried_until_it_recovers_and_mails_once(worker, smtp, demo_city, service,
                                                                         api_key, client, failures):
    smtp.fail = failures
    complaint = post(client, api_key, email="ivan@example.org")
    wait_until(lambda: sent_count() == 1, what="the mail after the retries")
    record = Outbox.objects.get(complaint=complaint)
    assert record.attempts == failures + 1 and record.last_error == "" and record.state == "sent"
    outbox_sweep.delay().get(timeout=60)
    assert len(smtp.delivered) == 1 and smtp.data_seen == failures + 1
    assert complaint.tracking_code in smtp.delivered[0]


def test_this_run_has_a_queue_of_its_own(task_queue):
    assert task_queue.startswith("test-")
    assert app.amqp.router.route({}, "complaints.tasks.outbox_deliver")["queue"].name == task_queue
