"""A resident follows a complaint in a real browser, at desktop and at phone size: the public page by number says
"me too" (the count goes up) and asks to follow by e-mail; the mailed confirmation link (as the worker would render
it) turns the follow on; the follow box, "my reports" and the alerts form fit a phone's width."""
import re

import pytest
from django.utils import translation
from playwright.sync_api import expect

from complaints.models import Follow, Outbox, Subscription
from complaints.outbox import _kinds
from complaints.services import complaint_create
from routing.models import Category
from tests.complaints.factories import MOSCOW

pytestmark = pytest.mark.django_db(transaction=True)
PHONE = {"width": 390, "height": 844}


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_a_resident_supports_and_follows_a_complaint(demo_city, page, live_server, shots, size):
    if size == "phone":
        page.set_viewport_size(PHONE)
    complaint = complaint_create(category=Category.objects.get(code="yard-rubbish"), point=MOSCOW,
                                 description="Мусор у подъезда", email="owner@example.org")
    page.goto(f"/n/{complaint.pk}/")
    shots("page")
    expect(page.locator("h1")).to_be_visible()
    assert complaint.tracking_code not in page.content()
    page.get_by_role("button", name="У меня тоже").click()
    expect(page.locator(".support-count")).to_contain_text("1 житель")
    page.get_by_label(re.compile("Ваша почта")).fill("neighbour@example.org")
    page.get_by_role("button", name="Следить по почте").click()
    expect(page.get_by_role("alert")).to_contain_text("Проверьте почту")
    shots("asked")
    row = Outbox.objects.get(kind="follow-confirm")
    with translation.override(row.language or "ru"):
        link = next(w for w in _kinds()[row.kind](row).body.split() if "/follow/" in w)
    page.goto(re.sub(r"^https?://[^/]+", "", link))
    expect(page.get_by_role("alert")).to_contain_text("Теперь вы следите")
    expect(page.locator(".followers-count")).to_contain_text("1")
    assert Follow.objects.get(complaint=complaint).state == Subscription.ACTIVE
    # This feature's own parts fit the width (the site's header at phone size is the phone layout's work).
    for path, part in ((f"/n/{complaint.pk}/", ".follow-box"), ("/account/", ".account-page"),
                       ("/alerts/", ".alerts-page")):
        page.goto(path)
        right, width = page.evaluate(f"[document.querySelector('{part}').getBoundingClientRect().right, "
                                     "window.innerWidth]")
        assert right <= width, (path, right, width)
    shots("account")
