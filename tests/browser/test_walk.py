"""The whole loop of issue 10 walked in a real browser, once at desktop size and once at phone size (390 x 844),
by five people each in a browser context of their own, with every mail sent by a real prefork Celery worker (no
eager mode) over real SMTP (aiosmtpd) - the fixtures of tests/queue - and its links followed as they were mailed:

1. resident A reports a problem inside the demo school's building through the report's steps, with an address;
   the tracking mail brings the code, the confirmation key and the page's link;
2. resident B reports the same problem there: the report's step lists A's complaint nearby, B follows it instead
   of filing (nothing filed), confirms the follow by the mailed link (double opt-in);
3. the school's staff member takes it into work and answers in the staff workspace: A's mail carries the answer
   and A's page's link, B's the answer and the public page's (never the tracking code);
4. A opens the mailed link and confirms with the mailed key: resolved, and B gets the next mail;
5. a volunteer's failed on-site check (volunteer pages) reopens it to the school, and both are told;
6. where the catalogue now wants moderation, the school answers again; the moderator returns the answer with a
   reason from the moderation queue, the deadline unchanged; nothing of the returned answer is ever mailed or
   public, and the school sees why.

axe-core checks every page on the way: the map, each report step, the complaint page (with an answer), the
public page, the staff list, the ticket, the volunteer's pages and the moderation queue. Screenshots under
test-output/browser/<test name>/<person>-NN-step.png.
"""
import email
import email.policy
import re
import warnings

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from complaints.models import Answer, Complaint, Follow, Outbox, State, Subscription
from geo_ourcity.demo import DEMO_PASSWORD
from routing.models import Category
from staff.demo import demo_school
from tests.queue.conftest import Worker, smtp, wait_until, worker_env  # noqa: F401 - the queue tests' fixtures

from .axe import assert_accessible, use_axe
from .conftest import OUTPUT, page_checks, watched_page
from .steps import choose_place, fill_required_attributes, next_step, open_map
from .test_staff_school import school_point

pytestmark = pytest.mark.django_db(transaction=True)

SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
CATEGORY = "school-building"  # the demo school's building: one required question ("what is damaged")
LINK = re.compile(r"https?://[^\s<>\"]+")
MAIL_WAIT = 90  # seconds: a shared, loaded machine


@pytest.fixture(scope="module")
def walk_worker(worker_env, live_server):  # noqa: F811 - worker_env is tests/queue's fixture, imported above
    """A real prefork worker whose mails link to this live server (OURCITY_SITE_URL: the address it is served on)."""
    env = {**worker_env["env"], "OURCITY_SITE_URL": live_server.url}
    worker = Worker(env, worker_env["dir"] / "walk-worker.log")
    worker.wait_ready()
    yield worker
    worker.stop()


class Person:
    """One person's browser (a context of their own: their own cookies), with their screenshots."""

    def __init__(self, browser, base_url, viewport, folder, name):
        self.page = watched_page(browser, base_url, viewport)
        self.page.set_default_timeout(30_000)  # a shared, loaded machine
        use_axe(self.page)
        self.folder, self.name, self.taken = folder, name, 0

    def shot(self, step):
        self.taken += 1
        try:
            self.page.screenshot(path=str(self.folder / f"{self.name}-{self.taken:02d}-{step}.png"))
        except PlaywrightError as exc:  # a record for people, not a check (see conftest's `shots`)
            warnings.warn(f"no screenshot {self.name} {step}: {exc}", stacklevel=2)

    def axe(self, where):
        self.page.wait_for_load_state("load")
        assert_accessible(self.page, f"{where} ({self.name})")


@pytest.fixture
def people(request, browser, live_server):
    folder = OUTPUT / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    made = []

    def person(name, size):
        p = Person(browser, live_server.url, SIZES[size], folder, name)
        made.append(p)
        return p

    yield person
    for p in made:
        p.page.context.close()
    for p in made:
        page_checks(p.page)


# --- the mailbox -------------------------------------------------------------------------------------------

def delivered(smtp, to):  # noqa: F811
    """[(subject, body)] of the mails the SMTP server accepted for `to`, in order."""
    with smtp.lock:
        raw = list(smtp.delivered)
    mails = []
    for text in raw:
        # as bytes: a str parse would give an 8-bit UTF-8 body back as raw-unicode-escape
        message = email.message_from_bytes(text.encode("utf-8"), policy=email.policy.default)
        if to in str(message["To"]):
            mails.append((str(message["Subject"]).strip(), message.get_body(("plain",)).get_content()))
    return mails


def next_mail(smtp, to, seen, *, containing):  # noqa: F811
    """The first mail to `to` after the `seen` first ones that contains every text of `containing`; waits."""
    found = []

    def arrived():
        found[:] = [m for m in delivered(smtp, to)[seen:] if all(t in m[0] + "\n" + m[1] for t in containing)]
        return bool(found)

    try:
        wait_until(arrived, MAIL_WAIT, f"a mail to {to} with {containing}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; it got: {delivered(smtp, to)[seen:]}") from None
    return found[0]


