"""The moderators' queue in the staff workspace (issue 10): moderators see every department's answers waiting for
them and publish or return each (with a reason); the deadline stays as it was; anyone else meets a 404."""
import pytest
from django.utils import timezone

from complaints.models import Answer, ComplaintEvent, State
from complaints.roles import ensure_moderators_group
from tests.complaints.factories import make_user


@pytest.fixture
def moderator(db):
    user = make_user("t-stf-moderator")
    user.groups.add(ensure_moderators_group())
    return user


@pytest.fixture
def waiting(make_ticket, departments):
    """Two answers waiting, one of each department."""
    out = []
    for key in "ab":
        ticket = make_ticket(state=State.MODERATION, department=departments[key])
        Answer.objects.create(complaint=ticket, department=ticket.department, text=f"Ответ отдела {key}",
                              state=Answer.State.MODERATION)
        out.append(ticket)
    return out


def test_the_queue_lists_every_departments_waiting_answers(client_for, moderator, waiting, make_ticket):
    other = make_ticket(state=State.IN_PROGRESS)
    page = client_for(moderator).get("/staff/moderation/")
    assert page.status_code == 200
    html = page.content.decode()
    for ticket in waiting:
        assert f'data-ticket="{ticket.pk}"' in html
    assert f'data-ticket="{other.pk}"' not in html
    assert "Ответ отдела a" in html and "Ответ отдела b" in html
    assert 'id="moderation-link"' in client_for(moderator).get("/staff/").content.decode()


@pytest.mark.parametrize("who", ["a", "b", "dispatcher", "data"])
@pytest.mark.parametrize("url", ["/staff/moderation/", "/staff/moderation/{pk}/", "/staff/moderation/{pk}/publish/",
                                 "/staff/moderation/{pk}/return/"])
def test_anyone_but_a_moderator_gets_a_404(who, url, client_for, staff, waiting):
    ticket = waiting[0]
    client = client_for(staff[who])
    path = url.format(pk=ticket.pk)
    response = client.post(path, {"reason": "нет"}) if url.endswith(("publish/", "return/")) else client.get(path)
    assert response.status_code == 404
    ticket.refresh_from_db()
    assert ticket.state == State.MODERATION and not ComplaintEvent.objects.filter(complaint=ticket).exists()
    assert 'id="moderation-link"' not in client.get("/staff/").content.decode()


@pytest.mark.parametrize("pk", ["0", "99999999", "9223372036854775808"])
def test_a_number_that_is_no_waiting_answer_is_a_404(pk, client_for, moderator, waiting):
    assert client_for(moderator).get(f"/staff/moderation/{pk}/").status_code == 404


def test_publish(client_for, moderator, waiting):
    ticket = waiting[0]
    deadline = ticket.deadline
    response = client_for(moderator).post(f"/staff/moderation/{ticket.pk}/publish/")
    assert response.status_code == 302 and response["Location"] == "/staff/moderation/"
    ticket.refresh_from_db()
    assert ticket.state == State.ANSWERED and ticket.deadline == deadline and ticket.confirm_until is not None
    assert Answer.objects.get(complaint=ticket).state == Answer.State.PUBLISHED


def test_return_with_a_reason(client_for, moderator, waiting):
    ticket = waiting[1]
    deadline = ticket.deadline
    response = client_for(moderator).post(f"/staff/moderation/{ticket.pk}/return/",
                                          {"reason": "Приложите фото результата"})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.state == State.IN_PROGRESS and ticket.deadline == deadline
    answer = Answer.objects.get(complaint=ticket)
    assert answer.state == Answer.State.RETURNED and answer.return_reason == "Приложите фото результата"
    event = ComplaintEvent.objects.get(complaint=ticket)
    assert event.kind == "returned" and not event.public


@pytest.mark.parametrize("reason", ["", "   ", "x" * 1001])
def test_return_without_a_usable_reason_is_a_400_beside_the_field(reason, client_for, moderator, waiting):
    ticket = waiting[0]
    response = client_for(moderator).post(f"/staff/moderation/{ticket.pk}/return/", {"reason": reason})
    assert response.status_code == 400
    assert 'data-error-for="reason"' in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.state == State.MODERATION


def test_the_department_sees_its_answer_waiting_and_returned(client_for, staff, waiting, moderator):
    ticket = waiting[0]
    page = client_for(staff["a"]).get(f"/staff/t/{ticket.pk}/").content.decode()
    assert "waiting for a moderator" in page
    client_for(moderator).post(f"/staff/moderation/{ticket.pk}/return/", {"reason": "Уточните сроки"})
    page = client_for(staff["a"]).get(f"/staff/t/{ticket.pk}/").content.decode()
    assert "returned by the moderator" in page and "Уточните сроки" in page
    assert 'id="answer-form"' in page  # in work again: the department answers anew


def test_an_answer_made_in_the_workspace_goes_to_the_queue(client_for, staff, moderator, make_ticket, categories):
    category = categories["yard-rubbish"]
    category.moderate_answers = True
    category.save(update_fields=["moderate_answers"])
    ticket = make_ticket(state=State.IN_PROGRESS, deadline_in=-timezone.timedelta(hours=1))
    deadline = ticket.deadline
    response = client_for(staff["a"]).post(f"/staff/t/{ticket.pk}/answer/", {"text": "Вывезли мусор"})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.state == State.MODERATION and ticket.deadline == deadline
    assert f'data-ticket="{ticket.pk}"' in client_for(moderator).get("/staff/moderation/").content.decode()


def test_the_ticket_page_shows_volunteers_checks_with_their_photo_to_its_department_only(
        client_for, staff, make_ticket, districts, media):
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile

    from complaints.models import Volunteer
    from complaints.services import complaint_volunteer_check
    from tests.complaints.factories import image_bytes

    ticket = make_ticket(state=State.ANSWERED, answered_at=timezone.now())
    resident = get_user_model().objects.create_user(username="t-stf-volunteer")
    volunteer = Volunteer.objects.create(user=resident, approved=True)
    volunteer.districts.add(districts["Тверской"])
    check = complaint_volunteer_check(complaint_id=ticket.pk, user=resident, verdict="not_fixed", note="Яма на месте",
                                      photo=SimpleUploadedFile("k.png", image_bytes("PNG"), content_type="image/png"))
    page = client_for(staff["a"]).get(f"/staff/t/{ticket.pk}/").content.decode()
    assert 'data-verdict="not_fixed"' in page and "Яма на месте" in page
    photo_url = f"/staff/t/{ticket.pk}/checks/{check.pk}/photo/"
    assert photo_url in page
    response = client_for(staff["a"]).get(photo_url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert client_for(staff["b"]).get(photo_url).status_code == 404
    assert client_for(resident).get(photo_url).status_code == 404
