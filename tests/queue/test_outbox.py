"""The outbox on the real queue: a mail written in a transaction that rolls back is never sent (no row, no task);
one written in a transaction that commits is sent once by the worker, whatever writes it twice (its dedupe key);
a mail the worker can't send is retried with backoff, then given up and shown as failed."""
import pytest
from django.db import transaction

from complaints.models import Outbox
from complaints.outbox import outbox_write
from complaints.tasks import outbox_sweep

from .conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _clean_mailbox(smtp):
    smtp.reset()
    yield
    smtp.reset()


class Boom(Exception):
    pass


def write(complaint, key, n=1):
    for _ in range(n):
        outbox_write(kind="tracking", recipient="ivan@example.org", dedupe_key=key, complaint=complaint)


@pytest.fixture
def complaint(demo_city, service):
    from complaints.models import Complaint
    from complaints.services import complaint_create

    made = complaint_create(category=service, point=(37.6208, 55.7539), description="Яма", attributes={"kind": "hole"})
    Complaint.objects.filter(pk=made.pk).update(email="ivan@example.org")
    return Complaint.objects.get(pk=made.pk)


@pytest.mark.parametrize("where", ["outer", "savepoint"])
def test_a_mail_written_in_a_transaction_that_rolls_back_is_never_sent(worker, smtp, complaint, where):
    if where == "outer":
        with pytest.raises(Boom), transaction.atomic():
            write(complaint, "tracking:rolled-back")
            raise Boom
    else:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    write(complaint, "tracking:rolled-back")
                    raise Boom
            except Boom:
                pass
            write(complaint, "tracking:committed")  # the same transaction goes on and commits this one
    if where == "savepoint":
        wait_until(lambda: len(smtp.delivered) == 1, what="the committed mail")
    outbox_sweep.delay().get(timeout=60)  # the sweep, too, finds nothing of the rolled-back one
    assert not Outbox.objects.filter(dedupe_key="tracking:rolled-back").exists()
    assert len(smtp.delivered) == (1 if where == "savepoint" else 0)
    assert smtp.data_seen == len(smtp.delivered)


@pytest.mark.parametrize("writes", [1, 3])
def test_a_mail_written_more_than_once_is_one_row_sent_once(worker, smtp, complaint, writes):
    with transaction.atomic():
        write(complaint, f"tracking:twice-{writes}", n=writes)
    write(complaint, f"tracking:twice-{writes}")  # and again in a transaction of its own
    wait_until(lambda: Outbox.objects.filter(state="sent").count() == 1, what="the mail")
    outbox_sweep.delay().get(timeout=60)
    assert Outbox.objects.count() == 1 and len(smtp.delivered) == 1
    assert complaint.tracking_code in smtp.delivered[0]


def test_a_mail_that_never_goes_is_given_up_and_shown_as_failed(worker, smtp, complaint, settings):
    smtp.fail = 100
    write(complaint, "tracking:never")
    # the worker's OUTBOX_MAX_ATTEMPTS is the default (5): backoff 1, 2, 4, 8 s between them
    wait_until(lambda: Outbox.objects.filter(state="failed").exists(), seconds=90, what="the mail to be given up")
    entry = Outbox.objects.get()
    assert entry.attempts == 5 and entry.sent_at is None and "451" in entry.last_error
    assert smtp.data_seen == 5 and smtp.delivered == []
    outbox_sweep.delay().get(timeout=60)
    assert smtp.data_seen == 5
