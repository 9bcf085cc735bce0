"""The project's own 400, 403, 404, 500 and 503 pages, in the visitor's language (Accept-Language or the language
switch's cookie), on the residents' pages, the staff workspace and the admin; and Open311's error list for any
path under /open311/, in the format its suffix names."""
import json
import xml.etree.ElementTree as ET

import pytest
from django.conf import settings
from django.test import Client

from tests.complaints.factories import make_departments, make_user

pytestmark = pytest.mark.django_db

TEXTS = {
    "ru": {400: "Неверный запрос", 403: "Доступ запрещён", 404: "Страница не найдена", 500: "Что-то пошло не так",
           503: "Сервис временно недоступен"},
    "en": {400: "Bad request", 403: "Access denied", 404: "Page not found", 500: "Something went wrong",
           503: "Service temporarily unavailable"},
}
# How a visitor says which language: the browser's header, or the site's language switch (a cookie).
HOW = ["header", "cookie"]


def visitor(language, how, **kwargs):
    client = Client(raise_request_exception=False, **kwargs)
    if how == "header":
        client.defaults["HTTP_ACCEPT_LANGUAGE"] = f"{language},de;q=0.5"
    else:
        client.defaults["HTTP_ACCEPT_LANGUAGE"] = "de"
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client


def assert_page(response, status, language):
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "text/html; charset=utf-8"
    html = response.content.decode()
    assert f'<html lang="{language}">' in html
    assert f"<h1>{TEXTS[language][status]}</h1>" in html, html[:800]
    assert f'data-status="{status}"' in html
    other = "en" if language == "ru" else "ru"
    assert TEXTS[other][status] not in html
    assert "<h1>Not Found</h1>" not in html and "Server Error (500)" not in html


@pytest.fixture
def routed(db):
    """A complaint of a demo department, and a staff member of another department."""
    from complaints.services import complaint_create
    from routing.models import Category
    complaint = complaint_create(category=Category.objects.get(code="yard-rubbish"), point=(37.6056, 55.7655),
                                 description="Мусор")
    outsider = make_user("t-err-outsider", departments=[make_departments("t-err")["a"]])
    return complaint, outsider


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("language", ["ru", "en"])
@pytest.mark.parametrize("path", ["/c/AAAA-BBBB-CCCC/", "/c/nonsense/", "/no/such/page/", "/map/complaints/999999999/",
                                  "/photos/999999999/", "/tiles/complaints/99/0/0.mvt", "/static-not/x.css"])
def test_404_pages_of_the_residents_site(path, language, how):
    assert_page(visitor(language, how).get(path), 404, language)


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("language", ["ru", "en"])
def test_another_departments_ticket_is_our_404(routed, language, how):
    complaint, outsider = routed
    client = visitor(language, how)
    client.force_login(outsider)
    for path in (f"/staff/t/{complaint.pk}/", f"/staff/t/{complaint.pk + 10**6}/", f"/staff/t/{complaint.pk}/photos/1/"):
        assert_page(client.get(path), 404, language)
    response = client.post(f"/staff/t/{complaint.pk}/take/")
    assert_page(response, 404, language)


@pytest.mark.parametrize("language", ["ru", "en"])
@pytest.mark.parametrize("status", [400, 403, 500, 503])
def test_each_error_page_in_each_language(settings, status, language):
    settings.ROOT_URLCONF = "tests.web.error_urls"
    path = {503: "/test-fail/503/"}.get(status, f"/test-fail/{status}/")
    response = visitor(language, "header").get(path)
    assert_page(response, status, language)
    if status == 503:
        assert response["Retry-After"] == str(settings.RETRY_AFTER_SECONDS)
        assert_page(visitor(language, "cookie").get("/test-fail/503b/"), 503, language)


@pytest.mark.parametrize("language", ["ru", "en"])
def test_a_bad_host_header_is_our_400(language):
    assert_page(visitor(language, "header", HTTP_HOST="evil.example.org").get("/"), 400, language)


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("language", ["ru", "en"])
def test_a_form_without_its_csrf_token_is_our_403(language, how):
    client = visitor(language, how, enforce_csrf_checks=True)
    for path in ("/report/", "/staff/login/", "/i18n/setlang/"):
        response = client.post(path, {"language": "en"})
        assert response.status_code == 403
        html = response.content.decode()
        assert f'<html lang="{language}">' in html and f"<h1>{TEXTS[language][403]}</h1>" in html, html[:500]
        assert "CSRF verification failed" not in html


# ---- under /open311/: the spec's error list, never an HTML page -------------------------------------------------


def open311_errors(response, fmt, status):
    assert response.status_code == status, response.content[:300]
    if fmt == "xml":
        assert response["Content-Type"].startswith("text/xml")
        root = ET.fromstring(response.content)
        assert root.tag == "errors"
        errors = [{"code": int(e.findtext("code")), "description": e.findtext("description")}
                  for e in root.findall("error")]
    else:
        assert response["Content-Type"].startswith("application/json")
        errors = json.loads(response.content)
    assert errors and all(e["code"] == status and e["description"] for e in errors), errors
    return errors


@pytest.mark.parametrize("path", [
    "/open311", "/open311/", "/open311/v2", "/open311/v2/", "/open311/v3/services.json", "/open311/v2/nothing.json",
    "/open311/v2/requests/1/extra.json", "/open311/v2/requests.html", "/open311/v2/services.json/",
    "/open311/v1/requests.xml", "/open311/v2/tokens/.xml", "/open311/v2/services.xml/extra.xml",
    "/open311/%D0%B0.xml", "/open311/v2/requests//1.json",
])
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_a_malformed_open311_path_gets_the_error_list(path, method):
    response = getattr(Client(raise_request_exception=False), method)(path)
    fmt = "xml" if path.endswith(".xml") else "json"
    open311_errors(response, fmt, 404)


@pytest.mark.parametrize("path", ["/open311/v2/services/%ZZ.json", "/open311/v2/requests/%00.json",
                                  "/open311/v2/tokens/%FF%FE.xml", "/open311/v2/requests/%E2%80%AE1.xml"])
def test_an_id_that_names_nothing_gets_the_error_list(path):
    response = Client(raise_request_exception=False).get(path)
    open311_errors(response, "xml" if path.endswith(".xml") else "json", 404)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_open311_crash_is_the_error_list(settings, fmt):
    settings.ROOT_URLCONF = "tests.web.error_urls"
    response = Client(raise_request_exception=False).get(f"/open311/v2/test-fail/500.{fmt}")
    open311_errors(response, fmt, 500)
    assert b"a bug" not in response.content and b"Traceback" not in response.content
