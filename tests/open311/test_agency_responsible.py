"""Open311 agency_responsible is the authority, by its own name, whatever the department is called (issue 12):
San Francisco's queues are departments whose names contain their authority's ("311 Service Request Queue - Hold"
of "311 Service Request Queue"), others shorten it or name it in another case or form."""
import pytest

from complaints.models import Complaint
from complaints.services import complaint_create
from facilities.models import Authority, Department

from .conftest import TVERSKOY
from .test_read import get_json, get_xml

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("authority_name, short_name, department_name", [
    ("311 Service Request Queue", "311 Service Request Queue", "311 Service Request Queue - Hold"),
    ("311 Service Request Queue", "311 SRQ", "311 Service Request Queue - Hold"),
    ("Public Works", "DPW", "DPW Street Cleaning"),
    ("Department of Public Works", "Public Works", "Public Works - Street Environmental Services"),
    ("Recology", "Recology", "RECOLOGY (Recology)"),
    ("Municipal Transportation Agency", "SFMTA", "Muni Work Queue"),
])
def test_agency_responsible_names_the_authority(client, service, authority_name, short_name, department_name):
    authority = Authority.objects.create(code=f"t-agency-{abs(hash(department_name + short_name))}",
                                         name=authority_name, short_name=short_name)
    department = Department.objects.create(authority=authority, code="queue", name=department_name)
    complaint = complaint_create(category=service, point=TVERSKOY, description="Pothole", source="test",
                                 attributes={"kind": "hole"})
    Complaint.objects.filter(pk=complaint.pk).update(department=department)
    for locale in ("en", "ru"):
        status, data = get_json(client, f"requests/{complaint.pk}", locale=locale)
        assert status == 200 and data[0]["agency_responsible"] == authority_name
        status, root = get_xml(client, f"requests/{complaint.pk}", locale=locale)
        assert root.find("request/agency_responsible").text == authority_name
    status, data = get_json(client, "requests", service_request_id=str(complaint.pk))
    assert [row["agency_responsible"] for row in data] == [authority_name]
