"""Issue 10 §5 on the server side: complaints at one spot can each be opened from one popup, and no page forbids
pinch zoom."""
import re

import pytest

from complaints.models import Complaint, State

from .conftest import TVERSKAYA


def offset(metres_east):
    """TVERSKAYA moved east by about `metres_east` metres."""
    return (TVERSKAYA[0] + metres_east / 63_000, TVERSKAYA[1])


def test_a_popup_lists_the_other_complaints_at_its_spot(client, report):
    here = report(description="первая")
    same = [report(point=offset(m), description=f"рядом {m}") for m in (0, 3, 8)]
    far = report(point=offset(40), description="дальше")
    hidden = report(point=offset(1))
    Complaint.objects.filter(pk=hidden.pk).update(state=State.HIDDEN)
    html = client.get(f"/map/complaints/{here.pk}/").content.decode()
    listed = [int(n) for n in re.findall(r'data-complaint="(\d+)"', html)]
    assert sorted(listed) == sorted(c.pk for c in same)
    assert far.pk not in listed and hidden.pk not in listed and here.pk not in listed
    assert all(c.tracking_code not in html for c in same)  # opened by number, never by its tracking code
    alone = client.get(f"/map/complaints/{far.pk}/").content.decode()
    assert "data-complaint=" not in alone


@pytest.mark.parametrize("url", ["/", "/report/", "/stats/"])
def test_no_page_forbids_pinch_zoom(client, db, url):
    html = client.get(url).content.decode()
    viewports = re.findall(r'<meta name="viewport"[^>]*>', html)
    assert viewports, url
    assert all("user-scalable=no" not in v and "maximum-scale" not in v for v in viewports), viewports


@pytest.mark.parametrize("url", ["/", "/report/", "/stats/"])
def test_every_page_has_a_heading(client, db, url):
    assert re.search(r"<h1[ >]", client.get(url).content.decode()), url
