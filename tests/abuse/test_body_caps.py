"""A request body over its URL's cap is refused with 413 before a byte of it is read, so nothing of it reaches the
disk; a body without a length is never read. Open311 answers in its error format, the web form as it reads it."""
import gc
import io
import json
import os

import pytest
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


def call(path, body, *, declare=True, accept="application/json", language="ru"):
    """POST `body` through Django's test client (its handler keeps the test's database connection)."""
    extra = {"wsgi.input": io.BufferedReader(body), "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}",
             "HTTP_ACCEPT": accept, "HTTP_ACCEPT_LANGUAGE": language}
    if declare:
        extra["CONTENT_LENGTH"] = str(body.size)
    response = Client().generic("POST", path, **extra)
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


def test_the_import_upload_page_keeps_its_larger_cap(settings):
    assert body_limit("/admin/importers/importrun/upload/")[0] == settings.IMPORT_UPLOAD_MAX_BYTES + MB
    assert body_limit("/report/")[0] == settings.PHOTO_MAX_BYTES + MB
    assert body_limit("/open311/v2/requests.json")[0] == settings.OPEN311_MAX_BODY_BYTES


def test_a_body_within_the_cap_is_read(db, upload_dir):
    """Below the cap the body reaches the view (here: the form's own errors, no 413)."""
    status, headers, content = call("/report/", Body(2 * MB))
    assert status != 413