def links(body, part):
    return [u.rstrip(".,;)") for u in LINK.findall(body) if part in u]


def log_in_staff(person, login):
    page = person.page
    page.goto("/staff/login/")
    page.fill("#id_username", login)
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("#login-submit", timeout=60_000)  # a password hash takes its time on a loaded machine
    expect(page.locator("#whoami")).to_contain_text(login, timeout=60_000)


@pytest.mark.parametrize("size", SIZES)
def test_the_whole_loop(demo_city, walk_worker, smtp, people, live_server, size):  # noqa: F811
    smtp.reset()
    school = demo_school()
    lat, lon = school_point(school)
    a_mail, b_mail = f"resident-a-{size}@example.org", f"resident-b-{size}@example.org"

    # 1. Resident A reports through the steps, with an address; axe-core on the map and each step.
    a = people("a", size)
    open_map(a.page, lat=lat, lon=lon, zoom=18)
    a.axe("the map")
    choose_place(a.page, lat, lon)
    a.axe("the place step")
    next_step(a.page)
    a.page.fill("#id_description", "Разбито окно на первом этаже школы")
    a.page.select_option("#id_category", CATEGORY)
    a.axe("the category step")
    next_step(a.page)
    fill_required_attributes(a.page)
    a.axe("the details step")
    next_step(a.page)
    a.page.fill("#id_email", a_mail)
    a.axe("the contact step")
    a.shot("contact")
    a.page.click("#report-submit")
    expect(a.page.locator("#report-result")).to_be_visible(timeout=60_000)
    a.axe("the result")
    a.shot("sent")
    code = a.page.locator("#result-code").inner_text().strip()
    key = a.page.locator("#result-key").inner_text().strip()
    complaint = Complaint.objects.get(tracking_code=code)
    number = complaint.pk
    assert complaint.department.authority_id == school.pk and complaint.email == a_mail

    _subject, tracking = next_mail(smtp, a_mail, 0, containing=[code, key])
    assert f"{live_server.url}/c/{code}/" in links(tracking, "/c/"), tracking

    # 2. Resident B reports the same problem there: it is listed nearby; B follows it instead of filing.
    b = people("b", size)
    open_map(b.page, lat=lat, lon=lon, zoom=18)
    choose_place(b.page, lat, lon)
    next_step(b.page)
    b.page.fill("#id_description", "Разбито окно в школе")
    b.page.select_option("#id_category", CATEGORY)
    item = b.page.locator("#report .nearby .nearby-item")
    expect(item).to_have_count(1)
    expect(item).to_contain_text(f"№ {number}")
    b.axe("the category step with the nearby list")
    b.shot("nearby")
    item.locator(".nearby-follow").click()
    expect(b.page).to_have_url(re.compile(rf"/n/{number}/#follow$"))
    assert code not in b.page.content()  # the public page never shows the reporter's key of it
    b.axe("the public page")
    b.page.fill("#follow-email", b_mail)
    b.page.click(".follow-form button[type=submit]")
    expect(b.page.get_by_role("alert")).to_contain_text("Проверьте почту")
    b.shot("asked-to-follow")
    assert Complaint.objects.count() == 1  # B filed nothing
    assert Follow.objects.get(complaint_id=number, email=b_mail).state == Subscription.PENDING
    _subject, confirm = next_mail(smtp, b_mail, 0, containing=[f"{number}", "/follow/"])
    (follow_link,) = links(confirm, "/follow/")
    assert follow_link.startswith(live_server.url)
    b.page.goto(follow_link)
    expect(b.page.get_by_role("alert")).to_contain_text("Теперь вы следите")
    b.shot("following")
    assert Follow.objects.get(complaint_id=number, email=b_mail).state == Subscription.ACTIVE

    # 3. The school's staff member finds it at the top of the list, takes it into work and answers.
    staff = people("staff", size)
    log_in_staff(staff, "school")
    expect(staff.page.locator("#tickets tbody tr").first).to_have_attribute("data-number", str(number))
    staff.axe("the staff list")
    staff.shot("list")
    staff.page.locator("#tickets tbody tr").first.locator("a.code").click()
    expect(staff.page.locator("#ticket-number")).to_have_text(f"№ {number}")
    staff.axe("the ticket")
    b_seen, a_seen = len(delivered(smtp, b_mail)), len(delivered(smtp, a_mail))
    staff.page.click("#take-submit")
    expect(staff.page.locator("#ticket-state")).to_contain_text("в работе")
    answer = "Окно заменено, класс снова открыт."
    staff.page.fill("#answer-form textarea[name=text]", answer)
    staff.page.click("#answer-submit")
    expect(staff.page.locator(".alert-success")).to_contain_text("Ответ опубликован")
    staff.axe("the answered ticket")
    staff.shot("answered")

    # Both hear of it: the reporter with their page's link, the follower with the public page's.
    next_mail(smtp, b_mail, b_seen, containing=[f"№ {number}", "в работу"])
    _subject, a_answer = next_mail(smtp, a_mail, a_seen, containing=[answer])
    _subject, b_answer = next_mail(smtp, b_mail, b_seen, containing=[answer])
    assert code not in b_answer and key not in b_answer and key not in a_answer
    assert f"{live_server.url}/n/{number}/" in links(b_answer, f"/n/{number}/"), b_answer
    assert links(a_answer, "/unsubscribe/") and links(b_answer, "/unsubscribe/")

    # 4. A follows the mailed link and confirms with the mailed key.
    (page_link,) = links(a_answer, "/c/")
    assert page_link == f"{live_server.url}/c/{code}/"
    a.page.goto(page_link)
    expect(a.page.locator("main")).to_contain_text(answer)
    a.axe("the complaint page with its answer")
    b_seen = len(delivered(smtp, b_mail))
    a.page.fill("#confirm-key", re.search(r"\b" + re.escape(key) + r"\b", tracking).group(0))
    a.page.click(f"form[action$='/c/{code}/confirm/'] button")
    expect(a.page.locator(".alert-success")).to_be_visible()
    a.shot("confirmed")
    assert Complaint.objects.get(pk=number).state == State.RESOLVED
    next_mail(smtp, b_mail, b_seen, containing=[f"№ {number}", "Проблема решена"])

    # 5. A volunteer's failed check reopens it to the school; both are told.
    volunteer = people("volunteer", size)
    volunteer.page.goto("/volunteer/login/")
    volunteer.page.fill("#id_username", "volunteer")
    volunteer.page.fill("#id_password", DEMO_PASSWORD)
    volunteer.page.click("#volunteer-login-submit", timeout=60_000)
    row = volunteer.page.locator(f'#volunteer-list li[data-complaint="{number}"]')
    expect(row).to_be_visible(timeout=60_000)
    volunteer.axe("the volunteer's list")
    row.locator("a").click()
    expect(volunteer.page.locator("main")).to_contain_text(answer)
    expect(volunteer.page.locator("main")).not_to_contain_text(a_mail)
    volunteer.page.check("#check-form input[name=verdict][value=not_fixed]")
    volunteer.page.fill("#check-form textarea[name=note]", "Окно по-прежнему разбито")
    volunteer.axe("the volunteer's check form")
    volunteer.shot("check")
    b_seen, a_seen = len(delivered(smtp, b_mail)), len(delivered(smtp, a_mail))
    volunteer.page.click("#check-submit")
    expect(volunteer.page.locator(".alert-success")).to_be_visible()
    after = Complaint.objects.get(pk=number)
    assert after.state == State.REOPENED and after.department.authority_id == school.pk
    next_mail(smtp, b_mail, b_seen, containing=[f"№ {number}", "Окно по-прежнему разбито"])
    next_mail(smtp, a_mail, a_seen, containing=[f"№ {number}", "Окно по-прежнему разбито"])

    # 6. The catalogue now wants moderation: the school answers again and the moderator returns it.
    Category.objects.filter(code=CATEGORY).update(moderate_answers=True)
    deadline = Complaint.objects.get(pk=number).deadline
    staff.page.goto(f"/staff/t/{number}/")
    staff.page.click("#take-submit")
    expect(staff.page.locator("#ticket-state")).to_contain_text("в работе")
    held = "Окно заменено ещё раз."
    staff.page.fill("#answer-form textarea[name=text]", held)
    staff.page.click("#answer-submit")
    expect(staff.page.locator(".answer-state")).to_be_visible()
    assert Complaint.objects.get(pk=number).state == State.MODERATION
    staff.page.click("#logout")

    moderator = staff
    log_in_staff(moderator, "moderator")
    moderator.page.click("#moderation-link")
    queued = moderator.page.locator(f'#moderation-list tr[data-ticket="{number}"]')
    expect(queued).to_contain_text(held)
    moderator.axe("the moderation queue")
    moderator.shot("queue")
    queued.locator("a").click()
    moderator.axe("a moderated answer")
    reason = "Приложите фото нового окна"
    moderator.page.fill("#return-form textarea[name=reason]", reason)
    moderator.page.click("#return-submit")
    expect(moderator.page.locator("#moderation-empty")).to_be_visible()
    moderator.shot("returned")
    after = Complaint.objects.get(pk=number)
    assert after.state == State.IN_PROGRESS and after.deadline == deadline
    assert Answer.objects.filter(complaint_id=number, text=held).get().state == Answer.State.RETURNED
    moderator.page.click("#logout")
    log_in_staff(staff, "school")
    staff.page.goto(f"/staff/t/{number}/")
    expect(staff.page.locator(".answer-returned")).to_contain_text(reason)
    staff.shot("sees-why")
    a.page.goto(f"/c/{code}/")
    expect(a.page.locator("main")).not_to_contain_text(held)

    # Everything due is sent, none failed, and nothing of the held answer or its return reached anyone.
    wait_until(lambda: not Outbox.objects.filter(state=Outbox.State.PENDING).exists(), MAIL_WAIT,
               "an empty outbox")
    assert not Outbox.objects.filter(state=Outbox.State.FAILED).exists()
    for to in (a_mail, b_mail):
        for subject, body in delivered(smtp, to):
            assert held not in body and reason not in body, (to, subject, body)
