"""The answer cycle in a real browser (issue 10): a department answers where the catalogue wants moderation, a
moderator returns the answer with a reason (the deadline stays) and the department sees why; a volunteer signs in,
finds a recently answered complaint of their district, records a failed on-site check with a photo, and the
complaint is reopened to its department. Screenshots under test-output/browser/<test name>/."""
import io

import pytest
from django.contrib.auth import get_user_model
from PIL import Image
from playwright.sync_api import expect

from complaints.models import Answer, Complaint, State, Volunteer, VolunteerCheck
from complaints.roles import ensure_moderators_group
from complaints.services import complaint_answer, complaint_create
from routing.models import Category

PASSWORD = "t-browser-cycle-Pa55"
TVERSKAYA = (37.6056, 55.7655)


def user(username, **fields):
    u = get_user_model().objects.create_user(username=username, password=PASSWORD, **fields)
    return u


def log_in(page, path, login, submit):
    page.set_default_timeout(30_000)  # a shared, loaded machine: the first pages of a fresh live server are slow
    page.goto(path)
    page.fill("#id_username", login)
    page.fill("#id_password", PASSWORD)
    page.click(submit)


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "still-broken.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), "brown").save(buffer, format="JPEG")
    path.write_bytes(buffer.getvalue())
    return path


def test_a_moderator_returns_an_answer(demo_city, page, shots):
    category = Category.objects.get(code="yard-rubbish")
    category.moderate_answers = True
    category.save(update_fields=["moderate_answers"])
    complaint = complaint_create(category=category, point=TVERSKAYA, description="Мусор у подъезда")
    deadline = complaint.deadline
    clerk = user("t-browser-clerk", is_staff=True)
    complaint.department.staff.add(clerk)
    moderator = user("t-browser-moderator", is_staff=True)
    moderator.groups.add(ensure_moderators_group())

    # The department answers from its ticket page: the answer waits for a moderator.
    log_in(page, "/staff/login/", clerk.username, "#login-submit")
    page.goto(f"/staff/t/{complaint.pk}/")
    page.fill("#answer-form textarea[name=text]", "Мусор вывезен")
    page.click("#answer-submit")
    expect(page.locator(".answer-state")).to_be_visible()
    shots("answer-waits")
    assert Complaint.objects.get(pk=complaint.pk).state == State.MODERATION
    page.goto(f"/c/{complaint.tracking_code}/")
    expect(page.locator("main")).not_to_contain_text("Мусор вывезен")  # not public yet
    page.goto("/staff/")
    page.click("#logout")

    # The moderator finds it in the queue and returns it with a reason.
    log_in(page, "/staff/login/", moderator.username, "#login-submit")
    page.click("#moderation-link")
    row = page.locator(f'#moderation-list tr[data-ticket="{complaint.pk}"]')
    expect(row).to_contain_text("Мусор вывезен")
    shots("queue")
    row.locator("a").click()
    page.click("#return-submit")  # no reason: refused beside the field
    expect(page.locator('[data-error-for="reason"]')).to_be_visible()
    page.fill("#return-form textarea[name=reason]", "Приложите фото вывоза")
    page.click("#return-submit")
    expect(page.locator("#moderation-empty")).to_be_visible()
    shots("returned")
    after = Complaint.objects.get(pk=complaint.pk)
    assert after.state == State.IN_PROGRESS and after.deadline == deadline
    assert Answer.objects.get(complaint=complaint).state == Answer.State.RETURNED
    page.click("#logout")

    # The department sees why, and may answer again.
    log_in(page, "/staff/login/", clerk.username, "#login-submit")
    page.goto(f"/staff/t/{complaint.pk}/")
    expect(page.locator(".answer-returned")).to_contain_text("Приложите фото вывоза")
    expect(page.locator("#answer-form")).to_be_visible()
    shots("department-sees-why")


def test_a_volunteers_failed_check_reopens_the_complaint(demo_city, page, shots, photo):
    complaint = complaint_create(category=Category.objects.get(code="yard-rubbish"), point=TVERSKAYA,
                                 description="Мусор у подъезда", email="reporter@example.org")
    clerk = user("t-browser-clerk2", is_staff=True)
    complaint.department.staff.add(clerk)
    complaint = complaint_answer(complaint=complaint, user=clerk, text="Мусор вывезен")
    department = complaint.department
    resident = user("t-browser-volunteer")
    volunteer = Volunteer.objects.create(user=resident, approved=True)
    volunteer.districts.add(complaint.area)

    log_in(page, "/volunteer/login/", resident.username, "#volunteer-login-submit")
    item = page.locator(f'#volunteer-list li[data-complaint="{complaint.pk}"]')
    expect(item).to_be_visible()
    shots("volunteer-list")
    item.locator("a").click()
    expect(page.locator("main")).to_contain_text("Мусор вывезен")
    expect(page.locator("main")).not_to_contain_text("reporter@example.org")
    page.check("#check-form input[name=verdict][value=not_fixed]")
    page.fill("#check-form textarea[name=note]", "Мусор на месте")
    page.set_input_files("#check-form input[name=photo]", str(photo))
    shots("check-filled")
    page.click("#check-submit")
    expect(page.locator(".alert-success")).to_be_visible()
    shots("check-recorded")

    after = Complaint.objects.get(pk=complaint.pk)
    assert after.state == State.REOPENED and after.department == department and after.reopen_count == 1
    check = VolunteerCheck.objects.get(complaint=complaint)
    assert check.verdict == "not_fixed" and check.department == department and check.photo
    # The public page shows it reopened, with the check in its history; no longer on the volunteer's list.
    page.goto(f"/c/{complaint.tracking_code}/")
    expect(page.locator(".timeline")).to_contain_text("Мусор на месте")
    page.goto("/volunteer/")
    expect(page.locator(f'li[data-complaint="{complaint.pk}"]')).to_have_count(0)
