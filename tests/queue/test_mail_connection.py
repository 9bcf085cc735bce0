"""A sender's SMTP connection (complaints.outbox.process_mailer): one session from mail to mail, not one per mail
(what made the mail latency bench slow); a connection the server dropped is found out (NOOP after idle) or, if it
fails a send, closed, the mail recorded as failed and sent on a fresh one: every mail exactly once either way. A
forked child never writes on its parent's socket, and other mail settings get their own connection."""
import socket
import threading

import pytest
from aiosmtpd.controller import Controller

from complaints import outbox
from complaints.models import Outbox
from complaints.outbox import outbox_send, process_mailer, process_mailer_close

pytestmark = pytest.mark.django_db


class Counting:
    def __init__(self):
        self.sessions, self.delivered, self.lock = 0, [], threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self.lock:
            self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.delivered.append(envelope.content)
        return "250 OK"


@pytest.fixture(scope="module")
def server():
    box = Counting()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        box.port = s.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def smtp_settings(server, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.OUTBOX_SMTP_IDLE_CHECK = 3600
    process_mailer_close()
    with server.lock:
        server.sessions, server.delivered[:] = 0, []
    yield server
    process_mailer_close()


def signin_rows(n):
    from complaints.notify import signin_request

    return [Outbox.objects.get(kind="signin", context__link=signin_request(email=f"r{i}@example.org").pk)
            for i in range(n)]


def test_mails_sent_one_by_one_share_one_smtp_session(smtp_settings):
    rows = signin_rows(6)
    for row in rows:  # as six tasks would, each on its own
        assert outbox_send(row.pk) == "sent"
    assert len(smtp_settings.delivered) == 6
    assert smtp_settings.sessions == 1


def drop(mailer):
    """The server went away under an idle connection: its socket is dead."""
    mailer.connection.sock.shutdown(socket.SHUT_RDWR)


@pytest.mark.parametrize("noticed", [True, False], ids=["found out by the idle check", "found out by a failed send"])
def test_a_dropped_connection_loses_no_mail_and_sends_none_twice(smtp_settings, settings, noticed):
    first, second = signin_rows(2)
    assert outbox_send(first.pk) == "sent"
    drop(process_mailer())
    settings.OUTBOX_SMTP_IDLE_CHECK = 0 if noticed else 3600
    outcome = outbox_send(second.pk)
    row = Outbox.objects.get(pk=second.pk)
    if noticed:
        assert outcome == "sent" and row.attempts == 1 and row.last_error == ""
    else:  # recorded, due again after its backoff; the next try opens a fresh connection
        assert outcome == "failed" and row.state == Outbox.State.PENDING and row.last_error
        Outbox.objects.filter(pk=row.pk).update(next_attempt_at=row.created_at)
        assert outbox_send(second.pk) == "sent"
    assert len(smtp_settings.delivered) == 2
    assert smtp_settings.sessions == 2


def test_a_forked_childs_inherited_connection_is_left_alone(smtp_settings, monkeypatch):
    [row] = signin_rows(1)
    parent = process_mailer()
    parent.open()
    monkeypatch.setitem(outbox._process, "pid", -1)  # as a forked child sees its parent's connection
    child = process_mailer()
    assert child is not parent and parent.connection is not None  # the parent's socket untouched
    assert outbox_send(row.pk) == "sent"
    parent.close()


def test_other_mail_settings_get_their_own_connection(smtp_settings, settings):
    first = process_mailer()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    second = process_mailer()
    assert second is not first and type(second).__module__.endswith("locmem")
    assert first.connection is None  # closed
