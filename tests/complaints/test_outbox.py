"""The outbox's rules, in one process (tests/queue/test_outbox.py runs them on a real worker): a new kind of mail
is one renderer; a mail is rendered in its own language when it is sent; unknown kinds are refused where they are
written; the backoff doubles up to its cap; the admin shows failures and sends them again only for those who may."""
import pytest
from django.contrib.auth.models import Permission, User
from django.core import mail
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext

from complaints.models import Outbox
from complaints.outbox import KINDS, mail_kind, outbox_send_due, outbox_write, retry_delay

pytestmark = pytest.mark.django_db


@pytest.fixture
def greeting():
    """A kind of mail added the way issue 10's will be: one decorated renderer."""
    @mail_kind("test-greeting")
    def render(entry):
        if entry.context.get("withdrawn"):
            return None
        return EmailMessage(subject=gettext("Tickets"), body=f"Hello, {entry.context['name']}",
                            to=[entry.recipient])

    yield render
    KINDS.pop("test-greeting")


@pytest.mark.parametrize("language, subject", [("ru", "Обращения"), ("en", "Tickets")])
def test_a_new_kind_is_one_renderer_sent_in_its_own_language(greeting, language, subject):
    with translation.override("ru" if language == "en" else "en"):  # whatever the writer's language is
        outbox_write(kind="test-greeting", recipient="ivan@example.org", dedupe_key=f"greeting:{language}",
                     language=language, context={"name": "Иван"})
    assert outbox_send_due().sent == 1
    (message,) = mail.outbox
    assert message.body == "Hello, Иван" and message.to == ["ivan@example.org"]
    assert message.subject in (subject, "Tickets")  # the project's catalogue or the staff one
    assert Outbox.objects.get().state == "sent"


def test_a_mail_no_longer_due_is_cancelled_not_sent(greeting):
    outbox_write(kind="test-greeting", recipient="a@example.org", dedupe_key="g:w", context={"withdrawn": True})
    run = outbox_send_due()
    assert (run.sent, run.cancelled) == (0, 1) and mail.outbox == []
    assert Outbox.objects.get().state == "cancelled"


@pytest.mark.parametrize("kind", ["", "nope", "tracking ", "TRACKING"])
def test_an_unknown_kind_is_refused_where_it_is_written(kind):
    with pytest.raises(ValueError, match="unknown outbox kind"):
        outbox_write(kind=kind, recipient="a@example.org", dedupe_key="k")
    assert not Outbox.objects.exists()


def test_a_kind_registered_twice_is_refused(greeting):
    with pytest.raises(ValueError, match="registered twice"):
        mail_kind("test-greeting")(lambda entry: None)


@pytest.mark.parametrize("attempts, seconds", [(1, 2), (2, 4), (3, 8), (4, 16), (9, 512), (10, 600), (30, 600)])
def test_the_backoff_doubles_up_to_its_cap(settings, attempts, seconds):
    settings.OUTBOX_RETRY_BACKOFF, settings.CELERY_TASK_RETRY_BACKOFF_MAX = 2, 600
    assert retry_delay(attempts) == seconds


def test_the_same_dedupe_key_is_one_row_whatever_writes_it(greeting):
    for name in ("first", "second"):
        with transaction.atomic():
            outbox_write(kind="test-greeting", recipient="a@example.org", dedupe_key="g:once", context={"name": name})
    assert list(Outbox.objects.values_list("context", flat=True)) == [{"name": "first"}]
    outbox_send_due()
    outbox_send_due()
    assert len(mail.outbox) == 1


@pytest.mark.parametrize("who, may", [("superuser", True), ("viewer", False), ("changer", True)])
def test_the_admin_shows_failed_mails_and_sends_them_again_for_those_who_may(client, greeting, who, may):
    outbox_write(kind="test-greeting", recipient="a@example.org", dedupe_key="g:f", context={"name": "x"})
    entry = Outbox.objects.get()
    Outbox.objects.filter(pk=entry.pk).update(state="failed", attempts=5, last_error="SMTPDataError: 451 later")
    if who == "superuser":
        user = User.objects.create_superuser("t-outbox-admin", password="x")
    else:
        user = User.objects.create_user(f"t-outbox-{who}", password="x", is_staff=True)
        codenames = ["view_outbox"] + (["change_outbox"] if who == "changer" else [])
        user.user_permissions.add(*Permission.objects.filter(content_type__app_label="complaints",
                                                             codename__in=codenames))
    client.force_login(user)
    page = client.get("/admin/complaints/outbox/?state=failed")
    assert page.status_code == 200 and "SMTPDataError: 451 later" in page.content.decode()
    client.post("/admin/complaints/outbox/", {"action": "send_again", "_selected_action": [entry.pk]})
    entry.refresh_from_db()
    assert (entry.state, entry.attempts) == (("pending", 0) if may else ("failed", 5))
