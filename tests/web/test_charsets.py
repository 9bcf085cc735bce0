"""A Content-Type whose charset is not a text encoding Python can decode a form with (base64, rot13, zlib, hex,
uu, bz2, quopri; idna, punycode and undefined, which fail on ordinary input; a name that is no codec) is a 400 on
every URL, GET or POST, before anything reads the request: Open311's error list under /open311/, the project's
page elsewhere. Real text encodings still work."""
import json
import xml.etree.ElementTree as ET

import pytest
from django.test import Client

from complaints.models import Complaint
from tests.open311.conftest import SERVICE, TVERSKOY, api_key, service  # noqa: F401 - fixtures

from .wsgi_client import wsgi_request

pytestmark = pytest.mark.django_db

NOT_TEXT = ["base64", "base64_codec", "rot13", "rot_13", "zlib", "zip", "hex", "uu", "bz2", "quopri",
            "quoted-printable", "idna", "punycode", "undefined", "no-such-codec", "utf-8\x00", '"rot13"', "rot13;x=1"]
# Every kind of URL: Open311 reads and the POST (both formats), the residents' pages and their forms, the staff
# login, the admin, the language switch, the API schema, a static file and a path that names nothing.
URLS = [
    ("get", "/open311/v2/services.json?locale=en"), ("get", "/open311/v2/requests.xml?status=open"),
    ("post", "/open311/v2/requests.json"), ("post", "/open311/v2/requests.xml"),
    ("get", "/open311/v2/nothing.json?x=1"), ("get", "/?x=%D0%B0"), ("get", "/stats/?district=1"),
    ("post", "/report/"), ("get", "/c/?code=AAAA"), ("post", "/staff/login/"), ("get", "/admin/login/?next=/admin/"),
    ("post", "/i18n/setlang/"), ("get", "/api/schema/?format=json"), ("get", "/map/point/?lon=37.6&lat=55.7"),
    ("get", "/no/such/page/?q=1"),
]
BODY = b"api_key=k&service_code=x&lat=55.75&long=37.62&description=%D0%AF%D0%BC%D0%B0&language=en"


def send(method, url, content_type, body=BODY):
    """Through the server's own WSGI application (where Django used to fail before any middleware ran)."""
    path, _, query = url.partition("?")
    return wsgi_request(method.upper(), path, query=query, body=body if method == "post" else b"",
                        content_type=content_type)


@pytest.mark.parametrize("method,url", URLS)
@pytest.mark.parametrize("charset", NOT_TEXT)
def test_a_charset_that_is_not_a_text_encoding_is_a_400_everywhere(method, url, charset):
    before = Complaint.objects.count()
    response = send(method, url, f"application/x-www-form-urlencoded; charset={charset}")
    assert response.status_code == 400, (response.status_code, response.content[:300])
    path = url.split("?")[0]
    if path.startswith("/open311/"):
        if path.endswith(".xml"):
            root = ET.fromstring(response.content)
            errors = [(int(e.findtext("code")), e.findtext("description")) for e in root.findall("error")]
            assert root.tag == "errors"
        else:
            errors = [(e["code"], e["description"]) for e in json.loads(response.content)]
        assert errors and errors[0][0] == 400 and "charset" in errors[0][1], errors
    else:
        assert response["Content-Type"] == "text/html; charset=utf-8"
        assert 'data-status="400"' in response.content.decode()
    assert Complaint.objects.count() == before


@pytest.mark.parametrize("charset", ["base64", "rot13", "undefined"])
@pytest.mark.parametrize("url", ["/open311/v2/requests.json", "/report/", "/staff/login/"])
def test_django_s_test_client_is_refused_too(url, charset):
    """Requests built by another handler (Django's test client, ASGI) are checked by the middleware alone."""
    body = b"--XyZ\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\nx\r\n--XyZ--\r\n"
    response = Client(raise_request_exception=False).generic(
        "POST", url, body, content_type=f"multipart/form-data; boundary=XyZ; charset={charset}")
    assert response.status_code == 400, response.content[:300]


@pytest.mark.parametrize("charset", ["base64", "rot13", "zlib", "idna", "undefined"])
@pytest.mark.parametrize("url", ["/open311/v2/requests.json", "/report/"])
def test_a_multipart_body_in_such_a_charset_is_a_400(url, charset):
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\n\xd0\xaf\xd0\xbc\xd0\xb0\r\n"
            b"--XyZ--\r\n")
    response = send("post", url, f"multipart/form-data; boundary=XyZ; charset={charset}", body)
    assert response.status_code == 400, response.content[:300]


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "utf8", '"utf-8"', "us-ascii", "latin-1", "windows-1251",
                                     "koi8-r", "utf-16", "utf-7", "cp1252", "iso-8859-5"])
def test_real_text_encodings_are_read(charset):
    response = send("get", "/open311/v2/services.json?locale=en", f"text/plain; charset={charset}")
    assert response.status_code == 200, response.content[:300]
    assert send("get", "/?x=1", f"text/plain; charset={charset}").status_code == 200


def test_a_post_in_utf8_with_its_charset_is_stored(service, api_key):
    body = (f"api_key={api_key}&service_code={SERVICE}&lat={TVERSKOY[1]}&long={TVERSKOY[0]}&attribute[kind]=hole"
            "&description=%D0%AF%D0%BC%D0%B0").encode()
    response = send("post", "/open311/v2/requests.json", "application/x-www-form-urlencoded; charset=UTF-8", body)
    assert response.status_code == 201, response.content
    assert Complaint.objects.get().description == "Яма"
