"""Headers a fuzzer sends (Accept-Language, Cookie, Host, conditional and range requests, forwarding headers) never
make the server answer 5xx: through the server's own WSGI application, on a residents' page, an Open311 read and
POST, and a static file."""
import pytest

from .wsgi_client import wsgi_request

pytestmark = pytest.mark.django_db

HEADERS = [
    ("Accept-Language", "x" * 10000), ("Accept-Language", "en;q=abc,ru;q=-1,*;q=0.5e9"), ("Accept-Language", "\x00ÿ"),
    ("Accept-Language", "zh-Hant-TW-x-private-tag;q=0.9," * 50), ("Cookie", 'django_language=\x00; a="b'),
    ("Cookie", "sessionid=" + "a" * 5000), ("Cookie", "csrftoken=" + "%" * 300), ("Cookie", "django_language=xx-yy"),
    ("If-Modified-Since", "garbage"), ("If-None-Match", '"' * 100), ("Range", "bytes=9999999999999999999-"),
    ("X-Forwarded-For", "1.2.3.4, ::1, garbage"), ("Referer", "ÿ"), ("Accept", "*/*;q=abc"),
    ("Host", "testserver:99999999"), ("Host", "[::1"), ("Host", "testserver\x00"), ("Host", "a" * 300),
]
PATHS = [("GET", "/"), ("GET", "/open311/v2/services.json"), ("POST", "/open311/v2/requests.xml"),
         ("GET", "/static/web/web.css")]


@pytest.mark.parametrize("method,path", PATHS)
@pytest.mark.parametrize("name,value", HEADERS)
def test_no_header_makes_a_5xx(name, value, method, path):
    post = method == "POST"
    response = wsgi_request(method, path, headers={name: value}, body=b"a=1" if post else b"",
                            content_type="application/x-www-form-urlencoded" if post else None)
    assert response.status_code < 500, (response.status_code, response.content[:200])
    if name == "Host" and path.startswith("/open311/"):
        assert response["Content-Type"].startswith(("application/json", "text/xml"))
