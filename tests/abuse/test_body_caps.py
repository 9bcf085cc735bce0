"""A request body over its URL's cap is refused with 413 before a byte of it is read, so nothing of it reaches the
disk; a body without a length is never read. Open311 answers in its error format, the web form as it reads it."""
import gc
import io
import json
import os

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from complaints.models import Complaint
from geo_ourcity.limits import body_limit

BOUNDARY = "----abuse-boundary"
MB = 1024 * 1024


class Body(io.RawIOBase):
    """A multipart body of `size` bytes made as it is read (one file field), counting what was read."""

    def __init__(self, size):
        head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"p.jpg\"\r\n"
                f"Content-Type: image/jpeg\r\n\r\n").encode()
        self.head, self.size, self.read_bytes = head, size, 0

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.size - self.read_bytes)
        if n <= 0:
            return 0
        start = self.read_bytes
        chunk = (self.head[start:start + n] if start < len(self.head) else b"")
        chunk += b"x" * (n - len(chunk))
        buffer[:n] = chunk
        self.read_bytes += n
        return n


def call(path, body, *, declare=True, accept="application/json", language="ru", client=None, method="POST",
         **headers):
    """POST `body` through Django's test client (its handler keeps the test's database connection)."""
    extra = {"wsgi.input": io.BufferedReader(body), "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}",
             "HTTP_ACCEPT": accept, "HTTP_ACCEPT_LANGUAGE": language, **headers}
    if declare:
        extra["CONTENT_LENGTH"] = str(body.size)
    response = (client or Client()).generic(method, path, **extra)
    return response.status_code, response.headers, response.content


@pytest.fixture
def upload_dir(settings, tmp_path):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1 * MB  # past this, an upload would go to a temporary file
    return tmp_path


def files_left(path):
    gc.collect()
    return os.listdir(path)


@pytest.mark.parametrize("path", ["/report/", "/open311/v2/requests.json", "/staff/t/1/answer/"])
def test_a_declared_body_over_the_cap_is_refused_unread(db, upload_dir, path):
    limit, _ = body_limit(path)
    body = Body(300 * MB)
    status, headers, content = call(path, body)
    assert status == 413
    assert body.read_bytes == 0
    assert files_left(upload_dir) == []
    assert limit < 300 * MB


@pytest.mark.parametrize("path", ["/report/", "/open311/v2/requests.json"])
def test_a_streamed_body_without_a_length_is_never_read(db, upload_dir, path):
    """Chunked, with no Content-Length to check: Django reads such a body as empty, so none of it is read."""
    before = Complaint.objects.count()
    body = Body(300 * MB)
    status, headers, content = call(path, body, declare=False)
    assert status < 500
    assert body.read_bytes == 0
    assert files_left(upload_dir) == [] and Complaint.objects.count() == before


def test_open311_answers_413_in_its_format(db):
    status, headers, content = call("/open311/v2/requests.json", Body(300 * MB))
    assert status == 413 and headers["Content-Type"].startswith("application/json")
    assert json.loads(content)[0]["code"] == 413
    status, headers, content = call("/open311/v2/requests.xml", Body(300 * MB))
    assert status == 413 and headers["Content-Type"].startswith("text/xml")
    assert b"<errors><error><code>413</code>" in content


@pytest.mark.parametrize("accept, language, text", [
    ("application/json", "ru", "Запрос слишком большой"), ("text/html", "ru", "Запрос слишком большой"),
    ("application/json", "en", "The request is too large"), ("text/html", "en", "The request is too large")])
def test_the_web_form_answers_413_as_it_reads_it(db, accept, language, text):
    status, headers, content = call("/report/", Body(300 * MB), accept=accept, language=language)
    assert status == 413 and text in content.decode()
    assert headers["Content-Type"].startswith("application/json" if accept == "application/json" else "text/html")


def test_the_import_upload_page_keeps_its_larger_cap_for_who_may_upload(settings, rf, users):
    request = rf.post("/admin/importers/importrun/upload/")
    request.user = users["importer"]
    assert body_limit("/admin/importers/importrun/upload/", request)[0] == settings.IMPORT_UPLOAD_MAX_BYTES + MB
    for name in ("anonymous", "staff", "inactive", "not_staff"):
        request.user = users[name]
        assert body_limit("/admin/importers/importrun/upload/", request)[0] == settings.REQUEST_MAX_BODY_BYTES
    assert body_limit("/admin/importers/importrun/upload/")[0] == settings.REQUEST_MAX_BODY_BYTES
    assert body_limit("/report/")[0] == settings.PHOTO_MAX_BYTES * settings.PHOTO_MAX_PER_COMPLAINT + MB
    assert body_limit("/open311/v2/requests.json")[0] == settings.OPEN311_MAX_BODY_BYTES


