"""Nothing the code does outlives its transaction on the database session: no prepared statement, no advisory lock
(behind a transaction-mode pooler the next transaction may run on another server connection, and another client
may get this one). Checked on a direct connection, where the session's state can be seen.
"""
import psycopg2
import pytest
from django.conf import settings
from django.core import mail
from django.db import connection

from complaints.outbox import outbox_send_due as tracking_mail_send_pending
from complaints.models import Complaint
from routing.engine import route
from routing.models import Category
from tests.open311.conftest import TVERSKOY, form, media, service  # noqa: F401 - fixtures
from tests.open311.test_post_costs import post
from open311.keys import api_key_issue

pytestmark = pytest.mark.django_db


def session_state():
    with connection.cursor() as cur:
        cur.execute("SELECT (SELECT count(*) FROM pg_prepared_statements), (SELECT count(*) FROM pg_locks "
                    "WHERE pid = pg_backend_pid() AND locktype = 'advisory' AND granted)")
        return cur.fetchone()


@pytest.fixture
def api_key(db):
    return api_key_issue(name="state-integrator")[1]


def do_post(client, api_key):
    assert post(client, form(api_key)).status_code == 201


def do_route(client, api_key):
    route(TVERSKOY, Category.objects.filter(active=True).first())


def do_mail(client, api_key):
    do_post(client, api_key)
    assert tracking_mail_send_pending().sent >= 1


def test_no_action_leaves_session_state(demo_city, client, service, api_key):
    """Committed transactions (transactional_db), as in production: a transaction-level lock must be gone."""
    assert session_state() == (0, 0)
    for action in (do_post, do_route, do_mail):
        action(client, api_key)
        action(client, api_key)  # the second time too (the old code prepared on first use)
        assert session_state() == (0, 0), action.__name__


def other_connection():
    db = settings.DATABASES["default"]
    return psycopg2.connect(dbname=db["NAME"], user=db["USER"], password=db.get("PASSWORD") or None,
                            host=db["HOST"], port=db["PORT"] or None)


@pytest.mark.django_db(transaction=True)  # the other sender must see the complaint to lock its mail's row
def test_a_complaint_another_sender_is_mailing_is_skipped_then_mailed(demo_city, client, service, api_key):
    do_post(client, api_key)
    complaint = Complaint.objects.get()
    other = other_connection()  # the other sender, inside its transaction
    try:
        with other.cursor() as cur:  # the mail's outbox row, locked as complaints.outbox's sender locks it
            cur.execute("SELECT 1 FROM complaints_outbox WHERE complaint_id = %s FOR UPDATE", [complaint.pk])
        run = tracking_mail_send_pending()
        assert (run.sent, run.failed, run.skipped_busy) == (0, 0, 1) and not mail.outbox
    finally:
        other.rollback()  # its transaction ends: the lock goes with it
        other.close()
    run = tracking_mail_send_pending()
    assert (run.sent, run.skipped_busy) == (1, 0) and len(mail.outbox) == 1
