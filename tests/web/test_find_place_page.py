"""The map page carries the place search box (on the map and in the report form) and the list of the complaints
near a point (beside the map and in the report form): labelled for screen readers, pointing at the JSON endpoints,
their scripts served as our own static files."""
import re

import pytest
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db


@pytest.fixture
def page(client):
    return client.get("/", headers={"accept-language": "ru"}).content.decode()


@pytest.mark.parametrize("prefix, mode", [("map", "browse"), ("report", "report")])
def test_a_search_box_labelled_and_keyboard_ready(page, prefix, mode):
    box = re.search(rf'<div class="place-search[^>]*data-mode="{mode}"[^>]*>(.*?)</div>\s*</div>', page, re.S)
    assert box, f"no {mode} search box"
    html = box.group(0)
    assert 'data-url="/api/v1/places"' in html
    assert f'<label class="form-label" for="{prefix}-place-q">' in html
    field = re.search(rf'<input[^>]+id="{prefix}-place-q"[^>]*>', html).group(0)
    for attribute in ('role="combobox"', 'aria-autocomplete="list"', f'aria-controls="{prefix}-place-results"',
                      'maxlength="200"', f'aria-describedby="{prefix}-place-status"'):
        assert attribute in field, attribute
    assert f'id="{prefix}-place-results" role="listbox"' in html
    assert f'id="{prefix}-place-status" aria-live="polite"' in html


@pytest.mark.parametrize("prefix, mode, title", [("map", "browse", "Открытые жалобы рядом"),
                                                 ("report", "report", "Об этом уже сообщили рядом?")])
def test_a_nearby_list_with_a_heading_and_live_status(page, prefix, mode, title):
    section = re.search(rf'<section class="nearby[^>]*data-mode="{mode}".*?</section>', page, re.S).group(0)
    assert 'data-url="/api/v1/nearby"' in section
    assert f'aria-labelledby="{prefix}-nearby-title"' in section
    assert f'<h2 class="h6" id="{prefix}-nearby-title">{title}</h2>' in section
    assert 'aria-live="polite"' in section and '<ol class="nearby-list' in section
    assert "%(m)s" in section and "data-follow=" in section  # the texts the script fills in, translated


def test_the_scripts_are_our_static_files(page, settings):
    for name in ("web/place-search.js", "web/nearby.js"):
        assert f'<script src="{settings.STATIC_URL}{name}"></script>' in page
        assert finders.find(name)


def test_the_report_search_box_is_in_the_place_step(page):
    """The report's first step (shown before any point is chosen) holds the search: the address is how a keyboard
    chooses the place; the nearby list follows the category."""
    place = re.search(r'<fieldset class="step" data-step="place".*?</fieldset>', page, re.S).group(0)
    category = re.search(r'<fieldset class="step" data-step="category".*?</fieldset>', page, re.S).group(0)
    assert 'id="report-place-q"' in place and page.count('id="report-place-q"') == 1
    assert 'id="report-nearby' in category
