"""Against a real running server (pytest-django's live_server): an independent Open311 client, and 50
simultaneous POSTs, each stored and routed exactly once.
"""
import threading
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from civicbot.http import HttpError, HttpTransport, RateLimiter
from civicbot.open311 import Open311Client
from civicbot.registry import Endpoint

from complaints.models import Complaint, ComplaintEvent
from open311.keys import api_key_issue

from .conftest import SERVICE, TVERSKOY, make_service


@pytest.fixture
def live_city(demo_city, live_server):
    """The demo city, the test service and a key, committed where the server's threads can see them."""
    make_service()
    return live_server.url + "/open311/v2", api_key_issue(name="live-integrator")[1]


def civicbot_client(base_url, fmt="json"):
    endpoint = Endpoint(id="ourcity-test", name="Our City (test)", base_url=base_url, write=True,
                        api_key_required_for_write=True)
    # No politeness delay against our own test server.
    transport = HttpTransport(timeout=30, rate_limiter=RateLimiter(min_interval=0))
    return Open311Client(endpoint, transport=transport, fmt=fmt)


def test_civicbot_creates_requests_and_reads_them_back(live_city):
    base_url, key = live_city
    client = civicbot_client(base_url)
    services = client.list_services()
    assert SERVICE in [s["service_code"] for s in services]
    definition = client.get_service_definition(SERVICE)
    assert {a["code"] for a in definition["attributes"]} >= {"kind", "lanes", "depth_cm"}

    # validate_remote: civicbot checks the payload against our services list and definition before it sends.
    prepared = client.create_request(
        SERVICE, dry_run=False, confirm="SEND", api_key=key, validate_remote=True,
        lat=TVERSKOY[1], lng=TVERSKOY[0], description="Яма у ГУМа (civicbot)", email="bot@example.org",
        attributes={"kind": "crack", "lanes": ["left", "right"], "depth_cm": "7"})
    assert prepared.dry_run is False
    created = prepared.response
    assert isinstance(created, list) and created[0]["service_request_id"]
    code = created[0]["service_request_id"]
    complaint = Complaint.objects.get()
    assert code == str(complaint.pk)  # the id, never the tracking code (the resident's key)

    request = client.get_request(code)
    assert request["service_request_id"] == code and request["service_code"] == SERVICE
    assert request["status"] == "open" and request["description"] == "Яма у ГУМа (civicbot)"
    assert request["lat"] == pytest.approx(TVERSKOY[1]) and request["long"] == pytest.approx(TVERSKOY[0])
    assert request["agency_responsible"]
    assert "bot@example.org" not in str(request)
    listed = client.list_requests(service_code=SERVICE, status="open", service_request_ids=[code])
    assert [r["service_request_id"] for r in listed] == [code]

    complaint.refresh_from_db()
    assert complaint.attributes == {"kind": "crack", "lanes": ["left", "right"], "depth_cm": 7}
    assert client.get_token(complaint.token) == [{"service_request_id": code, "token": complaint.token}]

    # A request civicbot's own checks accept but the city refuses is a clean 400 in the spec's error format.
    with pytest.raises(HttpError) as refused:
        client.create_request(SERVICE, dry_run=False, confirm="SEND", api_key=key, lat=48.85, lng=2.35,
                              attributes={"kind": "hole"})
    assert refused.value.status == 400 and '"code":400' in refused.value.body.replace(" ", "")
    with pytest.raises(HttpError) as forbidden:
        client.create_request(SERVICE, dry_run=False, confirm="SEND", api_key="not-a-key", lat=TVERSKOY[1],
                              lng=TVERSKOY[0], attributes={"kind": "hole"})
    assert forbidden.value.status == 403
    assert Complaint.objects.count() == 1


def test_50_simultaneous_posts_are_each_stored_and_routed_once(live_city):
    base_url, key = live_city
    n = 50
    start = threading.Barrier(n)

    def post(i):
        body = urllib.parse.urlencode({
            "api_key": key, "service_code": SERVICE, "lat": TVERSKOY[1] + i * 1e-5, "long": TVERSKOY[0],
            "description": f"concurrent {i}", "attribute[kind]": "hole"}).encode()
        request = urllib.request.Request(base_url + "/requests.json", data=body, method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        start.wait(timeout=30)  # all 50 go at once
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()

    with ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(post, range(n)))
    assert [status for status, _ in results] == [201] * n
    complaints = Complaint.objects.filter(description__startswith="concurrent ")
    assert complaints.count() == n
    assert len(set(complaints.values_list("tracking_code", flat=True))) == n
    for kind in ("created", "routed"):
        per_complaint = ComplaintEvent.objects.filter(complaint__in=complaints, kind=kind).values_list(
            "complaint_id", flat=True)
        assert sorted(per_complaint) == sorted(complaints.values_list("id", flat=True)), kind
    assert complaints.exclude(state="assigned").count() == 0
    assert complaints.filter(decision__isnull=True).count() == 0
