"""The public side of the answer cycle (issue 10): resolved complaints confirmed by their residents and those
closed in silence are counted apart in the statistics and told apart on the complaint page; the window's end is
shown while the resident may still answer; an answer waiting for a moderator is not on the page, the popup or
Open311."""
import datetime

from django.contrib.auth import get_user_model
from django.utils import timezone

from complaints.cycle import confirmations_close
from complaints.models import Complaint, State
from complaints.services import complaint_answer, complaint_confirm
from complaints.tracking import confirmation_key
from web.selectors import complaint_stats, statistics_refresh

from .conftest import TVERSKAYA


def answer(complaint, text="Убрали мусор"):
    user, _ = get_user_model().objects.get_or_create(username=f"t-web-cyc-{complaint.department_id}")
    complaint.department.staff.add(user)
    return complaint_answer(complaint=complaint, user=user, text=text)


def test_resolved_with_and_without_confirmation_are_counted_apart(report, client):
    confirmed, silent, waiting = (answer(report(point=(TVERSKAYA[0] + i * 1e-4, TVERSKAYA[1])))
                                  for i in range(3))
    complaint_confirm(tracking_code=confirmed.tracking_code, key=confirmation_key(confirmed))
    Complaint.objects.filter(pk=silent.pk).update(confirm_until=timezone.now() - datetime.timedelta(seconds=1))
    assert confirmations_close() == 1
    statistics_refresh()
    s = complaint_stats()
    assert (s["resolved_confirmed"], s["resolved_unconfirmed"]) == (1, 1)
    html = client.get("/stats/").content.decode()
    assert '<dd id="resolved-confirmed">1</dd>' in html and '<dd id="resolved-unconfirmed">1</dd>' in html
    assert 'id="resolved-unconfirmed"' in client.get(f"/c/{silent.tracking_code}/").content.decode()
    assert 'id="resolved-unconfirmed"' not in client.get(f"/c/{confirmed.tracking_code}/").content.decode()
    assert 'id="confirm-until"' in client.get(f"/c/{waiting.tracking_code}/").content.decode()


def test_an_answer_in_moderation_is_nowhere_public(report, client, category):
    category.moderate_answers = True
    category.save(update_fields=["moderate_answers"])
    complaint = answer(report(), text="Секретный черновик ответа")
    assert complaint.state == State.MODERATION
    for url in (f"/c/{complaint.tracking_code}/", f"/map/complaints/{complaint.pk}/",
                f"/open311/v2/requests/{complaint.pk}.json", f"/open311/v2/requests.json?service_request_id={complaint.pk}"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "Секретный черновик" not in response.content.decode(), url