def test_a_body_within_the_cap_is_read(db, upload_dir):
    """Below the cap the body reaches the view (here: the form's own errors, no 413)."""
    status, headers, content = call("/report/", Body(2 * MB))
    assert status != 413


# --- the dataset upload: the large cap for users who may upload only ---------------------------------------

UPLOAD = "/admin/importers/importrun/upload/"
ALLOWED = "/admin/importers/importrun/upload/allowed"


@pytest.fixture
def users(db, fast_hasher):
    """A user who may upload (staff, the permission), and users who may not, each a reason."""
    from django.contrib.auth.models import AnonymousUser, Permission

    from importers.permissions import UPLOAD_PERMISSION

    upload = Permission.objects.get(content_type__app_label="importers",
                                    codename=UPLOAD_PERMISSION.split(".")[1])
    User = get_user_model()
    made = {"anonymous": AnonymousUser(), "staff": User.objects.create_user("caps-staff", is_staff=True)}
    for name, flags in (("importer", {}), ("inactive", {"is_active": False}), ("not_staff", {"is_staff": False})):
        user = User.objects.create_user(f"caps-{name}", **{"is_staff": True, **flags})
        user.user_permissions.add(upload)
        made[name] = user
    return made


def logged_in(user):
    client = Client()
    if user.is_authenticated:
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.fixture
def small_caps(settings):
    """An ordinary cap of 1 MB, the upload's of 8 MB: a 3 MB body is past the one and within the other."""
    settings.REQUEST_MAX_BODY_BYTES = 1 * MB
    settings.IMPORT_REQUEST_MAX_BYTES = 8 * MB


@pytest.mark.parametrize("who", ["anonymous", "staff", "inactive", "not_staff"])
def test_an_upload_past_the_ordinary_cap_from_who_may_not_upload_is_refused_unread(db, upload_dir, small_caps,
                                                                                   users, who):
    body = Body(3 * MB)
    status, headers, content = call(UPLOAD, body, client=logged_in(users[who]), accept="text/html")
    assert status == 413 and body.read_bytes == 0 and files_left(upload_dir) == []


def test_who_may_upload_sends_past_the_ordinary_cap(db, upload_dir, small_caps, users):
    body = Body(3 * MB)
    status, headers, content = call(UPLOAD, body, client=logged_in(users["importer"]), accept="text/html")
    assert status != 413 and body.read_bytes > 0
    body = Body(9 * MB)  # and the upload's own cap still holds for them
    status, headers, content = call(UPLOAD, body, client=logged_in(users["importer"]), accept="text/html")
    assert status == 413 and body.read_bytes == 0


@pytest.mark.parametrize("who, length, chunked, expected", [
    ("importer", "3145728", False, 204), ("importer", "", True, 204), ("importer", "9437184", False, 204),
    ("importer", "", False, 204),
    *((who, "3145728", False, 403) for who in ("anonymous", "staff", "inactive", "not_staff")),
    *((who, "", True, 403) for who in ("anonymous", "staff", "inactive", "not_staff")),
    *((who, "1048576", False, 204) for who in ("anonymous", "staff")),  # within the ordinary cap: anyone
    *((who, "", False, 204) for who in ("anonymous", "staff")),         # no body (a GET of the page)
    ("anonymous", "1048577", False, 403), ("anonymous", "-1", False, 403), ("anonymous", "1e9", False, 403),
    ("anonymous", "0x10", False, 403),
])
def test_the_fronts_question_follows_the_same_rule(db, small_caps, users, who, length, chunked, expected):
    """What nginx's auth_request asks before it reads an upload's body (the importer's 9 MB is past the upload
    cap, which the front itself enforces). The question carries no body, and none is read if one comes."""
    headers = {"HTTP_X_ORIGINAL_CONTENT_LENGTH": length}
    if chunked:
        headers["HTTP_X_ORIGINAL_TRANSFER_ENCODING"] = "chunked"
    body = Body(MB // 2)
    status, _headers, content = call(ALLOWED, body, client=logged_in(users[who]), method="GET", **headers)
    assert status == expected and content == b""
    assert body.read_bytes == 0
