"""Fixtures for the Open311 tests: a service with one attribute of every datatype, an API key, helpers that parse
both output formats and count what a request may have stored.
"""
import io
import xml.etree.ElementTree as ET

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.servers.basehttp import WSGIServer
from PIL import Image

from complaints.models import Complaint, ComplaintEvent, Photo
from open311.keys import api_key_issue
from open311.renderers import LIST_ITEMS
from routing.models import Category, CategoryAttribute, RoutingDecision

# Django's test server (live_server) listens with a backlog of 10 connections; 50 simultaneous clients would be
# refused before Django sees them. gunicorn's default backlog is 2048. Set before the session's live_server starts.
WSGIServer.request_queue_size = 128

# Inside the district Тверской (Red Square's north end) and inside Арбат.
TVERSKOY = (37.6208, 55.7539)
ARBAT = (37.5917, 55.7512)
SERVICE = "o311-pothole"


def make_service(code=SERVICE):
    category = Category.objects.create(
        code=code, name_i18n={"ru": "Яма на дороге", "en": "Pothole"}, group_i18n={"ru": "Дороги", "en": "Roads"},
        description_i18n={"ru": "Яма или выбоина", "en": "A hole in the road surface"}, keywords="яма, pothole",
        rule=Category.Rule.AREA, area_level_id="district", deadline_days=8)
    D = CategoryAttribute.Datatype
    rows = [
        ("kind", D.SINGLE, True, 1, [{"key": "hole", "name_i18n": {"ru": "Яма", "en": "Hole"}},
                                     {"key": "crack", "name_i18n": {"ru": "Трещина", "en": "Crack"}}]),
        ("lanes", D.MULTI, False, 2, [{"key": "left", "name_i18n": {"ru": "Левая", "en": "Left"}},
                                      {"key": "right", "name_i18n": {"ru": "Правая", "en": "Right"}}]),
        ("depth_cm", D.NUMBER, False, 3, []),
        ("seen_at", D.DATETIME, False, 4, []),
        ("plate", D.STRING, False, 5, []),
        ("details", D.TEXT, False, 6, []),
    ]
    for code_, datatype, required, order, values in rows:
        CategoryAttribute.objects.create(category=category, code=code_, datatype=datatype, required=required,
                                         order=order, description_i18n={"ru": f"Вопрос {code_}",
                                         "en": f"Question {code_}"}, values=values)
    CategoryAttribute.objects.create(category=category, code="note", datatype=D.STRING, variable=False,
                                     order=7, description_i18n={"ru": "Фото приветствуется", "en": "A photo helps"})
    return category


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Photos go to a directory of the test's own, not to the project's var/media."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def service(db):
    return make_service()


@pytest.fixture
def api_key(db):
    return api_key_issue(name="test-integrator")[1]


@pytest.fixture
def dispatcher(db):
    return get_user_model().objects.create_superuser("o311-dispatcher", password="x")


def form(api_key, **extra):
    """A valid POST form for the test service."""
    data = {"api_key": api_key, "service_code": SERVICE, "lat": str(TVERSKOY[1]), "long": str(TVERSKOY[0]),
            "description": "Глубокая яма у ГУМа", "attribute[kind]": "hole", "email": "ivan@example.org",
            "first_name": "Иван", "last_name": "Петров", "phone": "+7 900 000-00-00", "device_id": "dev-42",
            "account_id": "acct-7"}
    data.update(extra)
    return {k: v for k, v in data.items() if v is not None}


def image_file(name="photo.jpg", fmt="JPEG", size=(64, 48)):
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format=fmt)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type=f"image/{fmt.lower()}")


def stored_counts():
    return (Complaint.objects.count(), ComplaintEvent.objects.count(), RoutingDecision.objects.count(),
            Photo.objects.count())


def xml_data(content):
    """Parse an Open311 XML answer into the shape of its JSON twin (texts as strings, empty as "")."""
    root = ET.fromstring(content)
    return _convert(root)


def _convert(element):
    children = list(element)
    if element.tag in LIST_ITEMS:
        return [_convert(child) for child in children]
    if children:
        return {child.tag: _convert(child) for child in children}
    return element.text or ""


def as_xml_text(value):
    """JSON data with every leaf as the text the XML carries."""
    if isinstance(value, dict):
        return {k: as_xml_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_xml_text(v) for v in value]
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
