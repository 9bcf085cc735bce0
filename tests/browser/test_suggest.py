"""The report form's category suggestion in the browser: typing the description pre-selects the best category and
offers the next ones; a category the resident picked by hand is never changed."""
import pytest
from playwright.sync_api import expect

from complaints.models import Complaint

from .steps import choose_place, fill_required_attributes, next_step, open_map

RED_SQUARE = (55.7539, 37.6208)  # lat, lon: district Тверской


def start_report(page, shots):
    open_map(page, lat=RED_SQUARE[0], lon=RED_SQUARE[1], zoom=17)
    choose_place(page, *RED_SQUARE)
    next_step(page)  # the step with the description and the category


def test_typing_pre_selects_the_best_category_and_offers_the_next(demo_city, page, shots):
    start_report(page, shots)
    assert page.locator("#id_category").input_value() == ""
    page.locator("#id_description").press_sequentially("Светофор на перекрёстке не работает", delay=10)
    expect(page.locator("#id_category")).to_have_value("road-traffic-light")
    expect(page.locator("#suggestions")).to_be_visible()
    expect(page.locator("#suggestions .suggest-picked")).to_have_text("Выбрано по вашему описанию.")
    others = page.locator("#suggestions .suggest-other")
    expect(others).not_to_have_count(0)
    shots("suggested")
    # the text changes: so does the choice (it was the suggestion's, not the resident's)
    page.fill("#id_description", "")
    page.locator("#id_description").press_sequentially("Сломаны качели на детской площадке", delay=10)
    expect(page.locator("#id_category")).to_have_value("yard-playground")
    # the category's own questions are there, for the next step (map.js heard the change)
    expect(page.locator("#attributes [name='attribute[equipment]']")).to_have_count(1)
    # one of the others, taken: the resident's choice from then on
    other = others.first
    code = other.get_attribute("data-code")
    other.click()
    expect(page.locator("#id_category")).to_have_value(code)
    page.locator("#id_description").press_sequentially(" и горка", delay=10)
    page.wait_for_timeout(800)
    expect(page.locator("#id_category")).to_have_value(code)
    next_step(page)
    fill_required_attributes(page)
    next_step(page)
    page.click("#report-submit")
    expect(page.locator("#report-result")).to_be_visible()
    shots("sent")
    assert Complaint.objects.order_by("-id").first().category.code == code


def test_a_category_picked_by_hand_stays(demo_city, page, shots):
    start_report(page, shots)
    page.select_option("#id_category", "yard-rubbish")
    page.locator("#id_description").press_sequentially("Светофор на перекрёстке не работает", delay=10)
    expect(page.locator("#suggestions .suggest-other[data-code='road-traffic-light']")).to_be_visible()
    assert page.locator("#id_category").input_value() == "yard-rubbish"
    expect(page.locator("#suggestions .suggest-picked")).to_have_count(0)
